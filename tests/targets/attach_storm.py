"""Attach target for the inline-probe tests: prints "ready" once running, then for SECONDS does
MODE: "gil" (4 threads that take and drop the GIL all the time), "spawn" (threads created
and ended without a pause, plus 2 GIL-busy ones), "fork" (forks children that run GIL-busy
threads and exit with a known status; one long-lived child whose pid is printed). Prints a
checksum of the work and "ok" at the end, exit status 0 only when every child exited 0. SIGUSR1
ends the run before SECONDS (the tests send it when they are done, so a slow gilscope, under a
sanitizer, never finds the program gone)."""
import os, signal, sys, threading, time

mode, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
counts = []
stop = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: stop.set())


def running():
    return not stop.is_set() and time.monotonic() < end


def busy(i):
    c = 0
    while running():
        for _ in range(50):
            c += 1
        time.sleep(0)  # a release and an acquisition
    counts.append(c)


def child(secs):
    until = time.monotonic() + secs
    ts = [threading.Thread(target=lambda: [time.sleep(0) for _ in iter(lambda: time.monotonic() < until
                                                                        and not stop.is_set(), False)])
          for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    os._exit(7)


workers = [threading.Thread(target=busy, args=(i,)) for i in range(4 if mode == "gil" else 2)]
for t in workers:
    t.start()
statuses, spawned = [], 0
if mode == "fork":
    long_lived = os.fork()
    if long_lived == 0:
        child(seconds + 1.0)
    print("child", long_lived, flush=True)
print("ready", flush=True)
while running():
    if mode == "spawn":
        t = threading.Thread(target=lambda: sum(range(100)))
        t.start()
        t.join()
        spawned += 1
    elif mode == "fork":
        pid = os.fork()
        if pid == 0:
            child(0.05)
        statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    else:
        time.sleep(0.01)
for t in workers:
    t.join()
if mode == "fork":
    os.kill(long_lived, signal.SIGUSR1)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(long_lived, 0)[1]))
print("workers", len(counts), all(c > 0 for c in counts), "children", set(statuses) or "{7}")
print("ok", flush=True)
sys.exit(0 if all(s == 7 for s in statuses) else 1)
