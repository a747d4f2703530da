"""Python thread names (threading.Thread.name read from the target's memory) in every output, and
the convoy diagnosis (report, blame, report --json)."""
import json
import os
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


def test_long_names_keep_the_table_aligned(tmp_path):
    """Names past 24 columns are cut in the middle (their ends tell pool threads apart), and every
    row's columns after NAME start where the header's do."""
    script = tmp_path / "long.py"
    script.write_text(
        "import threading, time\n"
        "def work():\n"
        "    time.sleep(0.3)\n"
        "    sum(range(200000))\n"
        "ts = [threading.Thread(target=work, name=n) for n in\n"
        "      ('a-really-long-thread-name-for-the-io-loop', 'ThreadPoolExecutor-0_12', 'wörker-βeta-long-name-xyz')]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n")
    run = record(tmp_path, ["/usr/bin/python3.11", script])
    assert run.proc.returncode == 0, run.proc.stderr
    text = gs("report", run.rec).splitlines()
    header = next(i for i, line in enumerate(text) if line.lstrip().startswith("TID"))
    rows = text[header + 1:header + 1 + len(run.report["threads"])]
    rows = [r for r in rows if r[:3].strip() in ("", "*") and r[3:11].strip().isdigit()]
    assert len(rows) == 4, text
    col = text[header].index("LIFETIME") + len("LIFETIME")
    for r in rows:  # LIFETIME is right-aligned: its last character is in the header's last column
        assert r[col - 1] != " " and r[col] == " ", (r, text[header])
    shown = "\n".join(rows)
    assert "a-really-long-t\u2026-io-loop " in shown and "ThreadPoolExecutor-0_12 " in shown, shown
    assert "wörker-βeta-lon\u2026name-xyz " in shown, shown


def test_a_reused_thread_id_is_named_again(tmp_path):
    """A thread that gets the id of a thread gone before, with the same name, is named too."""
    if os.geteuid() != 0:
        pytest.skip("setting ns_last_pid needs root")
    run = record(tmp_path, ["/usr/bin/python3.11", target("tid_reuse.py")])
    assert run.proc.returncode == 0, run.proc.stderr
    first, second = map(int, run.proc.stdout.split())
    if first != second:
        pytest.skip(f"the machine's other tasks took thread id {first} every time: not reused")
    workers = [t for t in run.report["threads"] if t["tid"] == first]
    assert len(workers) == 2, run.report["threads"]  # two threads, one id (told apart by start)
    assert [t["name"] for t in workers] == ["worker", "worker"], workers
    assert all(t["python_name"] == "worker" for t in workers), workers
