"""A thread-per-request server's shape: a new short thread every few milliseconds (default
names, "Thread-N (handle)"), each doing a little Python work, until killed; prints "ready"."""
import os
import threading
import time


def handle():
    x = 0
    for i in range(2000):
        x += i


print("ready", os.getpid(), flush=True)
while True:
    t = threading.Thread(target=handle)
    t.start()
    t.join()
    time.sleep(0.002)
