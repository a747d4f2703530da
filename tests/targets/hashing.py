"""Threads hashing large buffers: hashlib releases the GIL for buffers over 2 KiB."""
import hashlib, threading, time
from facts import report

buf = b"x" * (32 << 20)

def work():
    t0 = time.thread_time()
    for _ in range(6):
        hashlib.sha256(buf).hexdigest()
    report(kind="hash", cpu_ns=int((time.thread_time() - t0) * 1e9))

ts = [threading.Thread(target=work) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("hash done")
