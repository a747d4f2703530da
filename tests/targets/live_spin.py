"""Two named CPU-bound threads, "spinner-a" and "spinner-b", until killed (serve and top
targets); prints "ready" once both run."""
import os
import threading
import time


def spin():
    x = 0
    while True:
        x += 1


ts = [threading.Thread(target=spin, name=n, daemon=True) for n in ("spinner-a", "spinner-b")]
for t in ts:
    t.start()
print("ready", os.getpid(), flush=True)
while True:
    time.sleep(1)
