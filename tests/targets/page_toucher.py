"""A thread that touches fresh pages while holding the GIL (one byte a page of new anonymous
memory, from Python code: touch_pages) next to a thread that sleeps. The toucher reports the
page faults the kernel counted for it (/proc/thread-self/stat fields 10 and 12) just before it
ends, so a test compares gilscope's counters with the kernel's own.

Usage: page_toucher.py [PAGES]   (default 30000)"""
import mmap
import sys
import threading
import time

import facts


def thread_faults():
    """(minflt, majflt) of the calling thread: fields 10 and 12 of /proc/thread-self/stat."""
    with open("/proc/thread-self/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()  # after the comm; rest[0] is field 3
    return int(rest[10 - 3]), int(rest[12 - 3])


def touch_pages(n):
    m = mmap.mmap(-1, n * 4096)
    for i in range(0, n * 4096, 4096):
        m[i] = 1
    # stay in this function a while, holding the GIL: a stack read for the last faults that comes
    # late (a loaded machine delays gilscope) still finds the function that faulted
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        pass
    return m


def toucher(n):
    m = touch_pages(n)
    minflt, majflt = thread_faults()
    facts.report(role="toucher", minflt=minflt, majflt=majflt, pages=n)
    m.close()


def sleeper():
    facts.report(role="sleeper")
    time.sleep(0.6)


if __name__ == "__main__":
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 30000
    s = threading.Thread(target=sleeper)
    s.start()
    time.sleep(0.05)
    t = threading.Thread(target=toucher, args=(pages,))
    t.start()
    t.join()
    s.join()
