"""A recording that really loses events: per-CPU rings of 8 pages (--mmap-pages 8) under the
uprobe mechanism (--uprobes: every GIL event is a perf record) while two threads ping-pong a
byte through pipes, hundreds of thousands of GIL events a second. The kernel drops what the
rings cannot hold; the count must reach every output, and the target must not notice."""
import json
import re
import subprocess

import pytest

from conftest import GILSCOPE, record, target


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    run = record(tmp_path_factory.mktemp("lossy"), ["/usr/bin/python3.11", target("pingpong.py"), "2", "20000"],
                 args=["--mmap-pages", "8", "--uprobes", "--sample-rate", "0"])
    assert run.proc.returncode == 0, run.proc.stderr
    # the program ran whole: the checksum of 2 x 20000 bytes i & 0xff
    assert run.proc.stdout == f"pingpong done 2 20000 {2 * sum(i & 0xff for i in range(20000))}\n"
    return run


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
