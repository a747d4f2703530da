"""Two threads with unequal, known duty cycles, each measuring its own truth (facts.py):

- "hog" holds the GIL about 80% of its life: it runs Python for 8 ms of its own CPU time, then
  sleeps 2 ms, for SECONDS seconds. Truth: its CPU clock over the Python loops (time.thread_time:
  the time it ran holding the GIL, whatever the machine's load) and the program's own timer
  around each sleep (asleep, then waiting for the GIL back).
- "waiter" waits for the GIL most of its life: it gives the GIL up (a 50 us sleep, long enough for
  the hog to take it on every interpreter) and does a few tens of microseconds of Python, until
  the hog is done. While the hog runs it gets the GIL only by asking for a switch (every switch
  interval). Truth: the program's timer around each sleep (50 us, then the wait to get the GIL
  back) and between them (it holds the GIL then), and its CPU clock over its Python work.
- the main thread runs Python alone for MAIN_CPU seconds of its own CPU time first, then starts
  them and joins them.
Each reports cpu_ns (CPU time holding the GIL), call_ns (time inside the GIL-releasing calls),
calls, and life_ns (from its first to its last line); the hog spin_ns (wall time of its Python
loops), the waiter held_ns (wall time between its calls: it holds the GIL then); the main thread
its CPU time since it started (kind main_end: interpreter start-up included)."""
import sys
import threading
import time

from facts import report

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
MAIN_CPU = 0.15
done = threading.Event()


def spin_cpu(seconds):
    """Pure Python until this thread's CPU clock has advanced `seconds`; returns that CPU time."""
    t0 = time.thread_time()
    x = 0
    while time.thread_time() - t0 < seconds:
        for i in range(200):
            x += i * i
    return time.thread_time() - t0


def hog():
    life0 = time.perf_counter()
    cpu = call = spin = 0.0
    calls = 0
    while time.perf_counter() - life0 < SECONDS:
        s0 = time.perf_counter()
        cpu += spin_cpu(0.008)
        c0 = time.perf_counter()
        spin += c0 - s0
        time.sleep(0.002)
        call += time.perf_counter() - c0
        calls += 1
    done.set()
    report(kind="hog", cpu_ns=int(cpu * 1e9), call_ns=int(call * 1e9), calls=calls, spin_ns=int(spin * 1e9),
           life_ns=int((time.perf_counter() - life0) * 1e9))


def waiter():
    life0 = time.perf_counter()
    cpu = call = held = 0.0
    calls = 0
    c1 = life0
    while not done.is_set():
        c0 = time.perf_counter()
        held += c0 - c1
        time.sleep(0.00005)
        c1 = time.perf_counter()
        call += c1 - c0
        calls += 1
        t0 = time.thread_time()
        x = 0
        for i in range(1000):  # tens of microseconds: the calls' own cost stays a small part
            x += i
        cpu += time.thread_time() - t0
    report(kind="waiter", cpu_ns=int(cpu * 1e9), call_ns=int(call * 1e9), calls=calls, held_ns=int(held * 1e9),
           life_ns=int((time.perf_counter() - life0) * 1e9))


main_cpu = spin_cpu(MAIN_CPU)
report(kind="main", cpu_ns=int(main_cpu * 1e9))
ts = [threading.Thread(target=hog, name="hog"), threading.Thread(target=waiter, name="waiter")]
for t in ts:
    t.start()
for t in ts:
    t.join()
report(kind="main_end", cpu_ns=int(time.thread_time() * 1e9))
print("duty done")
