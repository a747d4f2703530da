"""The convoy: `pinger` ping-pongs a byte through its own pipe (each os.write and os.read
releases the GIL, then waits to take it back) while `spin-a` and `spin-b` spin in Python;
argv[1], when given, is the switch interval in seconds, argv[2] the run's length."""
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
    r, w = os.pipe()
    while time.time() < stop:
        os.write(w, b"x")
        os.read(r, 1)


ts = [threading.Thread(target=pinger, name="pinger"), threading.Thread(target=spin, name="spin-a"),
      threading.Thread(target=spin, name="spin-b")]
for t in ts:
    t.start()
for t in ts:
    t.join()
