"""Two short functions that alternate quickly in one thread: faulty() touches fresh pages (every
byte it writes to a new page is a page fault), quiet() only computes (no fault). A page-fault
stack read right after each fault must name faulty(), almost never quiet().

Usage: fault_alternation.py [ROUNDS] [PAGES] [LOOPS]"""
import mmap
import sys


def faulty(pages):
    m = mmap.mmap(-1, pages * 4096)
    for i in range(0, pages * 4096, 4096):
        m[i] = 1
    m.close()


def quiet(loops):
    x = 0
    for i in range(loops):
        x += i
    return x


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 2500
    loops = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    for _ in range(rounds):
        faulty(pages)
        quiet(loops)
