"""Four contending CPU-bound threads."""
import sys, threading, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
def spin():
    x = 0
    for i in range(n):
        x += i
t0 = time.perf_counter()
ts = [threading.Thread(target=spin) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(f"{time.perf_counter() - t0:.6f}")
