"""Threads that create threads while other threads create processes, all at once: each of
argv[1] spawner threads starts short threads (each of which starts one more) and, in between, forks
a Python child (os.fork) or runs one (subprocess.run([sys.executable, ...])). Every child reports
its pid; each spins two contending threads so it takes the GIL a few times."""
import os, subprocess, sys, threading
import facts

CHILD = ("import os, threading, facts\n"
         "def spin():\n    sum(range(20_000))\n"
         "ts = [threading.Thread(target=spin) for _ in range(2)]\n"
         "[t.start() for t in ts]; [t.join() for t in ts]\n"
         "facts.report(kind='child', pid=os.getpid(), how='exec')\n")


def nested():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()


def spawner(i, rounds):
    for r in range(rounds):
        ts = [threading.Thread(target=nested) for _ in range(5)]
        for t in ts:
            t.start()
        if (i + r) % 2:
            pid = os.fork()
            if pid == 0:
                ws = [threading.Thread(target=lambda: sum(range(20_000))) for _ in range(2)]
                [w.start() for w in ws]
                [w.join() for w in ws]
                facts.report(kind="child", pid=os.getpid(), how="fork")
                os._exit(0)
            os.waitpid(pid, 0)
        else:
            subprocess.run([sys.executable, "-c", CHILD], check=True)
        for t in ts:
            t.join()


n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
ss = [threading.Thread(target=spawner, args=(i, rounds)) for i in range(n)]
for s in ss:
    s.start()
for s in ss:
    s.join()
facts.report(kind="parent", pid=os.getpid())
