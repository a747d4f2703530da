"""Threads hashing large buffers: hashlib releases the GIL for buffers over 2 KiB. argv[1]: how many
buffers each thread hashes (default 6)."""
import hashlib, sys, threading, time
from facts import report

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6

buf = b"x" * (32 << 20)

def work():
    t0 = time.thread_time()
    for _ in range(rounds):
        hashlib.sha256(buf).hexdigest()
    report(kind="hash", cpu_ns=int((time.thread_time() - t0) * 1e9))

ts = [threading.Thread(target=work) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("hash done")
