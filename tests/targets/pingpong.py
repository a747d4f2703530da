"""N threads each writing and reading one byte through its own pipe n times (every os.write and
os.read releases and retakes the GIL: a flood of events); prints a checksum and exits with the
given status."""
import os, sys, threading
nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
status = int(sys.argv[3]) if len(sys.argv) > 3 else 0
totals = [0] * nthreads

def worker(k):
    r, w = os.pipe()
    s = 0
    for i in range(n):
        os.write(w, bytes([i & 0xff]))
        s += os.read(r, 1)[0]
    os.close(r); os.close(w)
    totals[k] = s

ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
print("pingpong done", nthreads, n, sum(totals), flush=True)
sys.exit(status)
