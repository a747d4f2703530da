"""Attaching safely (issue 15): no thread comes back into bytes that change (a word of its stack
pointing inside them: a program counter saved in a signal frame, a return address), a target of
another user gets inline probes it can map, a program started by a forking wrapper, and a
process whose probes belong to a gilscope still recording."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE, PYTHONS, TARGETS
from test_attach_inline import acquisitions, as_its_files, attach, fds

PYENV312 = PYTHONS["pyenv-3.12-shared"]
LIBPY312 = os.path.join(os.path.dirname(os.path.dirname(PYENV312)), "lib", "libpython3.12.so.1.0")

# A thread that sleeps in nanosleep(2) with a word on its stack pointing one byte into take_gil
# (the 7th argument of syscall(3) goes on the stack): what a thread interrupted there by a signal,
# its handler still running, leaves in its signal frame.
HOLDER = r"""
import ctypes, signal, sys, threading, time
off, secs = int(sys.argv[1], 16), int(sys.argv[2])
base = next(int(l.split("-")[0], 16) for l in open("/proc/self/maps")
            if l.rstrip().endswith("libpython3.12.so.1.0") and l.split()[2] == "00000000")
libc = ctypes.CDLL(None)
libc.syscall.restype = ctypes.c_long
stop = []
signal.signal(signal.SIGUSR1, lambda *_: stop.append(1))
def hold():
    ts = (ctypes.c_long * 2)(secs, 0)
    libc.syscall(ctypes.c_long(35), ts, None, ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0),
                 ctypes.c_long(base + off + 1))
def busy():
    while not stop:
        time.sleep(0)
h = threading.Thread(target=hold)
h.start()
ws = [threading.Thread(target=busy) for _ in range(2)]
for w in ws: w.start()
print("ready", flush=True)
h.join()
print("released", flush=True)
while not stop: time.sleep(0.05)
for w in ws: w.join()
print("ok", flush=True)
"""


def take_gil_offset(lib):
    out = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    m = re.search(r"^([0-9a-f]+) t take_gil$", out, re.M)
    return m.group(1) if m else None


def test_a_stack_word_inside_the_code_to_patch_defers_the_inline_probes(tmp_path):
    if not os.access(PYENV312, os.X_OK) or not take_gil_offset(LIBPY312):
        pytest.skip("pyenv 3.12 with its symbols is not installed here")
    p = subprocess.Popen([PYENV312, "-c", HOLDER, take_gil_offset(LIBPY312), "5"], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        gs, rep = attach(p.pid, tmp_path, seconds="0.5")
        assert gs.returncode == 0, gs.stderr
        assert "stays inside the code to patch" in gs.stderr
        assert rep["python"]["mechanism"].startswith("uprobes")  # refused, not patched under it
        assert as_its_files(p.pid) == []
        assert p.stdout.readline() == "released\n"
        gs, rep = attach(p.pid, tmp_path, seconds="0.5")  # later: nothing points there any more
        assert gs.returncode == 0, gs.stderr
        assert rep["python"]["mechanism"].startswith("inline probes"), gs.stderr
        assert as_its_files(p.pid) == []
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "ok\n" and p.returncode == 0


def test_a_target_of_another_user_gets_inline_probes(tmp_path):
    python = PYTHONS["debian-3.11-stripped"]
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python,
                          os.path.join(TARGETS, "self_check.py"), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        with open(f"/proc/{p.pid}/status") as f:
            assert re.search(r"^Uid:\s+65534\b", f.read(), re.M)
        before = fds(p.pid)
        for _ in range(2):
            gs, rep = attach(p.pid, tmp_path, seconds="0.5")
            assert gs.returncode == 0, gs.stderr
            assert "unavailable" not in gs.stderr, gs.stderr
            assert rep["python"]["mechanism"].startswith("inline probes")
            assert acquisitions(rep, p.pid) > 100
            assert rep["lost_events"] == 0
            assert as_its_files(p.pid) == []
            assert fds(p.pid) == before
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "checked 6 threads True\nok\n"
    assert p.returncode == 0


def test_a_program_started_by_a_forking_wrapper(tmp_path):
    python = PYTHONS["debian-3.11-stripped"]
    script = os.path.join(TARGETS, "self_check.py")
    sh = subprocess.Popen(["sh", "-c", f"{python} {script} 60; echo status $?"], stdout=subprocess.PIPE, text=True)
    try:
        assert sh.stdout.readline() == "ready\n"
        kids = open(f"/proc/{sh.pid}/task/{sh.pid}/children").read().split()
        assert len(kids) == 1  # sh forked, python runs in the child
        py = int(kids[0])
        gs, rep = attach(py, tmp_path, seconds="0.5")
        assert gs.returncode == 0, gs.stderr
        assert rep["python"]["mechanism"].startswith("inline probes")
        assert acquisitions(rep, py) > 100
        assert as_its_files(py) == []
        os.kill(py, signal.SIGUSR1)
        out, _ = sh.communicate(timeout=60)
    finally:
        if sh.poll() is None:
            sh.kill()
            sh.wait()
    assert out == "checked 6 threads True\nok\nstatus 0\n"


def test_probes_of_an_attached_gilscope_still_recording(tmp_path):
    python = PYTHONS["debian-3.11-stripped"]
    p = subprocess.Popen([python, os.path.join(TARGETS, "self_check.py"), "60"], stdout=subprocess.PIPE, text=True)
    first = None
    try:
        assert p.stdout.readline() == "ready\n"
        first = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-p", str(p.pid), "--duration", "30", "-o",
                                  str(tmp_path / "first.rec")], stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if "memfd:gilscope-ring" in open(f"/proc/{p.pid}/maps").read():
                break
            time.sleep(0.05)
        gs, _ = attach(p.pid, tmp_path)
        assert gs.returncode == 1
        lines = [line for line in gs.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, gs.stderr  # one sentence
        assert f"gilscope process {first.pid}, which is still recording" in lines[0]
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert as_its_files(p.pid) == []
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=60)
    finally:
        for proc in (first, p):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert out == "checked 6 threads True\nok\n"


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_a_target_whose_file_size_limit_is_below_the_ring(tmp_path, user):
    """A memfd the target sized past its RLIMIT_FSIZE would fail and send it SIGXFSZ (deadly once
    the program has put the default action back): gilscope makes the ring itself then (a target of
    its own user opens it), or uses uprobes (another user's)."""
    python = PYTHONS["debian-3.11-stripped"]
    boot = ("import runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "
            f"sys.argv = ['self_check.py', '60']; runpy.run_path({os.path.join(TARGETS, 'self_check.py')!r}, "
            "run_name='__main__')")
    who = [] if user == "root" else ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    p = subprocess.Popen(["prlimit", "--fsize=1000000", *who, python, "-c", boot], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        gs, rep = attach(p.pid, tmp_path, seconds="0.5")
        assert gs.returncode == 0, gs.stderr
        want = "inline probes" if user == "root" else "uprobes"
        assert rep["python"]["mechanism"].startswith(want), gs.stderr
        assert acquisitions(rep, p.pid) > 100
        assert as_its_files(p.pid) == []
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "checked 6 threads True\nok\n"
    assert p.returncode == 0
