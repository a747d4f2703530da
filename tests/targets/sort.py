"""One thread sorts a big list (list.sort never releases the GIL) while another wants to run
Python code: the second one's longest wait is the sort."""
import random, threading, time
from facts import report

data = [random.random() for _ in range(1_500_000)]
started = threading.Event()
stop = False

def waiter():
    report(kind="waiter")
    started.set()
    x = 0
    while not stop:
        x += 1

def sorter():
    started.wait()
    time.sleep(0.05)
    t0 = time.perf_counter()
    data.sort()
    report(kind="sorter", sort_ns=int((time.perf_counter() - t0) * 1e9))

w = threading.Thread(target=waiter)
s = threading.Thread(target=sorter)
w.start(); s.start()
s.join()
stop = True
w.join()
print("sort done")
