"""Two busy threads for a while (attach target); prints its pid first."""
import sys, threading, time
print("pid", flush=True)
end = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 4)
def spin():
    x = 0
    while time.monotonic() < end:
        x += 1
ts = [threading.Thread(target=spin) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("busy done")
