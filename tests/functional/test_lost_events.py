"""A recording that really loses events: per-CPU rings of 8 pages (--mmap-pages 8) under the
uprobe mechanism (--uprobes: every GIL event is a perf record) while two threads ping-pong a
byte through pipes, hundreds of thousands of GIL events a second, and gilscope is stopped
(SIGSTOP) for half a second in the middle, so that the rings overflow however fast gilscope
would read them. The kernel drops what the rings cannot hold; the count must reach every
output, and the target must not notice."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE, TARGETS, Run, target

N = 60000


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _python_threads_started(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task")) >= 3  # main + the two ping-pong threads
    except OSError:
        return False


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    d = tmp_path_factory.mktemp("lossy")
    rec = d / "run.rec"
    gs = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-o", str(rec), "--mmap-pages", "8", "--uprobes",
                           "--sample-rate", "0", "--", "/usr/bin/python3.11", target("pingpong.py"), "2", str(N)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=TARGETS))
    deadline = time.time() + 60
    while time.time() < deadline and not any(_python_threads_started(c) for c in _children(gs.pid)):
        time.sleep(0.005)  # the hand-over is done once the program runs its threads
    os.kill(gs.pid, signal.SIGSTOP)
    time.sleep(0.5)
    os.kill(gs.pid, signal.SIGCONT)
    out, err = gs.communicate(timeout=300)
    assert gs.returncode == 0, err
    # the program ran whole: the checksum of 2 x N bytes i & 0xff
    assert out == f"pingpong done 2 {N} {2 * sum(i & 0xff for i in range(N))}\n"
    rep = subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True, check=True)
    return Run(gs, json.loads(rep.stdout), [], rec)


def test_lost_events_are_counted(lossy):
    lost = lossy.report["lost_events"]
    assert lost > 0, "8-page rings under a ping-pong flood lost nothing: the loss is not counted"
    assert lossy.report["complete"] is True


def test_lost_events_in_the_text_report_and_the_trace(lossy, tmp_path):
    lost = lossy.report["lost_events"]
    text = subprocess.run([GILSCOPE, "report", str(lossy.rec)], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"^lost events: {lost}\b", text, re.M), text[-500:]
    out = tmp_path / "t.json"
    subprocess.run([GILSCOPE, "export", "--format", "trace-json", str(lossy.rec), "-o", str(out)], check=True)
    assert json.loads(out.read_text())["gilscope"]["lost_events"] == lost


def test_threads_touched_by_losses_are_marked(lossy):
    """The ping-pong workers lived through the losses: their figures are marked as possibly short."""
    workers = [t for t in lossy.python_threads() if not t["is_main"]]
    assert workers and all(0 < t["lost_events_while_alive"] <= lossy.report["lost_events"] for t in workers)
