"""Tree following without a ptrace stop per thread. By default (--exec-stop, with the BPF scheduler
source) no seccomp filter is installed (no cost on every system call): the first thread of every
process forked by a traced first thread is traced (exec, fork and vfork events), and the other
descendants are followed as attach follows them: the scheduler program's fork records, and a
SIGSTOP at each exec. With --fork-watch (src/probe/forkwatch.h): only the threads that create
processes are traced, found by a seccomp filter that sends fork, vfork, clone without CLONE_THREAD
and exec to the guardian. Either way every process is followed, however busy the
threads around it; a program with its own seccomp filter still works; and what the program can see
of it is what README's tree-following section says."""
import os
import re
import signal
import time

import pytest
from conftest import PYTHONS, record, target

PY = PYTHONS["debian-3.11-stripped"]
STOPS = ("--exec-stop",)  # first threads traced and the stops at exec (the default), not the fork watch
WATCH = ("--fork-watch",)


@pytest.fixture(autouse=True)
def needs_python():
    if not os.access(PY, os.X_OK):
        pytest.skip(f"{PY} is not installed on this machine")


@pytest.mark.parametrize("how", ["exec-stop", "fork-watch"])
def test_forks_among_thread_creation_are_all_followed(tmp_path, how):
    """4 threads each fork or run a Python child 4 times while starting threads that start threads:
    every child is in the recording with its GIL events."""
    run = record(tmp_path, [PY, target("fork_storm.py"), "4", "4"], args=STOPS if how == "exec-stop" else WATCH)
    assert run.proc.returncode == 0, run.proc.stderr
    children = [f for f in run.facts if f["kind"] == "child"]
    assert len(children) == 16, run.facts
    assert {f["how"] for f in children} == {"fork", "exec"}, children
    procs = {p["pid"]: p for p in run.report["processes"]}
    for f in children:
        p = procs.get(f["pid"])
        assert p is not None and p["python"], (f, run.report["processes"])
        assert p["acquisitions"] > 0, p
        # its two spinning threads are recorded too (created untraced: no stop each)
        threads = [t for t in run.report["threads"] if t["pid"] == f["pid"] and t["acquisitions"] > 0]
        assert len(threads) >= 3, (f, threads)


def test_a_program_with_its_own_seccomp_filter(tmp_path):
    """Its filter works (uname fails with EPERM), its children are followed; under the fork watch
    (--fork-watch) a filter with a listener of its own is refused with EBUSY (one listener per
    filter chain), as README says; with the stops at exec (the default) it is not."""
    for how, args, listener_errno in (("stops", STOPS, 0), ("watch", WATCH, 16)):
        (tmp_path / how).mkdir()
        run = record(tmp_path / how, [PY, target("own_seccomp.py")], args=args)
        assert run.proc.returncode == 0, run.proc.stderr
        (f,) = [f for f in run.facts if f["kind"] == "seccomp"]
        assert f["own"] == 0 and f["uname_blocked"], f
        assert f["listener_errno"] == listener_errno, (how, f)  # 16: EBUSY
        procs = {p["pid"]: p for p in run.report["processes"]}
        assert len(f["children"]) == 2, f
        for pid in f["children"]:
            assert pid in procs and procs[pid]["python"] and procs[pid]["acquisitions"] > 0, (how, pid, procs)
    (tmp_path / "alone").mkdir()
    run = record(tmp_path / "alone", [PY, target("own_seccomp.py")], args=("--no-children",))
    (f,) = [f for f in run.facts if f["kind"] == "seccomp"]
    assert f["listener_errno"] == 0 and f["uname_blocked"], f


