"""Threads that mostly sleep."""
import threading, time
from facts import report

def nap():
    report(kind="sleeper")
    for _ in range(4):
        time.sleep(0.1)

ts = [threading.Thread(target=nap) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
print("sleep done")
