"""Two threads of the same name, the second given the first one's thread id (ns_last_pid, as
root): prints both ids."""
import os
import threading
import time


def work():
    time.sleep(0.25)
    sum(range(100000))


def start():
    t = threading.Thread(target=work, name="worker")
    t.start()
    tid = t.native_id
    t.join()
    return tid


first = start()
time.sleep(0.1)
second = None
for _ in range(20):  # other tasks of the machine may take the id first: try again
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(first - 1))
    t = threading.Thread(target=work, name="worker")
    t.start()
    second = t.native_id
    t.join()
    if second == first:
        break
print(first, second, flush=True)
