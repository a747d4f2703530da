"""Threads, fork() and subprocesses keep working under gilscope."""
import os, subprocess, sys, threading

def spin():
    sum(i * i for i in range(200_000))

ts = [threading.Thread(target=spin) for _ in range(2)]
for t in ts: t.start()
pid = os.fork()
if pid == 0:
    cs = [threading.Thread(target=spin) for _ in range(2)]
    for t in cs: t.start()
    for t in cs: t.join()
    os._exit(3)
for t in ts: t.join()
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
out = subprocess.run(["/bin/echo", "from a subprocess"], capture_output=True, text=True).stdout.strip()
print(out)
print(subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True).stdout.strip())
