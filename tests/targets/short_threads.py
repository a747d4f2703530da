"""Many short-lived threads, a few at a time."""
import sys, threading
n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
results = []
def work(i):
    results.append(sum(range(1000)) + i)
for start in range(0, n, 50):
    ts = [threading.Thread(target=work, args=(i,)) for i in range(start, min(n, start + 50))]
    for t in ts: t.start()
    for t in ts: t.join()
print(len(results), sum(results))
