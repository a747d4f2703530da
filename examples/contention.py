"""gilscope's demo: a small "service" whose threads fight over the GIL.

- two workers compute checksums in pure Python (they need the GIL all the time),
- one worker compresses data with zlib (C code that releases the GIL),
- one worker sorts a large list (C code that keeps the GIL for a long time),
- the main thread polls, sleeping in between.
Run it under gilscope to see who holds the GIL, who waits, and who runs without it.
"""
import random
import threading
import time
import zlib


def checksum_worker(n):
    total = 0
    for i in range(n):
        total = (total * 31 + i) & 0xFFFFFFFF
    return total


def compress_worker(rounds):
    data = bytes(random.getrandbits(8) for _ in range(1 << 16)) * 64
    for _ in range(rounds):
        zlib.compress(data, 6)


def sort_worker():
    xs = [random.random() for _ in range(600_000)]
    time.sleep(0.2)
    xs.sort()


threads = [
    threading.Thread(target=checksum_worker, args=(2_500_000,), name="checksum-1"),
    threading.Thread(target=checksum_worker, args=(2_500_000,), name="checksum-2"),
    threading.Thread(target=compress_worker, args=(6,), name="compress"),
    threading.Thread(target=sort_worker, name="sorter"),
]
t0 = time.monotonic()
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    time.sleep(0.05)
print(f"demo finished in {time.monotonic() - t0:.2f} s")
