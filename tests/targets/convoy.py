"""The convoy: `pinger` ping-pongs bytes through a pipe with an `echo` thread (each os.read and
os.write releases the GIL, then waits to take it back) while `spin-a` and `spin-b` spin in
Python; argv[1], when given, is the switch interval in seconds."""
import os, sys, threading, time

if len(sys.argv) > 1:
    sys.setswitchinterval(float(sys.argv[1]))
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
stop = time.time() + seconds


def spin():
    x = 0
    while time.time() < stop:
        x += 1


def pinger():
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()

    def echo():
        while os.read(r1, 1):
            os.write(w2, b"x")

    threading.Thread(target=echo, name="echo", daemon=True).start()
    while time.time() < stop:
        os.write(w1, b"x")
        os.read(r2, 1)
    os.close(w1)


ts = [threading.Thread(target=pinger, name="pinger"), threading.Thread(target=spin, name="spin-a"),
      threading.Thread(target=spin, name="spin-b")]
for t in ts:
    t.start()
for t in ts:
    t.join()
