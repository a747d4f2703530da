"""gilscope perf2trace on real `perf script` output recorded here (tests/fixtures)."""
import json
import os
import subprocess

import pytest

from conftest import GILSCOPE, ROOT

FIX = os.path.join(ROOT, "tests", "fixtures")


def convert(tmp_path, mode, text, *opts):
    out = tmp_path / "perf.json"
    proc = subprocess.run([os.path.abspath(GILSCOPE), "perf2trace", mode, "-o", str(out), *opts], input=text,
                          capture_output=True, text=True, timeout=120)
    doc = json.loads(out.read_text()) if proc.returncode == 0 else None
    return proc, doc


def check_trace(doc):
    events = doc["traceEvents"]
    assert all(isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int) for e in events)
    tracks = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault(e["tid"], []).append(e)
    for slices in tracks.values():
        slices.sort(key=lambda e: e["ts"])
        for a, b in zip(slices, slices[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + 0.002
    return tracks


def summary(stdout):
    rows = {}
    for line in stdout.splitlines():
        f = line.split()
        if len(f) >= 9 and f[-1].endswith("s") and (f[0].isdigit() or f[0] == "*"):
            f = f[1:] if f[0] == "*" else f
            rows[int(f[0])] = f
    return rows


def test_gil_mode(tmp_path):
    text = open(os.path.join(FIX, "perf-script-gil.txt")).read()
    proc, doc = convert(tmp_path, "gil", text)
    assert proc.returncode == 0, proc.stderr
    tracks = check_trace(doc)
    assert set(tracks) == {2348, 2350, 2351}
    # exact accounting: the holds of all threads sum to at most the wall time
    held = sum(e["dur"] for t in tracks.values() for e in t if e["name"].startswith("holds GIL"))
    first = min(e["ts"] for t in tracks.values() for e in t)
    last = max(e["ts"] + e["dur"] for t in tracks.values() for e in t)
    assert held <= last - first + 1
    assert any(e["name"] == "S(GIL)" or e["name"].startswith("waits GIL") for t in tracks.values() for e in t)
    assert "viztracer_metadata" in doc
    assert "0 lines skipped" in proc.stderr
    rows = summary(proc.stdout)
    assert set(rows) == {2348, 2350, 2351}


def test_ns_timestamps_give_the_same_answer(tmp_path):
    a_proc, a = convert(tmp_path, "gil", open(os.path.join(FIX, "perf-script-gil.txt")).read(), "-q")
    b_proc, b = convert(tmp_path, "gil", open(os.path.join(FIX, "perf-script-gil-ns.txt")).read(), "-q")
    assert a_proc.returncode == b_proc.returncode == 0
    ha = sum(e["dur"] for e in a["traceEvents"] if e["ph"] == "X" and e["name"].startswith("holds"))
    hb = sum(e["dur"] for e in b["traceEvents"] if e["ph"] == "X" and e["name"].startswith("holds"))
    assert abs(ha - hb) < 0.01 * ha + 10  # the same run at microsecond vs nanosecond resolution


def test_sched_mode_with_dwarf_callchains(tmp_path):
    text = open(os.path.join(FIX, "perf-script-sched-dwarf.txt")).read()
    proc, doc = convert(tmp_path, "sched", text)
    assert proc.returncode == 0, proc.stderr
    tracks = check_trace(doc)
    assert {2373, 2375, 2376} <= set(tracks)
    names = {e["name"] for t in tracks.values() for e in t}
    assert "S" in names and ("R" in names or "running (no GIL)" in names)


def test_truncated_and_garbage_lines_are_skipped_and_counted(tmp_path):
    text = open(os.path.join(FIX, "perf-script-gil.txt")).read()
    lines = text.splitlines(keepends=True)
    garbage = ["this is not perf output\n", "python3.11  2348 [000]  notatime: python:take_gil: (x)\n",
               "\x00\x01\x02 binary junk\n", "python3.11 2348 [000] 4975.8: python:take_gil: (short time)\n"]
    mixed = "".join(lines[:1000] + garbage + lines[1000:]) + lines[-1][: len(lines[-1]) // 2]  # cut mid-line
    proc, doc = convert(tmp_path, "gil", mixed)
    assert proc.returncode == 0, proc.stderr
    assert "5 lines skipped" in proc.stderr or "4 lines skipped" in proc.stderr, proc.stderr
    check_trace(doc)


def test_not_perf_output_fails_clearly(tmp_path):
    proc, _ = convert(tmp_path, "gil", "hello\nworld\n" * 100)
    assert proc.returncode == 1
    assert "no gil events in the input" in proc.stderr
    assert proc.stderr.count("\n") == 1
    proc, _ = convert(tmp_path, "sched", open(os.path.join(FIX, "perf-script-gil.txt")).read())
    assert proc.returncode == 1  # GIL probes given to the scheduler mode


def test_per4m_options_are_accepted(tmp_path):
    """per4m's drawing options are accepted and, as documented (gilscope always draws every
    state), change nothing in the trace; -q silences the summary and the closing line; an
    option per4m does not have is refused."""
    text = open(os.path.join(FIX, "perf-script-gil.txt")).read()
    base, base_doc = convert(tmp_path, "gil", text)
    assert base.returncode == 0, base.stderr
    assert set(summary(base.stdout)) == {2348, 2350, 2351}
    assert "3000 events from 3000 lines" in base.stderr
    for opts in (["--no-running", "--sleeping"], ["--as-async", "--only-lock"], ["--all-tracepoints", "-v"],
                 ["--no-sleeping", "--running", "--no-as-async", "-q"]):
        proc, doc = convert(tmp_path, "gil", text, *opts)
        assert proc.returncode == 0, (opts, proc.stderr)
        assert doc == base_doc, f"{opts} changed the trace"
        if "-q" in opts:
            assert proc.stdout == "" and proc.stderr == "", opts
        else:
            assert summary(proc.stdout) == summary(base.stdout), opts
            assert "3000 events from 3000 lines" in proc.stderr, opts
    bad, _ = convert(tmp_path, "gil", text, "--no-such-option")
    assert bad.returncode == 2 and "Try 'gilscope --help'" in bad.stderr


def test_offgil_from_perf_script_and_from_a_recording(tmp_path):
    gs = os.path.abspath(GILSCOPE)
    text = open(os.path.join(FIX, "perf-script-sched-dwarf.txt")).read()
    proc = subprocess.run([gs, "offgil"], input=text, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [l.rsplit(" ", 1) for l in proc.stdout.splitlines()]
    assert lines and all(n.isdigit() for _, n in lines)
    # S(GIL): every stack ends where the thread slept for the GIL, eval frames folded away
    assert all(stack.split(";")[-1] == "take_gil" for stack, _ in lines)
    assert not any("_PyEval_EvalFrameDefault" in stack for stack, _ in lines)
    keep = subprocess.run([gs, "offgil", "--no-strip-take-gil", "--keep-cpython-evals"], input=text,
                          capture_output=True, text=True)
    assert any("futex" in l for l in keep.stdout.splitlines())  # the frames above take_gil are kept
    every = subprocess.run([gs, "offgil", "--state", "S"], input=text, capture_output=True, text=True)
    assert len(every.stdout.splitlines()) >= len(lines)
    out = tmp_path / "offgil.folded"
    proc = subprocess.run([gs, "offgil", "-o", str(out)], input=text, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "" and out.read_text() == "\n".join(
        f"{s} {n}" for s, n in lines) + "\n"
    bad = subprocess.run([gs, "offgil"], input="nothing here\n", capture_output=True, text=True)
    assert bad.returncode == 1 and "no events" in bad.stderr


def test_old_formats_counters_and_names_with_spaces(tmp_path):
    text = (
        "python3.11  2373 [001]  4979.296479:                sched:sched_switch: python3.11:2373 [120] S ==> swapper/1:0 [120]\n"
        "swapper     0 [001]  4979.297000:                sched:sched_wakeup: python3.11:2373 [120] CPU:001\n"
        "swapper     0 [001]  4979.297100:                sched:sched_switch: swapper/1:0 [120] R ==> python3.11:2373 [120]\n"
        "my thread name 2373 [001]  4979.297200:    1000000 cycles:u:  ffffffff81000000 foo+0x0 ([kernel])\n"
        "my thread name 2373 4979.297300:    2000000 cycles:u:  ffffffff81000000 foo+0x0 ([kernel])\n"
    )
    proc, doc = convert(tmp_path, "sched", text)
    assert proc.returncode == 0, proc.stderr
    assert "0 lines skipped" in proc.stderr
    ev = doc["traceEvents"]
    assert [e["name"] for e in ev if e["ph"] == "X" and e["tid"] == 2373][:1] == ["S"]
    counters = [e for e in ev if e["ph"] == "C" and e["name"] == "cycles:u"]
    assert [c["args"]["cycles:u"] for c in counters] == [1000000, 2000000]  # numbers, not strings
    names = {e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert any("python3.11" in n for n in names)
