"""Three named threads spinning at the switch interval given (seconds), then two threads of the
same name ("worker"); `diff` of two runs at two intervals sees the forced drops change."""
import sys
import threading
import time

sys.setswitchinterval(float(sys.argv[1]))


def spin(n):
    time.sleep(0.1)  # named before it works (gilscope reads Thread.name once a thread is seen)
    x = 0
    for i in range(n):
        x += i


ts = [threading.Thread(target=spin, args=(600_000,), name=f"spinner-{i}") for i in range(3)]
ts += [threading.Thread(target=spin, args=(100_000,), name="worker") for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
