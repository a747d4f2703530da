"""Threads in two PID namespaces: the parent starts two busy threads, then (with "unshare")
moves its future children into a new PID namespace (unshare(CLONE_NEWPID) through libc, any
Python version) and forks a child, pid 1 there, that runs two busy threads of its own (ids 2
and 3 there). Prints what each side sees; exits 3. Usage: pidns_fork.py [unshare] [SECONDS]"""
import ctypes, os, sys, threading, time, warnings

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: wanted here

CLONE_NEWPID = 0x20000000
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 0.4


def spin():
    end = time.monotonic() + secs
    x = 0
    while time.monotonic() < end:
        x += 1


def start():
    ts = [threading.Thread(target=spin) for _ in range(2)]
    for t in ts:
        t.start()
    return ts


ps = start()  # before the unshare: a process cannot make threads in a namespace it is not in
if len(sys.argv) > 1 and sys.argv[1] == "unshare":
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWPID) != 0:
        sys.exit("unshare: errno %d" % ctypes.get_errno())
pid = os.fork()
if pid == 0:
    cs = start()
    print("child", os.getpid(), *[t.native_id for t in cs], flush=True)
    for t in cs:
        t.join()
    os._exit(0)
for t in ps:
    t.join()
_, st = os.waitpid(pid, 0)
print("parent", os.getpid(), *[t.native_id for t in ps], "forked", pid, "status", st, flush=True)
sys.exit(3)
