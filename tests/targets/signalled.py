"""Waits for SIGTERM/SIGINT, says so, exits 5."""
import signal, sys, threading, time
def handler(sig, frame):
    print("got", signal.Signals(sig).name, flush=True)
    sys.exit(5)
signal.signal(signal.SIGTERM, handler)
signal.signal(signal.SIGINT, handler)
print("ready", flush=True)
t = threading.Thread(target=lambda: time.sleep(30), daemon=True)
t.start()
for _ in range(300):
    time.sleep(0.1)
sys.exit(1)
