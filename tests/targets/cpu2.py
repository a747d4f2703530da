"""Two CPU-bound threads contending for the GIL."""
import sys, threading, time

def spin(n):
    x = 0
    for i in range(n):
        x += i * i
    return x

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
ts = [threading.Thread(target=spin, args=(N,), name=f"spin{i}") for i in range(2)]
t0 = time.monotonic()
for t in ts: t.start()
for t in ts: t.join()
print(f"done {time.monotonic()-t0:.3f}")
