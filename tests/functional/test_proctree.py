"""`record -- COMMAND` follows the whole process tree: every CPython the command starts, through
shells, subprocess, multiprocessing's spawn and forkserver, at any depth and from any thread,
gets the GIL probes before its first bytecode; --no-children records the command alone."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from conftest import GILSCOPE, PYTHONS, record, target, version_of

# the interpreters the issue names: Debian's stripped 3.11 and 3.14 (forkserver is 3.14's default)
TREE_PYTHONS = {k: PYTHONS[k] for k in ("debian-3.11-stripped", "debian-3.14-stripped")}


@pytest.fixture(params=sorted(TREE_PYTHONS), ids=sorted(TREE_PYTHONS))
def tpython(request):
    path = TREE_PYTHONS[request.param]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{request.param}: {path} is not installed on this machine (make pythons installs it)")
    return path


def procs(run):
    return {p["pid"]: p for p in run.report["processes"]}


def python_procs(run):
    return {pid: p for pid, p in procs(run).items() if p["python"]}


def test_shell_runs_two_pythons_and_exits_3(tmp_path, tpython):
    a = tmp_path / "a.py"
    a.write_text("import threading\n"
                 "def spin():\n    sum(i for i in range(200_000))\n"
                 "ts = [threading.Thread(target=spin) for _ in range(2)]\n"
                 "[t.start() for t in ts]; [t.join() for t in ts]\n")
    run = record(tmp_path, ["sh", "-c", f"{tpython} {a}; {tpython} {a}; exit 3"])
    assert run.proc.returncode == 3, run.proc.stderr
    py = python_procs(run)
    assert len(py) == 2, (run.report["processes"], run.proc.stderr)
    for p in py.values():
        assert p["python"]["version"].startswith(version_of(tpython)), p
        assert p["acquisitions"] > 2, p  # its GIL, from its start: main thread and two workers
        threads = [t for t in run.report["threads"] if t["pid"] == p["pid"]]
        assert sum(1 for t in threads if t["acquisitions"] > 0) >= 3, threads
    sh = [p for p in run.report["processes"] if not p["python"]]
    assert len(sh) == 1 and sh[0]["pid"] == run.report["target_pid"], run.report["processes"]


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_pool_workers_threads_hold_the_gil(tmp_path, tpython, method):
    run = record(tmp_path, [tpython, target("pool_workers.py"), method])
    assert run.proc.returncode == 0, run.proc.stderr
    assert "warning" not in run.proc.stderr, run.proc.stderr
    threads = {t["tid"]: t for t in run.report["threads"]}
    (pool,) = [f for f in run.facts if f["kind"] == "pool"]
    workers = [f for f in run.facts if f["kind"] == "worker_thread"]
    assert len(workers) == 8, run.facts
    py = python_procs(run)
    for pid in pool["pids"]:
        assert pid in py, (pid, run.report["processes"])
    for f in workers:
        t = threads.get(f["tid"])
        assert t is not None and t["pid"] == f["pid"], (f, t)
        on_cpu = t["gil_held_ns"] - t["gil_held_off_cpu_ns"]
        # the thread ran Python the whole time it measured: its GIL hold on a CPU is its CPU time
        # (the thread's own clock covers its loop; the bootstrap before and after adds a little)
        assert on_cpu >= 0.9 * f["cpu_ns"], (f, t)
        assert on_cpu <= 1.1 * f["cpu_ns"] + 3_000_000, (f, t)


@pytest.mark.parametrize("how", ["main", "thread"])
def test_subprocess_of_a_subprocess(tmp_path, tpython, how):
    run = record(tmp_path, [tpython, target("tree_child.py"), "2", how])
    assert run.proc.returncode == 0, run.proc.stderr
    facts = [f for f in run.facts if f["kind"] == "process"]
    assert len(facts) == 3, run.facts
    py = python_procs(run)
    for f in facts:
        p = py.get(f["pid"])
        assert p is not None, (f, run.report["processes"])
        assert p["acquisitions"] > 2, p


def test_a_20ms_child_is_recorded_from_its_start(tmp_path, tpython):
    code = ("import subprocess, sys, time\n"
            "t = time.monotonic()\n"
            "subprocess.run([sys.executable, '-S', '-c', 'import os; print(os.getpid())'], check=True)\n"
            "print('child took', time.monotonic() - t)\n")
    run = record(tmp_path, [tpython, "-c", code])
    assert run.proc.returncode == 0, run.proc.stderr
    child_pid = int(run.proc.stdout.split()[0])
    p = python_procs(run).get(child_pid)
    assert p is not None, run.report["processes"]
    # from its first bytecode: the interpreter's start-up takes and drops the GIL many times
    assert p["acquisitions"] >= 3, p


def test_no_children_records_the_command_alone(tmp_path, tpython):
    run = record(tmp_path, [tpython, target("tree_child.py"), "1"], args=("--no-children",))
    assert run.proc.returncode == 0, run.proc.stderr
    facts = [f for f in run.facts if f["kind"] == "process"]
    py = python_procs(run)
    assert set(py) == {run.report["target_pid"]}, (py, facts)
    run = record(tmp_path, ["sh", "-c", f"{tpython} -c pass; exit 5"], args=("--no-children",))
    assert run.proc.returncode == 5, run.proc.stderr
    assert not python_procs(run), run.report["processes"]


def test_python_only_leaves_out_other_programs(tmp_path, tpython):
    run = record(tmp_path, ["sh", "-c", f"{tpython} -c 'sum(range(10**5))'; ls / >/dev/null; exit 4"],
                 args=("--python-only",))
    assert run.proc.returncode == 4, run.proc.stderr
    py = python_procs(run)
    assert len(py) == 1, run.report["processes"]
    # the shell and ls: no thread states; the command's own exit status stays
    assert all(t["pid"] in py for t in run.report["threads"]), run.report["threads"]
    assert run.report["exit_status"] == 4


def test_children_that_outlive_the_command(tmp_path, tpython):
    """By default the recording ends with the command; --wait-children waits for the whole tree."""
    code = ("import subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.6); sum(range(10**6))'])\n")
    run = record(tmp_path, [tpython, "-c", code])
    assert run.proc.returncode == 0, run.proc.stderr
    late = [p for p in run.report["processes"] if p["pid"] != run.report["target_pid"] and p["python"]]
    assert all(p["exit_status"] is None for p in late), late  # still running at the end
    run = record(tmp_path, [tpython, "-c", code], args=("--wait-children",))
    assert run.proc.returncode == 0, run.proc.stderr
    late = [p for p in run.report["processes"] if p["pid"] != run.report["target_pid"] and p["python"]]
    assert len(late) == 1 and late[0]["exit_status"] == 0, run.report["processes"]
    assert late[0]["acquisitions"] > 0, late[0]


@pytest.mark.parametrize("mode", ["fork-watch", "exec-stop"])
@pytest.mark.parametrize("step", ["exec", "planted", "breakpoint", "syscall-ran", "detach"])
def test_gilscope_killed_at_a_childs_hand_over_leaves_the_tree_running(tmp_path, step, mode):
    """A SIGKILL of gilscope while it sets a child CPython up (the guardian's hand-over: the fork
    watch's way, --fork-watch, and the default's for a child forked by a traced first thread): the
    guardian puts the child back and lets every process of the tree go; the shell and both
    interpreters run to their end."""
    py = TREE_PYTHONS["debian-3.11-stripped"]
    if not os.access(py, os.X_OK):
        pytest.skip(f"{py} is not installed on this machine")
    out = tmp_path / "out.txt"
    script = f"{py} -c 'print(6 * 7)' >> {out}; {py} -c 'print(7 * 6)' >> {out}; echo end >> {out}"
    p = subprocess.run([GILSCOPE, "record", "-q", "--no-summary", *(["--exec-stop"] if mode == "exec-stop" else ["--fork-watch"]),
                        "-o", str(tmp_path / "k.rec"), "--", "sh", "-c", script],
                       env=dict(os.environ, GILSCOPE_TEST_KILL_AT=step), capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, (p.returncode, p.stderr)
    for _ in range(100):  # the tree goes on after gilscope's death
        if out.exists() and out.read_text().endswith("end\n"):
            break
        time.sleep(0.1)
    assert out.read_text() == "42\n42\nend\n", out.read_text()


def _poke(fifo, seconds=30):
    """A line to the shell's `read x < FIFO`, once it reads (False: it never did)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO while no one reads
        except OSError:
            time.sleep(0.02)
            continue
        os.write(fd, b"go\n")
        os.close(fd)
        return True
    return False


