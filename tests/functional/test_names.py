"""Python thread names (threading.Thread.name read from the target's memory) in every output, and
the convoy diagnosis (report, blame, report --json)."""
import json
import subprocess

import pytest

from conftest import GILSCOPE, record, target, tracks_forced_drops


def gs(*args):
    proc = subprocess.run([GILSCOPE, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_python_thread_names_everywhere(tmp_path, python):
    run = record(tmp_path, [python, target("thread_names.py")])
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.report["schema"] == "gilscope.report/3"
    named = {f["tid"]: f["name"] for f in run.facts if "name" in f}
    raw = [f["tid"] for f in run.facts if f.get("raw")]
    assert sorted(named.values()) == ["db-pool-3", "renamed-late", "wörker-β"] and len(raw) == 1
    for tid, name in named.items():
        t = run.thread(tid)
        assert (t["name"], t["python_name"]) == (name, name), t
        assert t["comm"] and t["label"]
    # the thread started by _thread has no Thread: its name is its label (its function)
    t = run.thread(raw[0])
    assert t["python_name"] is None and t["name"] == t["label"] == "raw_spinner", t
    main = run.thread(run.report["target_pid"])
    assert main["name"] == main["python_name"] == "MainThread", main
    assert run.report["threads_named"] >= 4
    text, blame = gs("report", run.rec), gs("blame", run.rec)
    for tid, name in named.items():
        shown = name if name.isascii() else None
        if shown:
            assert f"{tid:<8} {shown}" in text, text
            assert f"TID {tid} ({shown}" in blame, blame
    assert "early-name" not in text
    out = tmp_path / "trace.json"
    gs("export", "--format", "trace-json", "-o", out, run.rec)
    doc = json.loads(out.read_text())
    tracks = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    for tid, name in named.items():
        assert name in tracks[tid], tracks


def test_switch_interval_read_from_the_target(tmp_path, python):
    run = record(tmp_path, [python, target("convoy.py"), "0.002", "0.4"])
    assert run.proc.returncode == 0, run.proc.stderr
    proc = next(p for p in run.report["processes"] if p["pid"] == run.report["target_pid"])
    assert proc["switch_interval_ns"] == 2_000_000


def convoy_run(tmp_path, python, script, *args):
    run = record(tmp_path, [python, target(script), *args])
    assert run.proc.returncode == 0, run.proc.stderr
    if not tracks_forced_drops(run.report):
        pytest.skip("forced drops are not told apart from voluntary releases on this version yet: "
                    "no convoy can be diagnosed")
    return run


def test_convoy_is_said_in_plain_words(tmp_path, python):
    run = convoy_run(tmp_path, python, "convoy.py")
    threads = {t["name"]: t for t in run.python_threads()}
    pinger = threads["pinger"]
    c = pinger["convoy"]
    assert c is not None, pinger
    assert c["forced_wait_share"] >= 0.5 and c["forced_waits"] >= 10 and c["switch_interval_ns"] == 5_000_000
    assert {h["name"] for h in c["holders_forced"]} <= {"spin-a", "spin-b", "MainThread"}
    assert c["holders_forced"][0]["name"] in ("spin-a", "spin-b")
    assert 0 < c["wait_share"] <= 1 and c["median_forced_wait_ns"] > 0
    for name in ("spin-a", "spin-b"):
        assert threads[name]["convoy"] is None, threads[name]
    for out in (gs("report", run.rec), gs("blame", run.rec)):
        line = next(l for l in out.splitlines() if l.strip().startswith(f"pinger (TID {pinger['tid']})"))
        assert "waited" in line and "was forced to drop the GIL after the 5 ms switch interval" in line, line
        assert "median wait behind a forced drop" in line and ("spin-a" in line or "spin-b" in line), line
        assert "sys.setswitchinterval" in out and "process pool" in out


def test_two_cpu_bound_threads_are_not_a_convoy(tmp_path, python):
    run = convoy_run(tmp_path, python, "named_work.py")
    assert all(t["convoy"] is None for t in run.report["threads"]), run.report["threads"]
    assert "Convoys" not in gs("report", run.rec)
