"""record --native: native (C) stacks merged with the Python ones, on every interpreter here."""
import json
import os
import subprocess

import pytest

from conftest import GILSCOPE, record, target, version_of
from test_record import folded, needs_stacks

MIX = target("native_mix.py")


def native_run(tmp_path, python, *extra, seconds="1.5"):
    needs_stacks(python)
    run = record(tmp_path, [python, *extra, MIX, seconds], args=("--native",))
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.proc.stdout.strip() == "done"  # the program's output is untouched
    assert "no native stacks" not in run.proc.stderr, run.proc.stderr
    return run


def stacks_with(stacks, needle):
    return [(frames, n) for frames, n in stacks if any(f.startswith(needle) for f in frames)]


def index_of(frames, pred, start=0):
    for i in range(start, len(frames)):
        if pred(frames[i]):
            return i
    return -1


def is_native(frame, module_prefix=""):
    # native frames read "function (module)", Python ones "function (file:line)"
    if not frame.endswith(")") or "(" not in frame:
        return False
    where = frame[frame.rindex("(") + 1:-1]
    return ":" not in where and where.startswith(module_prefix)


def test_native_frames_inside_the_hashing_call(tmp_path, python):
    """Threads hashing with hashlib run without the GIL inside OpenSSL: the cpu stacks show
    libcrypto's frames called from the Python function that hashes."""
    run = native_run(tmp_path, python)
    hashing = stacks_with(folded(run.rec, "cpu"), "hash_big_buffer (")
    assert hashing
    total = sum(n for _, n in hashing)
    inside = 0
    for frames, n in hashing:
        py = index_of(frames, lambda f: f.startswith("hash_big_buffer ("))
        if index_of(frames, lambda f: is_native(f, "libcrypto"), py + 1) > py:
            inside += n
    assert inside / total > 0.5, hashing[:3]


def test_gil_waits_show_take_gil_under_the_python_frame(tmp_path, python):
    """At a GIL wait the thread's C stack is in take_gil, called from the Python code that
    asked for the GIL back; the thread being off-CPU, both stacks are exact. (The share is the
    scheduler's: on a loaded machine, or under the sanitizers, more waiters are back on a CPU
    before they take the GIL, so one run in three may show it: 19 of 85 once in a sanitized run.)"""
    for attempt in range(3):
        (tmp_path / str(attempt)).mkdir()
        run = native_run(tmp_path / str(attempt), python)
        wait = folded(run.rec, "wait")
        total = sum(n for _, n in wait)
        assert total
        in_take = [(f, n) for f, n in wait if any(x.startswith("take_gil (") for x in f)]
        # (the rest: threads woken and back on a CPU before taking the GIL, paired with their newest
        # on-CPU copy, taken before the wait; 60-70% here on 3.14, whose ctypes callbacks wait often)
        if sum(n for _, n in in_take) / total > 0.5:
            break
    assert sum(n for _, n in in_take) / total > 0.5, wait[:3]
    # Python frames sit outside (before) take_gil in most of them
    ordered = sum(n for f, n in in_take
                  if 0 <= index_of(f, lambda x: not is_native(x)) < index_of(f, lambda x: x.startswith("take_gil (")))
    assert ordered / sum(n for _, n in in_take) > 0.6
    rep = run.report["native_stacks"]
    assert rep["merged"] > 0 and rep["frozen"] > 0
    # the C and Python stacks agree (evaluation-loop calls vs Python entry frames): always when
    # both were frozen (thread off-CPU), nearly always when the C stack is up to a period older
    # (a disagreeing pair keeps its Python stack only; how many there are depends on how much
    # the program runs between two samples: 1-15% seen here overall)
    assert rep["frozen_mismatched"] <= 0.02 * rep["frozen"], rep
    assert rep["mismatched"] <= 0.35 * rep["merged"], rep


# The builds whose unwinding usually stops at libffi's closure trampoline (code outside every
# file, no CFI, no frame pointer): the C frames between the two Python calls are then unknown.
# Usually, not always (debian 3.14 gets through now and then), so not an xfail: on these builds
# the test asserts the limitation itself, and on every other build a stop is a failure.
TRAMPOLINE_STOPS = {"debian-3.14-stripped", "debian-3.15-stripped"}


