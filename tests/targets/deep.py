"""A thread 200 Python frames deep, spinning at the bottom."""
import threading, time

def recurse(depth, end):
    if depth == 0:
        x = 0
        while time.monotonic() < end:
            x += 1
        return x
    return recurse(depth - 1, end)

t = threading.Thread(target=recurse, args=(200, time.monotonic() + 0.4))
t.start()
t.join()
print("deep done")
