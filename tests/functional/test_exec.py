"""A program that exec()s into another Python mid-run: what the first image did is reported,
and its holds end at the exec. By default the new image is followed (its own probes, its own
image in the report); with --no-children it is not recorded, and gilscope says so once."""
from conftest import record, target, version_of

MS = 1_000_000


def test_exec_into_python_is_followed(tmp_path, python):
    run = record(tmp_path, [python, target("exec_into.py")])
    assert run.proc.returncode == 0, run.proc.stderr
    rep = run.report
    assert "exec()'d" not in run.proc.stderr, run.proc.stderr
    (proc,) = [p for p in rep["processes"] if p["pid"] == rep["target_pid"]]
    # gilscope's child before its exec, the first CPython, the CPython it exec'd: each its own image
    images = [im for im in proc["images"] if im["python"]]
    assert len(images) == 2, proc["images"]
    assert images[1]["argv"][1:] == ["-c", "import time; time.sleep(0.3)"], images[1]
    assert proc["python"]["version"].startswith(version_of(python)), proc
    (fact,) = [f for f in run.facts if f["kind"] == "exec"]
    main = run.thread(rep["target_pid"])
    assert main["lifetime_ns"] >= fact["image_ns"] + 300 * MS, (main, fact)
    # the second image sleeps 0.3 s without the GIL: no hold runs on across the exec into it
    assert main["gil_held_ns"] <= main["lifetime_ns"] - 290 * MS, (main, fact)
    assert main["gil_held_ns"] >= 20 * MS, main


def test_exec_into_python_ends_the_hold(tmp_path, python):
    run = record(tmp_path, [python, target("exec_into.py")], args=("--no-children",))
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