def test_python_calls_c_calls_python_in_order(tmp_path, python, request):
    """qsort() from the C library, called through ctypes, calls a Python comparison function:
    merged stacks read sort_through_libc_qsort -> qsort (libc) -> python_compare_callback."""
    stops_expected = request.node.callspec.params["python"] in TRAMPOLINE_STOPS
    run = native_run(tmp_path, python)
    every = [s for what in ("hold", "cpu", "wait") for s in folded(run.rec, what)]
    cb = [(f, n) for f, n in every if any(x.startswith("python_compare_callback (") for x in f)]
    assert cb, "no stack sampled in the Python callback"
    found = stopped = 0
    for frames, n in cb:
        outer = index_of(frames, lambda f: f.startswith("sort_through_libc_qsort ("))
        libc = index_of(frames, lambda f: is_native(f, "libc"), outer + 1) if outer >= 0 else -1
        if libc >= 0 and index_of(frames, lambda f: f.startswith("python_compare_callback ("), libc + 1) > libc:
            found += n
        # folded stacks read outermost first: where the unwinding stopped is the first native frame
        elif index_of(frames, is_native) >= 0 and frames[index_of(frames, is_native)].endswith("([unknown])"):
            stopped += n
    total = sum(n for _, n in cb)
    if stops_expected:
        # in order, or cut at the trampoline: never a stack in the wrong order or with frames lost
        assert found + stopped >= 0.9 * total, (found, stopped, total, cb[:3])
    else:
        assert found > 0, (stopped, total, cb[:3])


def test_keep_cpython_evals(tmp_path, python):
    run = native_run(tmp_path, python, seconds="0.5")
    plain = folded(run.rec, "hold")
    proc = subprocess.run([GILSCOPE, "export", "--keep-cpython-evals", "--format", "folded", "--what", "hold",
                           str(run.rec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    kept = [line.rsplit(" ", 1)[0].split(";") for line in proc.stdout.splitlines()]
    assert not any(f.startswith("_PyEval_EvalFrameDefault (") for frames, _ in plain for f in frames)
    assert sum(len(f) for f in kept) > sum(len(f) for f, _ in plain)
    exe = os.path.realpath(python)
    if "pyenv" in exe or "3.11" in version_of(python):
        # symbols (pyenv) or a named evaluation loop (3.11): it shows up when kept
        assert any(f.startswith("_PyEval_EvalFrameDefault (") for frames in kept for f in frames)


def test_perf_trampolines_named_from_the_perf_map(tmp_path, python):
    needs_stacks(python)
    if tuple(map(int, version_of(python).split("."))) < (3, 12):
        pytest.skip(f"-X perf needs CPython 3.12+ ({version_of(python)})")
    run = native_run(tmp_path, python, "-X", "perf", seconds="0.7")
    proc = subprocess.run([GILSCOPE, "export", "--keep-cpython-evals", "--format", "folded", "--what", "cpu",
                           str(run.rec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "py::hash_big_buffer:" in proc.stdout
    # hidden by default: the Python frames say the same
    assert "py::" not in subprocess.run([GILSCOPE, "export", "--format", "folded", "--what", "cpu", str(run.rec)],
                                        capture_output=True, text=True).stdout
    pid = run.report["target_pid"]
    try:
        os.unlink(f"/tmp/perf-{pid}.map")
    except FileNotFoundError:
        pass


def test_perf_map_of_another_user_is_ignored(tmp_path):
    """A perf map the target's user did not write (here: world-writable) is not trusted."""
    from conftest import PYTHONS
    python = PYTHONS["pyenv-3.12-shared"]
    if not os.path.exists(python):
        pytest.skip(f"{python} is not installed")
    script = tmp_path / "spin.py"
    script.write_text(
        "import os, sys, time\n"
        "m = f'/tmp/perf-{os.getpid()}.map'\n"
        "if os.path.exists(m): os.unlink(m)\n"
        "sys.activate_stack_trampoline('perf')\n"
        "os.chmod(m, 0o666)\n"
        "def spin_here():\n"
        "    t = time.monotonic()\n"
        "    while time.monotonic() - t < 0.6: pass\n"
        "spin_here()\n"
        "os.unlink(m)\n")
    run = record(tmp_path, [python, str(script)], args=("--native",))
    assert run.proc.returncode == 0, run.proc.stderr
    proc = subprocess.run([GILSCOPE, "export", "--keep-cpython-evals", "--format", "folded", "--what", "hold",
                           str(run.rec)], capture_output=True, text=True)
    assert "spin_here (" in proc.stdout
    assert "py::spin_here" not in proc.stdout


def test_native_option_errors(tmp_path):
    for bad in ("12", "70000", "abc"):
        proc = subprocess.run([GILSCOPE, "record", "--native-stack-size", bad, "--", "true"],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "native-stack-size" in proc.stderr
