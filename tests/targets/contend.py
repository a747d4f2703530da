"""N CPU-bound threads contending for the GIL for about S seconds; each reports its own CPU time
(time.thread_time) over its loop (cpu_ns) and since it started (cpu_total_ns), and how many loop
turns it made; prints a line that does not depend on timing."""
import sys, threading, time
from facts import report

nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 64
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
start = threading.Barrier(nthreads + 1)
end = None

def spin():
    start.wait()
    t0 = time.thread_time()
    turns = x = 0
    while time.monotonic() < end:
        for i in range(1000):
            x += i * i
        turns += 1
    now = time.thread_time()  # (since the thread started: its whole CPU time so far)
    report(kind="contend", cpu_ns=int((now - t0) * 1e9), cpu_total_ns=int(now * 1e9), turns=turns)

ts = [threading.Thread(target=spin, name=f"contend-{k}") for k in range(nthreads)]
for t in ts: t.start()
end = time.monotonic() + seconds
start.wait()
for t in ts: t.join()
print("contend done", nthreads)