@pytest.mark.parametrize("mode", ["default", "fork-watch"])
def test_execs_of_a_known_program_do_not_wait_for_gilscope(tmp_path, tpython, mode):
    """Once gilscope found a program not to be CPython, the guardian resumes its next exec stops
    itself, with their argv read at the stop: a shell loop of /bin/true runs to its end while
    gilscope is stopped (SIGSTOP), and the recording still has every one of them, with its argv.
    A known program that execs a CPython (env, resumed while gilscope is stopped: gilscope learns
    of it only after the CPython's exec) still hands that CPython over, and its argv stays env's
    (META's as-of time), not the CPython's."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    ready, done = tmp_path / "ready", tmp_path / "done"
    code = "import threading; t = threading.Thread(target=sum, args=(range(10**5),)); t.start(); sum(range(10**5)); t.join()"
    script = (f"/bin/true first; /usr/bin/env /bin/true env; : > {ready}; read x < {fifo}\n"
              f"i=0; while [ $i -lt 40 ]; do /bin/true n$i; i=$((i+1)); done; : > {done}\n"
              f"for k in 1 2; do /usr/bin/env {tpython} -c '{code}'; done\n")
    args = ["record", "--no-summary", "-o", str(tmp_path / "run.rec"), *(["--fork-watch"] if mode == "fork-watch" else [])]
    gs = subprocess.Popen([GILSCOPE, *args, "--", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
    stopped = False
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists(), "the shell did not start"
        time.sleep(0.2)  # gilscope took the first exec stops of /bin/true and env (before `ready`)
        os.kill(gs.pid, signal.SIGSTOP)
        stopped = True
        assert _poke(fifo), "the shell does not read its FIFO"
        for _ in range(400):  # 40 forks and execs: well under a second untraced
            if done.exists():
                break
            time.sleep(0.05)
        assert done.exists(), "the loop waited for gilscope: its exec stops were not resumed by the guardian"
        time.sleep(0.3)  # env resumed, its CPython waits at its exec stop for gilscope
        os.kill(gs.pid, signal.SIGCONT)
        stopped = False
        out, err = gs.communicate(timeout=120)
    finally:
        if stopped:
            os.kill(gs.pid, signal.SIGCONT)
        if gs.poll() is None:  # a failure: the shell (its own group's) may wait on the FIFO
            os.killpg(gs.pid, signal.SIGKILL)
            gs.communicate(timeout=60)
    assert gs.returncode == 0, err
    rep = subprocess.run([GILSCOPE, "report", "--json", str(tmp_path / "run.rec")], capture_output=True, text=True,
                         timeout=120)
    assert rep.returncode == 0, rep.stderr
    everyone = json.loads(rep.stdout)["processes"]
    trues = sorted(p["argv"][1] for p in everyone if p["argv"] and p["argv"][0] == "/bin/true")
    assert trues == sorted(["env", "first"] + [f"n{i}" for i in range(40)]), trues
    py = [p for p in everyone if p["python"]]
    assert len(py) == 2, everyone
    for p in py:
        assert p["acquisitions"] > 2, p  # set up at its exec, behind env's resumed one
        assert [(i["argv"] or [None])[0] for i in p["images"]][-2:] == ["/usr/bin/env", tpython], p["images"]


# Under --exec-stop a process forked by a traced thread (the command's first thread, and the first
# thread of every process forked so) is traced from its fork: its exec stop is a ptrace stop, which
# no parent sees, and its CPython is set up there (proctree.c). A process forked by another thread
# is stopped at its exec by the scheduler program (a SIGSTOP), or, when its parent would show that
# stop (a job-control shell's job), not stopped and attached as it runs (attach.c).
FROM_A_THREAD = ("import subprocess, sys, threading\nr = []\n"
                 "t = threading.Thread(target=lambda: r.append(subprocess.run(sys.argv[1:]).returncode))\n"
                 "t.start(); t.join(); sys.exit(r[0])\n")


def from_a_thread(cmd):
    """cmd, started by a thread that is not its parent's first (the scheduler program's stops)."""
    return ["/usr/bin/python3", "-c", FROM_A_THREAD, *cmd]


def test_gilscope_killed_while_a_child_is_set_up_at_its_exec(tmp_path):
    """--exec-stop (the scheduler program's stops at exec: the shell is started by a thread):
    gilscope SIGKILLed at every point from a child CPython's stop at its exec to the end of its
    set-up (every fourth point of the injected calls, the ring, the patches; and with the
    breakpoint planted at its entry point): the deadman continues a child left stopped (the
    breakpoint's byte written back first), the child runs on with whatever was left, and the shell
    and both interpreters run to their end."""
    py = TREE_PYTHONS["debian-3.11-stripped"]
    if not os.access(py, os.X_OK):
        pytest.skip(f"{py} is not installed on this machine")

    def run(kill_at, out):
        script = f"{py} -c 'print(6 * 7)' >> {out}; {py} -c 'print(7 * 6)' >> {out}; echo end >> {out}"
        return subprocess.run([GILSCOPE, "record", "--no-summary", "--exec-stop", "-o", str(tmp_path / "k.rec"), "--",
                               *from_a_thread(["sh", "-c", script])],
                              env=dict(os.environ, GILSCOPE_TEST_KILL_AT=f"point:{kill_at}"),
                              capture_output=True, text=True, timeout=120)

    listing = run(0, tmp_path / "list.txt")
    assert listing.returncode == 0, listing.stderr
    points = re.findall(r"gilscope test point (\d+): (.*)", listing.stderr)
    first = next(i for i, (_, name) in enumerate(points) if name == "a process stopped at its exec")
    last = next(i for i, (_, name) in enumerate(points) if i > first and name == "threads let go")
    planted = next(i for i, (_, name) in enumerate(points) if i > first and name == "entry breakpoint planted")
    sweep = sorted({first, planted, last, *range(first, last + 1, 4)})
    assert len(sweep) >= 6, points
    for i in sweep:
        n, name = points[i]
        out = tmp_path / f"out{n}.txt"
        p = run(n, out)
        assert p.returncode == -9, (n, name, p.returncode, p.stderr)
        for _ in range(100):  # the tree goes on after gilscope's death
            if out.exists() and out.read_text().endswith("end\n"):
                break
            time.sleep(0.1)
        assert out.exists() and out.read_text() == "42\n42\nend\n", (n, name, out.exists() and out.read_text())


# A parent that shows its child's stops: a job-control shell (its job in a process group of its
# own, "Stopped"), or, with "plain", a parent that watches its child's stops in its own group, as
# script(1) and perf stat do (script stops itself too; perf stat takes the stop for the end).
JOB_SHELL = r"""
import os, signal, sys, time
kid_python = sys.argv[1]
KID = ("import threading, time\nend = time.monotonic() + 0.5\n"
       "def w():\n    while time.monotonic() < end: pass\n"
       "ts = [threading.Thread(target=w) for _ in range(2)]\n[t.start() for t in ts]; [t.join() for t in ts]\n")
kid = os.fork()
if kid == 0:
    if sys.argv[2:] != ["plain"]:
        os.setpgid(0, 0)  # a job of its own, as a job-control shell starts it
    if os.environ.get("JOB_LD_AUDIT"):  # its dynamic loader made slow
        os.environ["LD_AUDIT"] = os.environ["JOB_LD_AUDIT"]
    os.execv(kid_python, [kid_python, "-c", KID])
stops = 0
while True:  # and waits for it as such a shell does: a stop is the job's ("Stopped")
    _, st = os.waitpid(kid, os.WUNTRACED)
    if not os.WIFSTOPPED(st):
        break
    stops += 1
    os.kill(kid, signal.SIGCONT)
print("stops", stops, "exit", os.waitstatus_to_exitcode(st), flush=True)
"""


def _no_bpf(run):
    if "needs the BPF scheduler source" in run.proc.stderr:
        pytest.skip("SKIPPED: the BPF scheduler source is not available here (--exec-stop needs it)")


def _kid(run, kid_python):
    """The JOB_SHELL's child: the process that ran KID."""
    kid = [p for p in run.report["processes"] if p["argv"][:2] == [kid_python, "-c"]]
    assert len(kid) == 1, run.report["processes"]
    return kid[0]


def _workers(run, kid):
    return [t for t in run.report["threads"] if t["pid"] == kid["pid"] and t["acquisitions"] > 5]


@pytest.mark.parametrize("how", ["first-thread", "other-thread"])
def test_exec_stop_leaves_a_job_control_shells_job_running(tmp_path, tpython, how):
    """--exec-stop: a child in a process group of its own in its parent's session (a job-control
    shell's job, which the shell shows as "Stopped" when it stops: WUNTRACED) is not seen to stop.
    Forked by the shell's first thread (traced), its exec stop is a ptrace stop and its CPython is
    set up there; forked by another thread, it is not stopped at all and is attached as it runs
    (once its interpreter started). Either way its two threads' GIL is recorded, without a warning."""
    w = tmp_path / "job_shell.py"
    w.write_text(JOB_SHELL)
    cmd = [tpython, str(w), tpython]
    run = record(tmp_path, cmd if how == "first-thread" else from_a_thread(cmd), args=("--exec-stop", "-v"))
    _no_bpf(run)
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.proc.stdout == "stops 0 exit 0\n", (run.proc.stdout, run.proc.stderr)
    assert "warning" not in run.proc.stderr, run.proc.stderr
    kid = _kid(run, tpython)
    if how == "first-thread":
        assert re.search(rf"hand-over of process {kid['pid']}: ", run.proc.stderr), run.proc.stderr
    else:
        assert re.search(rf"process {kid['pid']} \(.*\): attached (at|after) its exec", run.proc.stderr), \
            run.proc.stderr
    assert len(_workers(run, kid)) >= 2, (kid, [t for t in run.report["threads"] if t["pid"] == kid["pid"]])


def test_exec_stop_is_not_seen_by_a_parent_that_watches_its_childs_stops(tmp_path, tpython):
    """A parent that waits for its child with WUNTRACED in its own process group (script(1) and
    perf stat watch so; script then stops itself for good, perf stat stops counting): the child it
    forks from its first thread stops at its exec in a ptrace stop, which the parent never sees, and
    its CPython is recorded from its first instruction. (The scheduler program's SIGSTOP, the way
    --exec-stop stopped every child before, showed the parent one stop.)"""
    w = tmp_path / "job_shell.py"
    w.write_text(JOB_SHELL)
    run = record(tmp_path, [tpython, str(w), tpython, "plain"], args=("--exec-stop",))
    _no_bpf(run)
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.proc.stdout == "stops 0 exit 0\n", (run.proc.stdout, run.proc.stderr)
    assert "warning" not in run.proc.stderr, run.proc.stderr
    assert len(_workers(run, _kid(run, tpython))) >= 2


SLOW_LOADER = r"""
#define _GNU_SOURCE
#include <link.h>
#include <stdlib.h>
#include <unistd.h>
unsigned int la_version(unsigned int v) { usleep(atoi(getenv("SLOW_MS")) * 1000); return LAV_CURRENT; }
"""


def test_exec_stop_attaches_a_job_whose_loader_is_slow(tmp_path):
    """A job not stopped at its exec (forked by a thread that is not its parent's first) whose
    dynamic loader takes 1 s before it maps libpython: looked at every few ms for 2 s however often
    gilscope's loop wakes (the stack sampler wakes it 1,000 times a second), so it is attached, its
    threads' GIL recorded; one that takes 3 s gets the warning at the end of the 2 s, with its
    reason (the review found both silent). The same job forked by its parent's first thread is set
    up at its entry point, after its loader, however slow (3 s)."""
    py = PYTHONS["pyenv-3.11.7-shared"]  # its loader maps libpython: nothing to attach to before
    if not os.access(py, os.X_OK) or not shutil.which("cc"):
        pytest.skip(f"SKIPPED: {py} or a C compiler (cc) is not installed on this machine")
    (tmp_path / "slow.c").write_text(SLOW_LOADER)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / "slow.so"), str(tmp_path / "slow.c")], check=True)
    w = tmp_path / "job_shell.py"
    w.write_text(JOB_SHELL)
    for ms, how in ((1000, "other-thread"), (3000, "other-thread"), (3000, "first-thread")):
        cmd = [py, str(w), py]
        run = record(tmp_path, cmd if how == "first-thread" else from_a_thread(cmd), args=("--exec-stop", "-v"),
                     env_extra={"JOB_LD_AUDIT": str(tmp_path / "slow.so"), "SLOW_MS": str(ms)})
        _no_bpf(run)
        assert run.proc.returncode == 0 and run.proc.stdout == "stops 0 exit 0\n", (ms, run.proc.stdout, run.proc.stderr)
        kid = _kid(run, py)
        said = re.findall(rf"process {kid['pid']}\b.*", run.proc.stderr)
        if ms == 1000 or how == "first-thread":
            assert any(re.search(r"attached (at|after) its exec", x) for x in said) or \
                re.search(rf"hand-over of process {kid['pid']}: ", run.proc.stderr), (ms, how, said, run.proc.stderr)
            assert "warning" not in run.proc.stderr, run.proc.stderr
            workers = _workers(run, kid)
            assert len(workers) >= 2, [t for t in run.report["threads"] if t["pid"] == kid["pid"]]
        else:
            assert any("recorded without GIL events (looked at for 2 s after its exec)" in x for x in said), \
                (ms, said, run.proc.stderr)


