"""N CPU-bound threads contending for the GIL; each reports its own CPU time."""
import sys, threading, time
from facts import report

def spin(n):
    t0 = time.thread_time()
    x = 0
    for i in range(n):
        x += i * i
    report(kind="cpu", cpu_ns=int((time.thread_time() - t0) * 1e9))

nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
ts = [threading.Thread(target=spin, args=(n,)) for _ in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
print("cpu done")
