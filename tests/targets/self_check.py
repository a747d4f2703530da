"""Attach target that checks its own work (the crash tests of attaching, issue 15): 4 threads
contend for the GIL computing sums whose answer is known, one thread waits in read(2) on a pipe
the main thread feeds (a restartable call: -ERESTARTSYS), one sleeps in short clock_nanosleep
calls (restarted through restart_syscall), a SIGALRM handler counts ticks, and the main thread
computes too. Prints "ready", runs until SIGUSR1 (or SECONDS), then prints what it checked and
"ok" and exits 0, or names the first wrong answer and exits 3."""
import os, signal, sys, threading, time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
end = time.monotonic() + seconds
stop = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: stop.set())
ticks = [0]
signal.signal(signal.SIGALRM, lambda *_: ticks.__setitem__(0, ticks[0] + 1))
lock = threading.Lock()
shared = [0]
wrong = []
done = {}


def running():
    return not stop.is_set() and time.monotonic() < end


def work(name):
    rounds = 0
    while running():
        n = 200 + rounds % 50
        s = 0
        for i in range(n):
            s += i * i
        if s != (n - 1) * n * (2 * n - 1) // 6:
            wrong.append(f"{name}: sum of squares below {n} = {s}")
        with lock:
            shared[0] += 1
        rounds += 1
        time.sleep(0)
    done[name] = rounds


rfd, wfd = os.pipe()


def reader():
    got = 0
    while True:
        b = os.read(rfd, 1)
        if not b:
            break
        if b != bytes([got % 251]):
            wrong.append(f"reader: byte {got} = {b!r}")
        got += 1
    done["reader"] = got


def sleeper():
    naps = 0
    while running():
        time.sleep(0.003)
        naps += 1
    done["sleeper"] = naps


threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
threads += [threading.Thread(target=reader), threading.Thread(target=sleeper)]
for t in threads:
    t.start()
signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
print("ready", flush=True)
sent = 0
while running():
    n = 100 + sent % 30
    if sum(i for i in range(n)) != n * (n - 1) // 2:
        wrong.append(f"main: sum below {n}")
    os.write(wfd, bytes([sent % 251]))
    sent += 1
    time.sleep(0.001)
signal.setitimer(signal.ITIMER_REAL, 0, 0)
os.close(wfd)
for t in threads:
    t.join()
workers = sum(done[f"w{i}"] for i in range(4))
if shared[0] != workers:
    wrong.append(f"shared counter {shared[0]} != {workers}")
if done["reader"] != sent:
    wrong.append(f"reader got {done['reader']} of {sent} bytes")
if wrong:
    print("wrong:", wrong[0], flush=True)
    sys.exit(3)
print("checked", len(done), "threads", ticks[0] > 0)
print("ok")
