"""Two threads each writing and reading one byte through a pipe in a loop: every os.write and
os.read releases and retakes the GIL (about two million GIL releases per second untraced)."""
import os, sys, threading, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000

def worker():
    r, w = os.pipe()
    for _ in range(n):
        os.write(w, b"x")
        os.read(r, 1)
    os.close(r); os.close(w)

t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print(f"{time.perf_counter() - t0:.6f}")
