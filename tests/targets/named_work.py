"""Two CPU-bound threads in functions with distinctive names."""
import threading

def alpha_spinner(n):
    x = 0
    for i in range(n):
        x += i
    return x

def beta_spinner(n):
    x = 0
    for i in range(n):
        x -= i
    return x

ts = [threading.Thread(target=alpha_spinner, args=(5_000_000,)), threading.Thread(target=beta_spinner, args=(5_000_000,))]
for t in ts: t.start()
for t in ts: t.join()
print("named done")
