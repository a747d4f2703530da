"""N threads started at once (all alive together), then joined: thread creation at its worst."""
import sys, threading
n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
go = threading.Event()
def work():
    go.wait()
ts = [threading.Thread(target=work) for _ in range(n)]
for t in ts: t.start()
go.set()
for t in ts: t.join()
print("started", n)
