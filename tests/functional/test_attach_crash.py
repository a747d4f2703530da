"""gilscope killed (SIGKILL) at every point of attaching and detaching (issue 15): the target runs on
and checks its own work, and the next `gilscope record -p` takes over cleanly and leaves every
executable mapping's bytes equal to its file, no mapping and no descriptor of gilscope's behind.
The points are gilscope's own (GILSCOPE_TEST_KILL_AT=point:N, inert unless set): between every two
steps of an injected system call (the stub written, the registers set, the call entered and
returned, the thread stopped before user space, the registers back), of the ring's set-up (the
provisional and the final owner mark, the ring mapped), between the patches of two instructions,
and the same while detaching."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE, PYTHONS, TARGETS
from test_attach_inline import as_its_files, fds

# interpreter -> every how many points it is killed at (all of them for the first)
SWEEP = {"debian-3.11-stripped": 1, "pyenv-3.12-shared": 4, "debian-3.14-stripped": 4}


def gilscope(pid, tmp_path, kill_at=None, seconds="0.25"):
    env = dict(os.environ)
    if kill_at is not None:
        env["GILSCOPE_TEST_KILL_AT"] = f"point:{kill_at}"
    return subprocess.run([GILSCOPE, "record", "--no-summary", "-p", str(pid), "--duration", seconds, "-o",
                           str(tmp_path / "k.rec")], capture_output=True, text=True, timeout=120, env=env)


def start(python):
    p = subprocess.Popen([python, os.path.join(TARGETS, "self_check.py"), "240"], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    return p


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_sigkill_at_every_point_of_attach_and_detach(tmp_path, name):
    python = PYTHONS[name]
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed on this machine")
    p = start(python)
    try:
        before = fds(p.pid)
        listing = gilscope(p.pid, tmp_path, kill_at=0)
        assert listing.returncode == 0, listing.stderr
        points = re.findall(r"gilscope test point (\d+): (.*)", listing.stderr)
        assert len(points) > 40, listing.stderr
        assert as_its_files(p.pid) == []
        killed = 0
        for n in range(1, len(points) + 1, SWEEP[name]):
            gs = gilscope(p.pid, tmp_path, kill_at=n)
            where = f"killed at point {n} ({points[n - 1][1]})"
            if gs.returncode == -signal.SIGKILL:
                killed += 1
            time.sleep(0.1)  # the program runs with whatever was left
            assert p.poll() is None, f"the program died after gilscope was {where}"
            again = gilscope(p.pid, tmp_path)
            assert again.returncode == 0, f"{where}: {again.stderr}"
            assert "stay" not in again.stderr, f"{where}: {again.stderr}"
            assert as_its_files(p.pid) == [], where
            assert fds(p.pid) == before, where
        assert killed >= len(range(1, len(points) + 1, SWEEP[name])) - 2
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "checked 6 threads True\nok\n"
    assert p.returncode == 0


def test_sigkill_at_every_point_of_a_takeover(tmp_path):
    """A gilscope killed while recording leaves its probes; the next one, taking them over, is killed
    at each of its own points in turn; the one after still finds the program whole and cleans up."""
    python = PYTHONS["debian-3.11-stripped"]
    p = start(python)
    try:
        before = fds(p.pid)
        points = None
        n = 1
        while points is None or n <= len(points):
            first = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-p", str(p.pid), "-o",
                                      str(tmp_path / "first.rec")], stderr=subprocess.PIPE, text=True)
            for _ in range(200):
                if "memfd:gilscope-ring" in open(f"/proc/{p.pid}/maps").read():
                    break
                time.sleep(0.05)
            time.sleep(0.2)  # past the attach: recording
            first.kill()
            first.communicate()
            if points is None:  # the takeover's points, listed once
                listing = gilscope(p.pid, tmp_path, kill_at=0)
                assert "which is gone: they were removed" in listing.stderr, listing.stderr
                names = re.findall(r"gilscope test point (\d+): (.*)", listing.stderr)
                points = names[:names.index(next(x for x in names if x[1] == "threads held")) + 1]
                continue
            gs = gilscope(p.pid, tmp_path, kill_at=n)
            where = f"the takeover killed at point {n} ({points[n - 1][1]})"
            assert gs.returncode == -signal.SIGKILL, where
            time.sleep(0.1)
            assert p.poll() is None, f"the program died after {where}"
            again = gilscope(p.pid, tmp_path)
            assert again.returncode == 0, f"{where}: {again.stderr}"
            assert as_its_files(p.pid) == [], where
            assert fds(p.pid) == before, where
            n += 1
        p.send_signal(signal.SIGUSR1)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "checked 6 threads True\nok\n"
    assert p.returncode == 0
