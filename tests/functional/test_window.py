"""`report --window FROM:TO`: each thread's figures cut at a window's edges (the pytest plugin's
slices), and `record --sync-fd` barriers."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import GILSCOPE, record, target

PY = "/usr/bin/python3.11"


def window(rec, spec):
    p = subprocess.run([GILSCOPE, "report", "--window", spec, "--json", rec], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "gilscope.window/1" and doc["complete"]
    return {t["tid"]: t for t in doc["threads"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    r = record(tmp_path_factory.mktemp("win"), [PY, target("interval_spin.py"), "0.002"])
    assert r.proc.returncode == 0, r.proc.stderr
    return r


def test_the_whole_recording_as_a_window_is_the_report(run):
    whole = window(run.rec, "+0:+1000")
    for t in run.report["threads"]:
        if t["pid"] != run.report["target_pid"]:
            continue
        w = whole[t["tid"]]
        assert w["held_ns"] == t["gil_held_ns"] and w["wait_ns"] == t["gil_wait_ns"], (w, t)
        assert w["no_gil_ns"] == t["running_no_gil_ns"], (w, t)
        assert w["off_cpu_ns"] == t["sleeping_ns"] + t["runnable_ns"], (w, t)
        assert w["acquisitions"] == t["acquisitions"], (w, t)
        # whom it waited behind: the report's blame, holder by holder (its holder 0 is the GIL
        # free for a moment at a hand-over, which no thread held)
        blame = {b["holder_tid"]: b["ns"] for b in t["waited_while_held_by"] if b["holder_tid"]}
        assert {b["tid"]: b["ns"] for b in w["waited_behind"]} == blame, (w, t)
        assert all(b["tid"] != t["tid"] for b in w["waited_behind"])


def test_two_windows_add_up_to_their_union(run):
    d = run.report["duration_ns"] / 1e9
    cut = f"+{d / 3:.6f}"
    a, b = window(run.rec, f"+0:{cut}"), window(run.rec, f"{cut}:+1000")
    whole = window(run.rec, "+0:+1000")
    for tid, w in whole.items():
        for k in ("held_ns", "wait_ns", "no_gil_ns", "off_cpu_ns", "acquisitions"):
            assert a.get(tid, {}).get(k, 0) + b.get(tid, {}).get(k, 0) == w[k], (tid, k)
    # in a window, no thread holds the GIL longer than the window, and all holds fit in it
    span = int(d / 3 * 1e9)
    assert sum(t["held_ns"] for t in a.values()) <= span + 1000


@pytest.mark.parametrize("spec", ["", "5", "10:5", "a:b", "+x:+1", "+1:"])
def test_window_usage_errors(run, spec):
    p = subprocess.run([GILSCOPE, "report", "--window", spec, run.rec], capture_output=True, text=True)
    assert p.returncode == 2 and "--window" in p.stderr, p.stderr


SELF = r'''
import os, signal, subprocess, sys, threading, time, json
r, w = os.pipe()
p = subprocess.Popen([sys.argv[1], "record", "-p", str(os.getpid()), "--no-summary", "-o", sys.argv[2],
                      "--sync-fd", str(w)], pass_fds=(w,), stderr=subprocess.PIPE, text=True)
os.close(w)
while "recording process" not in p.stderr.readline():
    pass
def spin(n):
    x = 0
    for i in range(n):
        x += i
out = []
for k in range(3):
    t0 = time.monotonic_ns()
    ts = [threading.Thread(target=spin, args=(300_000,), name=f"t{k}-{i}") for i in range(2)]
    [t.start() for t in ts]; [t.join() for t in ts]
    t1 = time.monotonic_ns()
    p.send_signal(signal.SIGUSR1)
    done = int(os.read(r, 64))
    q = subprocess.run([sys.argv[1], "report", "--window", f"{t0}:{t1}", "--json", sys.argv[2]],
                       capture_output=True, text=True)
    out.append({"t1": t1, "barrier": done, "window": json.loads(q.stdout)})
p.send_signal(signal.SIGINT)
p.wait()
print(json.dumps({"slices": out, "status": p.returncode}))
'''


def test_barriers_make_each_slice_complete(tmp_path):
    """After the barrier's answer, the slice already read from the growing file is the one the
    finished recording gives: nothing of the window was still on its way."""
    rec = tmp_path / "self.rec"
    p = subprocess.run([PY, "-c", SELF, GILSCOPE, str(rec)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == 0
    for k, s in enumerate(doc["slices"]):
        assert s["barrier"] >= s["t1"]
        live = {t["tid"]: t for t in s["window"]["threads"]}
        final = window(str(rec), f"{s['window']['from_ns']}:{s['window']['to_ns']}")
        assert live == final, k
        # the slice's two threads (named, or labelled "spin" when they ended before their name
        # was read) took the GIL in it
        workers = [t for t in live.values() if t["name"] != "MainThread"]
        assert len(workers) == 2 and all(t["acquisitions"] >= 1 and t["held_ns"] > 0 for t in workers), live


def test_sync_fd_must_be_open():
    p = subprocess.run([GILSCOPE, "record", "--sync-fd", "77", "--", PY, "-c", "pass"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "--sync-fd" in p.stderr, p.stderr


def test_sigusr1_is_a_barrier_not_a_stop(tmp_path):
    """SIGUSR1 to a gilscope that launched a command: neither passed on nor the end of anything."""
    rec = tmp_path / "u.rec"
    p = subprocess.Popen([GILSCOPE, "record", "-q", "-o", str(rec), "--", PY, "-c",
                          "import time; time.sleep(0.6); print('done')"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    for _ in range(3):
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.02)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out == "done\n", (out, err)
    r = subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True)
    assert json.loads(r.stdout)["complete"]
