"""A process of a tree: reports its pid and parent, spins two contending threads briefly, then
(argv[1] > 0) runs itself again with subprocess.run([sys.executable, ...]), from a thread other
than the main one when argv[2] is "thread"."""
import os, subprocess, sys, threading
import facts


def spin():
    s = 0
    for i in range(100_000):
        s += i


def child(depth, how):
    subprocess.run([sys.executable, __file__, str(depth - 1), how], check=True)


depth = int(sys.argv[1]) if len(sys.argv) > 1 else 0
how = sys.argv[2] if len(sys.argv) > 2 else "main"
facts.report(kind="process", pid=os.getpid(), ppid=os.getppid(), depth=depth)
ts = [threading.Thread(target=spin) for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if depth > 0:
    if how == "thread":
        t = threading.Thread(target=child, args=(depth, how))
        t.start()
        t.join()
    else:
        child(depth, how)
