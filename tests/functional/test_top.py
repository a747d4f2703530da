"""`gilscope top` (issue 19): in a real terminal (tmux, 80x24) every thread's name is on the
screen, keys change the sort column, q exits 0 and the process runs on as it was; without a
terminal, one plain block per interval; a launched command's output goes to its file."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE
from test_attach_inline import as_its_files
from test_serve import PYTHON, cpu_ticks, start_target

pytestmark = pytest.mark.skipif(not os.access(PYTHON, os.X_OK), reason=f"{PYTHON} is not installed")


def tmux(sock, *args):
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=True).stdout


def wait_screen(sock, want, timeout=30):
    deadline, screen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        screen = tmux(sock, "capture-pane", "-p")
        if all(w in screen for w in want):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"not on the screen: {want}\n{screen}")


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_top_in_a_terminal(tmp_path):
    p = start_target("live_spin.py")
    sock = f"gilscope-top-{os.getpid()}"
    status = tmp_path / "status"
    try:
        tmux(sock, "new-session", "-d", "-x", "80", "-y", "24",
             f"{GILSCOPE} top -p {p.pid}; echo $? > {status}; sleep 60")
        screen = wait_screen(sock, ["spinner-a", "spinner-b", "MainThread", "sorted by HELD%", f"PID {p.pid}"])
        assert all(len(line) <= 80 for line in screen.splitlines())
        held = {line.split()[1]: float(line.split()[2]) for line in screen.splitlines()
                if line.split()[1:2] in (["spinner-a"], ["spinner-b"])}
        assert sum(held.values()) > 50, screen  # the two spinners hold the GIL most of the time
        tmux(sock, "send-keys", "s")
        wait_screen(sock, ["sorted by WAIT%"])
        tmux(sock, "send-keys", "<")
        tmux(sock, "send-keys", "<")
        wait_screen(sock, ["sorted by NAME"])
        tmux(sock, "send-keys", "q")
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        assert status.read_text().strip() == "0"
        before = cpu_ticks(p.pid)
        time.sleep(1)
        assert p.poll() is None and cpu_ticks(p.pid) > before
        assert as_its_files(p.pid) == []
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        p.kill()
        p.wait()


def test_top_blocks_without_a_terminal():
    p = start_target("live_spin.py")
    try:
        gs = subprocess.Popen([GILSCOPE, "top", "-p", str(p.pid), "--interval", "0.5"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        gs.send_signal(signal.SIGINT)
        out, err = gs.communicate(timeout=60)
        assert gs.returncode == 0, err
        assert "\033" not in out
        blocks = [b for b in out.split("\n\n") if "spinner-a" in b]
        assert len(blocks) >= 3, out
        assert "spinner-b" in blocks[-1] and "MAXWT" in blocks[-1]
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_top_command_output_goes_to_its_file(tmp_path):
    out_file = tmp_path / "command.out"
    code = ("import threading, time\nprint('from-the-command', flush=True)\n"
            "def spin():\n    end = time.time() + 2\n    while time.time() < end: pass\n"
            "ts = [threading.Thread(target=spin, name='worker-%d' % i) for i in range(2)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n")
    gs = subprocess.run([GILSCOPE, "top", "--interval", "0.5", "--command-output", str(out_file), "--", PYTHON, "-c",
                         code], capture_output=True, text=True, timeout=120)
    assert gs.returncode == 0, gs.stderr
    assert "from-the-command" not in gs.stdout
    assert out_file.read_text() == "from-the-command\n"
    assert "worker-0" in gs.stdout and "worker-1" in gs.stdout


def test_top_wait_sites(tmp_path):
    """The WAIT SITE column: each spinner waits for the GIL in its own function, named with its
    file and line (the loop's line) in the plain blocks; every row fits 80 columns in a terminal
    (the unit test of the screen checks the cut)."""
    prog = tmp_path / "waits.py"
    prog.write_text("import threading, time\n"
                    "def work_alpha():\n"
                    "    end = time.time() + 4\n"
                    "    while time.time() < end:\n"
                    "        pass\n"
                    "def work_beta():\n"
                    "    end = time.time() + 4\n"
                    "    while time.time() < end:\n"
                    "        pass\n"
                    "ts = [threading.Thread(target=f, name=n) for f, n in ((work_alpha, 'alpha'), (work_beta, 'beta'))]\n"
                    "[t.start() for t in ts]; [t.join() for t in ts]\n")
    gs = subprocess.run([GILSCOPE, "top", "--interval", "1", "--", PYTHON, str(prog)], capture_output=True, text=True,
                        timeout=120)
    assert gs.returncode == 0, gs.stderr
    blocks = [b for b in gs.stdout.split("\n\n") if " alpha " in b and " beta " in b]
    assert len(blocks) >= 2, gs.stdout
    assert "WAIT SITE" in blocks[0]
    seen = {}
    for block in blocks:
        for line in block.splitlines():
            f = line.split()
            if len(f) >= 11 and f[1] in ("alpha", "beta"):
                seen.setdefault(f[1], set()).add(" ".join(f[10:]))
    assert any(s.startswith("work_alpha waits.py:") for s in seen["alpha"]), seen
    assert any(s.startswith("work_beta waits.py:") for s in seen["beta"]), seen
    for name, sites in seen.items():  # a spinner waits in its own function only, or none was sampled ("-")
        assert all(s == "-" or s.startswith(f"work_{name} waits.py:") for s in sites), seen
