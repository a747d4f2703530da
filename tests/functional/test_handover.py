"""A SIGKILL of gilscope at any step of the hand-over (from the PTRACE_SEIZE of the launched command to
its final detach) must leave the command exactly as it runs untraced: same stdout, same exit status,
threads still created; and no gilscope process (its guardian included) may be left running.

gilscope's test hook GILSCOPE_TEST_KILL_AT=STEP (src/probe/tracer.h) makes it SIGKILL itself at STEP.
The command outlives gilscope, so each run goes through a small helper that is a child subreaper
(prctl PR_SET_CHILD_SUBREAPER): the orphaned command and guardian come back to it, and it reaps
every one of them, the command's status included, or reports what is still running after a timeout.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import GILSCOPE, PYTHONS

STEPS = ["seize", "exec", "planted", "running", "breakpoint", "syscall-set", "syscall-cont", "syscall-ran",
         "pokes", "detach"]
INTERPRETERS = ["pyenv-3.11.7-shared", "debian-3.11-stripped", "debian-3.13-stripped"]
REPEAT = {"running": 6, "syscall-cont": 3}  # the racy steps (the command runs meanwhile): more tries

TARGET = r'''
import sys, threading
results = []
def work(i):
    results.append(sum(range(10000 * (i + 1))))
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", sorted(results))
# what gilscope maps into the command (its trampoline page, its ring) must be gone with it
maps = [l.split() for l in open("/proc/self/maps")]
print("gilscope mappings", [m[0] for m in maps if (m[1] == "rwxp" and m[4] == "0") or "memfd:gilscope" in " ".join(m)])
print("args", sys.argv[1:])
sys.exit(int(sys.argv[1]))
'''

# Runs argv (gilscope) with stdout to a file, as a child subreaper; reaps every descendant; prints JSON.
HELPER = r'''
import ctypes, json, os, signal, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
argv, out, timeout = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
with open(out, "wb") as f, open(out + ".err", "wb") as e:
    gilscope = subprocess.Popen(argv, stdout=f, stderr=e)
gilscope_status = gilscope.wait()
reaped, left = [], []
deadline = time.monotonic() + timeout
while True:
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except ChildProcessError:
        break
    if info is None:
        if time.monotonic() > deadline:
            for pid in os.listdir("/proc"):
                try:
                    st = open(f"/proc/{pid}/stat").read()
                except (OSError, ValueError):
                    continue
                if pid.isdigit() and int(st.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    left.append(st.split(")")[0].split("(", 1)[1])
                    os.kill(int(pid), signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.005)
        continue
    comm = open(f"/proc/{info.si_pid}/comm").read().strip()
    _, st = os.waitpid(info.si_pid, 0)
    reaped.append([comm, os.waitstatus_to_exitcode(st)])
print(json.dumps({"gilscope": gilscope_status, "reaped": reaped, "left": left}))
'''


def run_helper(tmp_path, argv, env, timeout=60):
    out = tmp_path / "stdout"
    p = subprocess.run([sys.executable, "-c", HELPER, json.dumps(argv), str(out), "20"],
                       capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    res["stdout"] = out.read_text()
    res["stderr"] = (tmp_path / "stdout.err").read_text()
    return res


@pytest.fixture(params=INTERPRETERS, ids=INTERPRETERS)
def interp(request):
    path = PYTHONS[request.param]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{request.param}: {path} is not installed on this machine")
    return path


@pytest.mark.parametrize("step", STEPS)
def test_handover_kill(tmp_path, interp, step):
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    cmd = [interp, str(script), "7", "x y"]
    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 7 and "threads" in plain.stdout, plain.stderr
    env = dict(os.environ, GILSCOPE_TEST_KILL_AT=step)
    for i in range(REPEAT.get(step, 2)):
        res = run_helper(tmp_path, [GILSCOPE, "record", "--no-summary", "-o", str(tmp_path / "x.rec"), "--", *cmd],
                         env)
        what = f"try {i + 1}, kill at {step}: {res}"
        assert res["gilscope"] == -9, "gilscope did not reach the step: " + what
        assert not res["left"], "processes left running: " + what
        command = [status for comm, status in res["reaped"] if comm.startswith("python")]
        assert command == [7], "the command's exit status differs: " + what
        assert res["stdout"] == plain.stdout, "the command's output differs: " + what
        # what came back to the helper: the command and gilscope's guardian (named gilscope-guard)
        assert all(c.startswith(("python", "gilscope")) for c, _ in res["reaped"]), what