def test_exec_stop_says_why_a_job_control_shells_job_is_refused(tmp_path):
    """The same job (forked by a thread that is not its parent's first), run by CPython 3.8 (not
    supported): not stopped either, and the warning gives the reason at once, while it runs, not
    2 s later (it lives 0.5 s) or never."""
    old, parent = "/root/.pyenv/versions/3.8.18/bin/python3.8", TREE_PYTHONS["debian-3.11-stripped"]
    if not os.access(old, os.X_OK) or not os.access(parent, os.X_OK):
        pytest.skip(f"SKIPPED: {old} or {parent} is not installed on this machine")
    w = tmp_path / "job_shell.py"
    w.write_text(JOB_SHELL)
    run = record(tmp_path, from_a_thread([parent, str(w), old]), args=("--exec-stop",))
    _no_bpf(run)
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.proc.stdout == "stops 0 exit 0\n", (run.proc.stdout, run.proc.stderr)
    assert re.search(r"warning: CPython 3\.8 is not supported .*; process \d+ is recorded without GIL events\n",
                     run.proc.stderr), run.proc.stderr


def _tree(run, *args):
    """The text report's "Processes:" section, one line each."""
    rep = subprocess.run([GILSCOPE, "report", *args, str(run.rec)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    lines = rep.stdout.split("\nProcesses:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert lines, rep.stdout
    return lines


def test_short_lived_helpers_fold_into_one_line(tmp_path, tpython):
    """A launcher like pyenv's shim runs a few dozen short helpers (shells, cat, sed, head) before
    the one CPython that matters: the text report folds them into one line per parent, the path to
    a Python (a subshell that runs it) stays, --all-processes and the JSON keep every one."""
    shim = tmp_path / "python3"
    shim.write_text("#!/bin/sh\n"
                    "v=$(echo 3.11 | cat | sed s/3/4/ | head -n 1)\n"
                    "for i in 1 2 3; do basename /x/y >/dev/null; done\n"
                    f"( {tpython} -c 'sum(range(10**5))'; true )\n"
                    f"exec {tpython} -c 'sum(range(10**5))'\n")
    shim.chmod(0o755)
    run = record(tmp_path, [str(shim)])
    assert run.proc.returncode == 0, run.proc.stderr
    everyone = run.report["processes"]
    helpers = [p for p in everyone if not p["python"] and p["pid"] != run.report["target_pid"]]
    py = python_procs(run)
    assert len(py) == 2, everyone
    tree = _tree(run)
    folded = [line for line in tree if "short-lived processes, not Python:" in line]
    # the subshell that started a Python stays, as the path to it; the other helpers fold
    kept = [line for line in tree if line.rstrip().endswith("not Python")]
    assert len(kept) == 1 and "sh" in kept[0], tree
    assert len(folded) == 1, tree
    n = int(folded[0].split("+ ", 1)[1].split()[0])
    assert n == len(helpers) - 1 and n >= 5, (tree, helpers)
    for name in ("basename x3", "cat", "sed", "head"):
        assert name in folded[0], folded
    assert len(tree) == len(py) + 1 + 1, tree  # the Pythons (the command one of them), the subshell, the fold
    assert tree == _tree(run), "the folded line changes from one reading to the next"
    every = _tree(run, "--all-processes")
    assert len(every) == len(everyone), every
    assert sum(1 for line in every if line.rstrip().endswith("not Python")) == len(helpers), every