def test_what_the_program_sees(tmp_path):
    """clone3 fails with ENOSYS and /proc/PID/status says Seccomp: 2 under the fork watch
    (--fork-watch); with the stops at exec (the default), --no-children or --no-fork-watch neither
    (clone3(NULL, 0) is EINVAL)."""
    run = record(tmp_path, [PY, target("sees.py")], args=WATCH)
    assert run.proc.returncode == 0, run.proc.stderr
    (f,) = [f for f in run.facts if f["kind"] == "sees"]
    assert f["clone3_errno"] == 38 and f["seccomp"] == 2, f
    (tmp_path / "stops").mkdir()
    run = record(tmp_path / "stops", [PY, target("sees.py")])
    assert run.proc.returncode == 0, run.proc.stderr
    (f,) = [f for f in run.facts if f["kind"] == "sees"]
    if run.report["sched_source"].startswith("perf"):  # no BPF here: the default is the fork watch
        assert f["clone3_errno"] == 38 and f["seccomp"] == 2, f
    else:
        assert f["clone3_errno"] == 22 and f["seccomp"] == 0, f
    (tmp_path / "alone").mkdir()
    run = record(tmp_path / "alone", [PY, target("sees.py")], args=("--no-children",))
    (f,) = [f for f in run.facts if f["kind"] == "sees"]
    assert f["clone3_errno"] == 22 and f["seccomp"] == 0, f
    (tmp_path / "traced").mkdir()  # --no-fork-watch: the tree followed by tracing every thread
    run = record(tmp_path / "traced", [PY, target("sees.py")], args=("--no-fork-watch",))
    (f,) = [f for f in run.facts if f["kind"] == "sees"]
    assert f["clone3_errno"] == 22 and f["seccomp"] == 0, f
    assert run.report["processes"][0]["pid"] == run.report["target_pid"]


@pytest.mark.parametrize("how", ["exec-stop", "fork-watch"])
def test_processes_that_outlive_the_recording_still_fork(tmp_path, how):
    """After the recording ends, a process left running forks and execs as usual (under the fork
    watch a process of the guardian's answers the watch), and nothing of gilscope stays once it is
    gone."""
    out = tmp_path / "late.txt"
    code = (f"(sleep 0.5; /bin/true && {PY} -c 'import os; pid = os.fork(); os.fork() if pid else 0' "
            f"&& echo forked > {out}) & exit 0")
    run = record(tmp_path, ["sh", "-c", code], args=STOPS if how == "exec-stop" else WATCH)
    assert run.proc.returncode == 0, run.proc.stderr
    for _ in range(100):
        if out.exists() and out.read_text().strip() == "forked":
            break
        time.sleep(0.1)
    assert out.read_text().strip() == "forked"


def test_the_watch_left_behind_is_deaf_to_polite_signals(tmp_path):
    """A process left running gets gilscope-watch, named on stderr; SIGTERM, SIGINT and SIGHUP
    (pkill gilscope, a closed terminal) leave it answering; it holds nothing of gilscope's open
    (gilscope's caller sees the end of its output at once), and it exits once the tree is gone."""
    out = tmp_path / "late.txt"
    code = (f"(sleep 2; {PY} -c 'import os; os.waitpid(os.fork(), 0)' && echo forked > {out}) "
            f">/dev/null 2>&1 </dev/null & exit 0")
    t0 = time.monotonic()
    run = record(tmp_path, ["sh", "-c", code], args=WATCH)
    assert run.proc.returncode == 0, run.proc.stderr
    assert time.monotonic() - t0 < 30
    m = re.search(r"gilscope-watch \(pid (\d+)\)", run.proc.stderr)
    assert m, run.proc.stderr
    watch = int(m.group(1))
    assert not out.exists()  # the watch was named before the late fork
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        os.kill(watch, sig)
    time.sleep(0.2)
    assert os.path.exists(f"/proc/{watch}"), "gilscope-watch died of a polite signal"
    for _ in range(100):
        if out.exists() and out.read_text().strip() == "forked":
            break
        time.sleep(0.1)
    assert out.read_text().strip() == "forked"  # the late fork and exec went on
    for _ in range(100):  # the tree is gone: the watch goes too (init reaps it)
        try:
            st = open(f"/proc/{watch}/stat").read()
        except FileNotFoundError:
            break
        if st.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("gilscope-watch outlived the tree")
