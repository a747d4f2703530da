"""A program that exec()s into another Python mid-run: what the first image did is reported,
and nothing after the exec is counted as its GIL holds."""
from conftest import record, target, version_of

MS = 1_000_000


def test_exec_into_python_ends_the_hold(tmp_path, python):
    run = record(tmp_path, [python, target("exec_into.py")])
    assert run.proc.returncode == 0, run.proc.stderr
    rep = run.report
    # the first image's CPython stays the process's, though it was replaced
    assert rep["python"] is not None, rep
    assert rep["python"]["version"].startswith(version_of(python))
    # not silently: the new program's GIL is not recorded, and gilscope says so once
    said = [line for line in run.proc.stderr.splitlines() if "exec()'d" in line]
    assert len(said) == 1 and f"process {rep['target_pid']} exec()'d" in said[0] and "GIL is not" in said[0], \
        run.proc.stderr
    (fact,) = [f for f in run.facts if f["kind"] == "exec"]
    main = run.thread(rep["target_pid"])
    # the main thread held the GIL at the exec: that hold ends there, not when the process exits
    # 0.3 s later. Bounds from the program's own clocks: the process was age_ns old at the exec
    # (the kernel's start time counts in 10 ms ticks), and slept 0.3 s after it
    assert main["lifetime_ns"] >= fact["image_ns"] + 300 * MS, (main, fact)
    assert main["gil_held_ns"] <= main["lifetime_ns"] - 290 * MS, (main, fact)
    assert main["gil_held_ns"] <= fact["age_ns"] + 20 * MS, (main, fact)
    assert main["gil_held_ns"] >= 20 * MS, main  # it did hold it (0.2 s of contended spinning)
    # the workers, killed by the exec, held or waited within their lives
    for tid in fact["workers"]:
        w = run.thread(tid)
        assert w["gil_held_ns"] + w["gil_wait_ns"] <= w["lifetime_ns"], w
