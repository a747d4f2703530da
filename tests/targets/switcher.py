"""Switch requests: `switcher.py cpu INTERVAL SECONDS` runs two CPU-bound threads for SECONDS of wall
time with sys.setswitchinterval(INTERVAL); `switcher.py io INTERVAL SECONDS` runs one thread that only
does I/O (a byte through a pipe, back and forth) beside one CPU-bound thread. Each thread reports its
kind and how many iterations it made. A 4th argument `rt` puts the threads in SCHED_RR (when allowed):
on a loaded machine, the waiters' wake-ups then do not wait for a CPU, so the switch interval, not
the run queue, decides how often the holder is asked to let go."""
import os, sys, threading, time
from facts import report

mode = sys.argv[1] if len(sys.argv) > 1 else "cpu"
sys.setswitchinterval(float(sys.argv[2]) if len(sys.argv) > 2 else 0.005)
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
end = time.monotonic() + seconds
rt = len(sys.argv) > 4 and sys.argv[4] == "rt"

def realtime():
    if rt:
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        except (OSError, AttributeError):
            pass

def spin():
    realtime()
    n = 0
    while time.monotonic() < end:
        for i in range(2000):
            n += i
    report(kind="cpu", n=n)

def io():
    realtime()
    r, w = os.pipe()
    n = 0
    while time.monotonic() < end:
        os.write(w, b"x")
        os.read(r, 1)
        n += 1
    os.close(r); os.close(w)
    report(kind="io", n=n)

ts = [threading.Thread(target=spin), threading.Thread(target=spin if mode == "cpu" else io)]
for t in ts: t.start()
for t in ts: t.join()
print("switcher done", mode)
