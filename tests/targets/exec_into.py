"""Threads contend for the GIL, then the main thread, holding it, execs into another Python that
sleeps 0.3 s: the hold open at the exec ends there. Reports the first image's own timings."""
import os, sys, threading, time
from facts import report

t0 = time.monotonic_ns()
stop = False

def spin():
    x = 0
    while not stop:
        x += 1

ts = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
for t in ts:
    t.start()
x = 0
end = time.monotonic() + 0.2
while time.monotonic() < end:
    x += 1
# the process's age at the exec, by the kernel's start time (clock ticks since boot)
with open("/proc/self/stat") as f:
    start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
age_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME) - start_ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
report(kind="exec", image_ns=time.monotonic_ns() - t0, age_ns=age_ns, workers=[t.native_id for t in ts])
sys.stdout.flush()
os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(0.3)"])
