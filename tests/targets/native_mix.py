"""Native and Python code interleaved, for `record --native`: a thread sorts with the C library's
qsort() through ctypes, with a Python comparison function (Python -> qsort -> Python), and a thread
hashes a large buffer with hashlib (no GIL inside OpenSSL). Each runs for DURATION seconds."""
import ctypes
import hashlib
import sys
import threading
import time

DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5
libc = ctypes.CDLL(None)
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def python_compare_callback(a, b):
    x = 0
    for i in range(30):
        x += i
    return a[0] - b[0]


def sort_through_libc_qsort():
    arr = (ctypes.c_int * 5000)(*range(5000, 0, -1))
    libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), CMP(python_compare_callback))


def qsort_worker():
    end = time.monotonic() + DURATION
    while time.monotonic() < end:
        sort_through_libc_qsort()


def hash_big_buffer(data):
    return hashlib.sha256(data).digest()


def hashing_worker():
    data = b"x" * (1 << 22)
    end = time.monotonic() + DURATION
    while time.monotonic() < end:
        hash_big_buffer(data)


threads = [threading.Thread(target=qsort_worker), threading.Thread(target=hashing_worker)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done")
