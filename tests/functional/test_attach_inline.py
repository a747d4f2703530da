"""Attaching with inline probes (injected system calls) and detaching: the process runs on
unharmed, and after each detach it is exactly as it was (issue 15, items 1 and 2)."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE, TARGETS


def target(name):
    return os.path.join(TARGETS, name)


def start(python, mode, seconds, extra=()):
    p = subprocess.Popen([python, target("attach_storm.py"), mode, str(seconds), *extra], stdout=subprocess.PIPE,
                         text=True)
    child = None
    line = p.stdout.readline()
    if line.startswith("child "):
        child = int(line.split()[1])
        line = p.stdout.readline()
    assert line == "ready\n"
    return p, child


def fds(pid):
    return sorted(os.listdir(f"/proc/{pid}/fd"))


def as_its_files(pid):
    """What differs from what the process had before any gilscope: every executable file-backed
    mapping's bytes against its file at the mapping's offset, and any mapping gilscope adds."""
    bad = []
    with open(f"/proc/{pid}/maps") as f:
        lines = f.read().splitlines()
    mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for line in lines:
            parts = line.split(None, 5)
            path = parts[5] if len(parts) > 5 else ""
            start_, end = (int(x, 16) for x in parts[0].split("-"))
            if "memfd:gilscope" in path or (parts[1] == "rwxp" and not path):
                bad.append(line)
            if "x" not in parts[1] or not path.startswith("/"):
                continue
            with open(f"/proc/{pid}/map_files/{start_:x}-{end:x}", "rb") as fh:
                fh.seek(int(parts[2], 16))
                want = fh.read(end - start_)
            if os.pread(mem, len(want), start_) != want:
                bad.append("differs: " + line)
    finally:
        os.close(mem)
    return bad


def attach(pid, tmp_path, seconds="1", args=()):
    rec = tmp_path / f"attach-{time.monotonic_ns()}.rec"
    gs = subprocess.run([GILSCOPE, "record", "--no-summary", "-p", str(pid), "--duration", seconds, "-o", str(rec),
                         *args], capture_output=True, text=True, timeout=120)
    rep = None
    if gs.returncode == 0:
        rep = json.loads(subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True,
                                        text=True, check=True).stdout)
    return gs, rep


def finish(p):
    p.send_signal(signal.SIGUSR1)  # done: the program ends its run now
    out, _ = p.communicate(timeout=60)
    return out


def acquisitions(rep, pid):
    return sum(t["acquisitions"] for t in rep["threads"] if t["pid"] == pid)


def test_attach_detach_cycles_during_a_gil_storm(tmp_path, python):
    p, _ = start(python, "gil", 60)
    try:
        before = fds(p.pid)
        for _ in range(3):
            gs, rep = attach(p.pid, tmp_path)
            assert gs.returncode == 0, gs.stderr
            assert rep["python"]["mechanism"].startswith("inline probes"), gs.stderr
            assert acquisitions(rep, p.pid) > 100
            assert rep["lost_events"] == 0
            assert as_its_files(p.pid) == []
            assert fds(p.pid) == before
        out = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert out == "workers 4 True children {7}\nok\n"
    assert p.returncode == 0


def test_attach_while_threads_are_created(tmp_path, python):
    p, _ = start(python, "spawn", 60)
    try:
        for _ in range(2):
            gs, rep = attach(p.pid, tmp_path)
            assert gs.returncode == 0, gs.stderr
            assert rep["python"]["mechanism"].startswith("inline probes")
            assert acquisitions(rep, p.pid) > 100
            assert as_its_files(p.pid) == []
        out = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert out == "workers 2 True children {7}\nok\n"
    assert p.returncode == 0


def test_attach_while_the_program_forks(tmp_path, python):
    """Children forked while attached inherit the probes; the detach removes them there too."""
    p, long_lived = start(python, "fork", 60)
    try:
        gs, rep = attach(p.pid, tmp_path, seconds="1.5")
        assert gs.returncode == 0, gs.stderr
        assert as_its_files(p.pid) == []
        assert as_its_files(long_lived) == []  # forked before the attach: never patched
        gs, rep = attach(p.pid, tmp_path)
        assert gs.returncode == 0, gs.stderr
        assert as_its_files(p.pid) == []
        out = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert out == "workers 2 True children {7}\nok\n"
    assert p.returncode == 0


def test_a_child_forked_while_attached_is_restored(tmp_path, python):
    script = ("import os, sys, time, threading\n"
              "print('ready', flush=True)\n"
              "sys.stdin.readline()\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    time.sleep(6); os._exit(0)\n"
              "print(pid, flush=True)\n"
              "time.sleep(6)\n")
    p = subprocess.Popen([python, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        gs = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-p", str(p.pid), "--duration", "2", "-o",
                               str(tmp_path / "a.rec")], stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        p.stdin.write("\n")
        p.stdin.flush()
        kid = int(p.stdout.readline())
        time.sleep(0.2)
        with open(f"/proc/{kid}/maps") as f:
            inherited = "memfd:gilscope-ring" in f.read()
        _, err = gs.communicate(timeout=60)
        assert gs.returncode == 0, err
        assert inherited, "the child did not inherit the probes (attach too slow?)"
        assert as_its_files(kid) == []
        assert as_its_files(p.pid) == []
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("owner", ["killed", "alive"])
def test_process_carrying_a_launched_gilscopes_probes(tmp_path, python, owner):
    """A daemon forked by a recorded program carries the launch's inline probes."""
    pidfile = tmp_path / "daemon.pid"
    launch = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-o", str(tmp_path / "launch.rec"), "--",
                               python, "-c", DAEMON, str(pidfile)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    daemon = None
    try:
        for _ in range(300):
            if pidfile.exists():
                break
            time.sleep(0.05)
        daemon = int(pidfile.read_text())
        with open(f"/proc/{daemon}/maps") as f:
            if "memfd:gilscope-ring" not in f.read():
                pytest.skip("the launch did not use inline probes here")
        if owner == "killed":
            launch.kill()
            launch.wait()
        gs, rep = attach(daemon, tmp_path)
        if owner == "alive":
            assert gs.returncode == 1
            assert f"gilscope process {launch.pid}, which is still recording" in gs.stderr
            assert "memfd:gilscope-ring" in open(f"/proc/{daemon}/maps").read()  # untouched
        else:
            assert gs.returncode == 0, gs.stderr
            assert "which is gone: they were removed" in gs.stderr
            assert rep["python"]["mechanism"].startswith("inline probes")
            assert acquisitions(rep, daemon) > 10
            assert as_its_files(daemon) == []
        os.kill(daemon, signal.SIGUSR1)  # the daemon's last word: "alive" in its file
        for _ in range(100):
            if (tmp_path / "daemon.pid.done").exists():
                break
            time.sleep(0.05)
        assert (tmp_path / "daemon.pid.done").read_text() == "alive"
    finally:
        if daemon:
            try:
                os.kill(daemon, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if launch.poll() is None:
            launch.kill()
        launch.wait()


DAEMON = r"""
import os, signal, sys, threading, time
pidfile = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    stop = []
    def busy():
        while not stop:
            time.sleep(0)
    ts = [threading.Thread(target=busy) for _ in range(2)]
    for t in ts: t.start()
    def done(*_):
        stop.append(1)
    signal.signal(signal.SIGUSR1, done)
    with open(pidfile + ".tmp", "w") as f: f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    while not stop: time.sleep(0.05)
    for t in ts: t.join()
    with open(pidfile + ".done", "w") as f: f.write("alive")
    os._exit(0)
time.sleep(30)
"""


def test_uprobes_on_request(tmp_path):
    p, _ = start("/usr/bin/python3.11", "gil", 4)
    try:
        gs, rep = attach(p.pid, tmp_path, args=("--uprobes",))
        assert gs.returncode == 0, gs.stderr
        assert rep["python"]["mechanism"].startswith("uprobes")
        assert acquisitions(rep, p.pid) > 10
        assert as_its_files(p.pid) == []
        out = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
    assert out == "workers 4 True children {7}\nok\n"
