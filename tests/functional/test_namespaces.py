"""Containers: a target in another PID namespace, or whose interpreter path names another file
in its mount namespace, or whose interpreter was deleted after it started. gilscope must read
the interpreter the process runs (right version, GIL events), file GIL events under the thread
ids of gilscope's namespace (the host's), and leave the program's output and exit status as
they are untraced."""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import GILSCOPE, PYTHONS, TARGETS, record, target, version_of, uprobes_left

DEBIAN_311 = "/usr/bin/python3.11"
DEBIAN_313 = PYTHONS["debian-3.13-stripped"]
NS_PYTHONS = ["pyenv-3.12-shared", "debian-3.11-stripped", "debian-3.14-stripped"]


def need(path):
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed on this machine")
    return path


def need_unshare(*flags):
    r = subprocess.run(["unshare", *flags, "true"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"unshare {' '.join(flags)} is not allowed here: {r.stderr.strip()}")


def report_of(rec):
    r = subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def attach(tmp_path, pid, seconds=1.0, env_extra=None):
    rec = tmp_path / "attach.rec"
    env = dict(os.environ, **(env_extra or {}))
    with subprocess.Popen([GILSCOPE, "record", "--no-summary", "-p", str(pid), "--duration", str(seconds), "-o",
                           str(rec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as gs:
        _, err = gs.communicate(timeout=120)
    assert gs.returncode == 0, err
    return report_of(rec), err, gs.pid


def sample_tids(rec):
    """The thread ids the stack samples of a recording are filed under."""
    out = subprocess.run([GILSCOPE, "dump", str(rec)], capture_output=True, text=True, timeout=120).stdout
    return {int(m.group(1)) for m in re.finditer(r" SAMPLE +pid=\d+ tid=(\d+)", out)}


@pytest.mark.parametrize("name,mech", [(n, "inline") for n in NS_PYTHONS] + [("pyenv-3.12-shared", "uprobes")])
def test_launch_child_in_new_pid_namespace(tmp_path, name, mech):
    """The child is pid 1 of a new PID namespace and its threads 2 and 3: the inline probes it
    inherits write those ids; the recording files them under the host's (uprobes: perf gives the
    host's ids already)."""
    python = need(PYTHONS[name])
    need_unshare("--pid", "--fork")
    args = ["--uprobes"] if mech == "uprobes" else []
    run = record(tmp_path, [python, target("pidns_fork.py"), "unshare"], args=args)
    assert run.proc.returncode == 3, run.proc.stderr
    out = run.proc.stdout.split("\n")
    assert out[0] == "child 1 2 3", run.proc.stdout
    m = re.match(r"parent (\d+) (\d+) (\d+) forked (\d+) status 0$", out[1])
    assert m, run.proc.stdout
    parent, child = int(m.group(1)), int(m.group(4))
    rep = run.report
    assert rep["python"]["version"].startswith(version_of(python))
    by_pid = {}
    for t in rep["threads"]:
        by_pid.setdefault(t["pid"], []).append(t)
    assert parent in by_pid and child in by_pid, sorted(by_pid)
    for pid in (parent, child):
        spinners = [t for t in by_pid[pid] if t["tid"] != pid]
        assert len(spinners) == 2, by_pid[pid]
        for t in spinners:  # each thread of each process took the GIL, under its host id
            assert t["acquisitions"] > 0, t
            assert t["gil_held_ns"] > 0, t
    for t in rep["threads"]:
        assert t["tid"] > 3 or t["acquisitions"] == 0, t  # nothing filed under the namespace's ids
    if mech == "inline":
        assert rep["gil_events_from_other_pid_namespaces"] > 0
        assert rep["gil_events_unattributed"] == 0
    else:
        assert "gil_events_from_other_pid_namespaces" not in rep


@pytest.mark.parametrize("name", ["debian-3.11-stripped", "debian-3.14-stripped"])
def test_launch_unshare_command(tmp_path, name):
    """`record -- unshare --pid --fork python ...`: the interpreter execs as pid 1 of a new
    namespace (a grandchild of gilscope's): inline probes, every GIL event under a host id."""
    python = need(PYTHONS[name])
    need_unshare("--pid", "--fork")
    cmd = [python, target("busy_forever.py"), "1"]
    run = record(tmp_path, ["unshare", "--pid", "--fork", *cmd])
    untraced = subprocess.run(["unshare", "--pid", "--fork", *cmd], capture_output=True, text=True, timeout=120)
    assert run.proc.returncode == untraced.returncode == 0, run.proc.stderr
    assert run.proc.stdout == untraced.stdout == "pid\nbusy done\n"
    rep = run.report
    assert rep["python"]["mechanism"].startswith("inline probes"), rep["python"]
    assert rep["gil_events_from_other_pid_namespaces"] > 0
    assert rep["gil_events_unattributed"] == 0
    py = [p["pid"] for p in rep["processes"] if p["pid"] != rep["processes"][0]["pid"]]
    assert len(py) == 1, rep["processes"]
    busy = [t for t in rep["threads"] if t["pid"] == py[0] and not t["is_main"]]
    assert len(busy) == 2 and all(t["acquisitions"] > 0 for t in busy), rep["threads"]
    for t in rep["threads"]:
        assert t["tid"] > 3 or t["acquisitions"] == 0, t


def test_launch_same_namespace_pays_nothing(tmp_path):
    """Without the unshare nothing is translated: the report does not even mention it."""
    python = need(PYTHONS["pyenv-3.12-shared"])
    run = record(tmp_path, [python, target("pidns_fork.py")])
    assert run.proc.returncode == 3
    assert "gil_events_from_other_pid_namespaces" not in run.report
    child = int(run.proc.stdout.split("forked ")[1].split()[0])
    assert sum(t["acquisitions"] for t in run.report["threads"] if t["pid"] == child) > 0


@pytest.mark.parametrize("name", ["pyenv-3.12-shared", "debian-3.11-stripped", "debian-3.14-stripped"])
def test_attach_in_new_pid_namespace(tmp_path, name):
    """`unshare --pid --fork --mount-proc python ...`: the interpreter is pid 1 of its namespace,
    attached with inline probes; its GIL events under the host's thread ids, the program unharmed."""
    python = need(PYTHONS[name])
    need_unshare("--pid", "--fork", "--mount-proc")
    env = dict(os.environ, PYTHONPATH=TARGETS)
    tgt = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", python, target("busy_forever.py"), "4"],
                           stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert tgt.stdout.readline() == "pid\n"
        time.sleep(0.3)
        kids = subprocess.run(["pgrep", "-P", str(tgt.pid)], capture_output=True, text=True).stdout.split()
        assert len(kids) == 1, kids
        py = int(kids[0])
        with open(f"/proc/{py}/status") as f:
            assert re.search(r"^NSpid:\s+%d\s+1$" % py, f.read(), re.M)  # really in its own namespace
        host_tids = {int(t) for t in os.listdir(f"/proc/{py}/task")}
        rep, err, gs_pid = attach(tmp_path, py)
        assert rep["python"]["version"].startswith(version_of(python)), err
        threads = [t for t in rep["threads"] if t["pid"] == py]
        assert {t["tid"] for t in threads} == host_tids
        busy = [t for t in threads if not t["is_main"]]
        assert len(busy) == 2
        for t in busy:
            assert t["acquisitions"] > 0, t
        for t in rep["threads"]:
            assert t["tid"] > 3 or t["acquisitions"] == 0, t
        # inline probes (their TCB check compares with the namespace's id, 1): they write the
        # namespace's ids, every one translated to the host's
        assert rep["python"]["mechanism"].startswith("inline probes"), (rep["python"], err)
        assert rep["gil_events_from_other_pid_namespaces"] > 0
        assert rep["gil_events_unattributed"] == 0
        tids = sample_tids(tmp_path / "attach.rec")  # Python stacks: CPython keeps the namespace's ids
        assert tids and tids <= host_tids, (tids, host_tids)
        out, _ = tgt.communicate(timeout=30)
        assert out == "busy done\n"
        assert tgt.returncode == 0
    finally:
        if tgt.poll() is None:
            tgt.kill()
    assert not uprobes_left(gs_pid)


def bound_command(prog_args):
    """In a new mount namespace, Debian's 3.13 mounted over /usr/bin/python3.11, run by that path."""
    home = os.path.dirname(os.path.dirname(DEBIAN_313))
    return ["unshare", "--mount", "sh", "-c",
            f'mount --bind {DEBIAN_313} {DEBIAN_311} && PYTHONHOME={home} exec {DEBIAN_311} "$@"', "sh",
            *prog_args]


def need_bind_pair():
    need(DEBIAN_311)
    need(DEBIAN_313)
    need_unshare("--mount")
    r = subprocess.run(bound_command(["-c", "import sys; print(sys.version_info[:2])"]), capture_output=True,
                       text=True, timeout=60)
    if r.stdout.strip() != "(3, 13)":
        pytest.skip(f"cannot run 3.13 bound over 3.11 here: {r.stderr.strip()}")


def test_launch_mount_namespace_other_interpreter(tmp_path):
    """The command's /usr/bin/python3.11 is 3.13 in its mount namespace: untraced gilscope read
    its own 3.11 and patched the wrong bytes (the program crashed)."""
    need_bind_pair()
    run = record(tmp_path, bound_command([target("cpu2.py"), "500000"]), args=["--native"])
    untraced = subprocess.run(bound_command([target("cpu2.py"), "500000"]), capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=TARGETS))
    assert run.proc.returncode == untraced.returncode == 0, run.proc.stderr
    assert run.report["python"]["version"].startswith("3.13"), run.report["python"]
    busy = [t for t in run.report["threads"] if not t["is_main"] and t["pid"] == run.report["processes"][0]["pid"]]
    assert busy and all(t["acquisitions"] > 0 for t in busy), run.report["threads"]
    nat = run.report["native_stacks"]  # unwound with the 3.13 it runs: C and Python stacks agree (a torn
    # read may make one of hundreds disagree; the wrong interpreter makes them all disagree)
    assert nat["merged"] > 0 and nat["mismatched"] <= 0.05 * nat["merged"], nat


@pytest.mark.parametrize("map_files", [True, False], ids=["map_files", "proc_root"])
def test_attach_mount_namespace_other_interpreter(tmp_path, map_files):
    """Attached from outside: read through /proc/PID/map_files, or /proc/PID/root/PATH without it."""
    need_bind_pair()
    env = dict(os.environ, PYTHONPATH=TARGETS)
    tgt = subprocess.Popen(bound_command([target("busy_forever.py"), "4"]), stdout=subprocess.PIPE, text=True,
                           env=env)
    try:
        assert tgt.stdout.readline() == "pid\n"
        time.sleep(0.3)
        py = int(subprocess.run(["pgrep", "-f", f"^{DEBIAN_311} {target('busy_forever.py')}"], capture_output=True,
                                text=True).stdout.split()[0])
        rep, err, gs_pid = attach(tmp_path, py, env_extra=None if map_files else {"GILSCOPE_NO_MAP_FILES": "1"})
        assert rep["python"]["version"].startswith("3.13"), err
        assert rep["python"]["executable"] == DEBIAN_311  # named as the process names it
        busy = [t for t in rep["threads"] if t["pid"] == py and not t["is_main"]]
        assert len(busy) == 2 and all(t["acquisitions"] > 0 for t in busy), rep["threads"]
        out, _ = tgt.communicate(timeout=30)
        assert out == "busy done\n" and tgt.returncode == 0
    finally:
        if tgt.poll() is None:
            tgt.kill()
    assert not uprobes_left(gs_pid)


@pytest.mark.parametrize("map_files", [True, False], ids=["map_files", "no_map_files"])
def test_attach_interpreter_deleted_after_start(tmp_path, map_files):
    """A copy of the interpreter, deleted once started: read through map_files; without it,
    named as deleted after start, thread states only; the process unharmed either way."""
    need(DEBIAN_311)
    copy = tmp_path / "bin" / "python3.11"
    copy.parent.mkdir()
    shutil.copy2(DEBIAN_311, copy)
    env = dict(os.environ, PYTHONPATH=TARGETS)
    tgt = subprocess.Popen([str(copy), target("busy_forever.py"), "3"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert tgt.stdout.readline() == "pid\n"
        copy.unlink()
        time.sleep(0.3)
        rep, err, gs_pid = attach(tmp_path, tgt.pid, env_extra=None if map_files else {"GILSCOPE_NO_MAP_FILES": "1"})
        busy = [t for t in rep["threads"] if t["pid"] == tgt.pid and not t["is_main"]]
        assert len(busy) == 2
        if map_files:
            assert rep["python"]["version"].startswith("3.11"), err
            assert all(t["acquisitions"] > 0 for t in busy), busy
        else:
            assert f"cannot read {copy} as process {tgt.pid} maps it: deleted after start" in err, err
            assert all(t["acquisitions"] == 0 for t in busy)
        out, _ = tgt.communicate(timeout=30)
        assert out == "busy done\n" and tgt.returncode == 0
    finally:
        if tgt.poll() is None:
            tgt.kill()
    assert not uprobes_left(gs_pid)


def test_debug_file_in_the_targets_root(tmp_path):
    """A stripped libpython whose debug file only the target's mount namespace has: found by build
    id under /proc/PID/root/usr/lib/debug (and the stripped file read, not gilscope's copy)."""
    python = need(PYTHONS["pyenv-3.12-shared"])
    need_unshare("--mount")
    if not shutil.which("objcopy") or not shutil.which("strip"):
        pytest.skip("binutils (objcopy, strip) not installed")
    lib = os.path.join(os.path.dirname(os.path.dirname(python)), "lib", "libpython3.12.so.1.0")
    note = subprocess.run(["readelf", "-n", lib], capture_output=True, text=True).stdout
    bid = re.search(r"Build ID: ([0-9a-f]+)", note).group(1)
    if os.path.exists(f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"):
        pytest.skip("this machine has the debug file itself")
    dbg = tmp_path / "debug" / ".build-id" / bid[:2]
    dbg.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", lib, str(dbg / f"{bid[2:]}.debug")], check=True)
    stripped = tmp_path / "libpython-stripped.so"
    subprocess.run(["strip", "-o", str(stripped), lib], check=True)
    script = (f"mount --bind {stripped} {lib} && mount --bind {tmp_path / 'debug'} /usr/lib/debug && "
              f'exec {python} "$@"')
    run = record(tmp_path, ["unshare", "--mount", "sh", "-c", script, "sh", target("cpu2.py"), "300000"])
    assert run.proc.returncode == 0, run.proc.stderr
    py = run.report["python"]
    assert "stripped" in py["build"], py
    assert re.search(r"found by debug file /proc/\d+/root/usr/lib/debug/\.build-id/", py["mechanism"]), py
    busy = [t for t in run.report["threads"] if not t["is_main"] and t["acquisitions"] > 0]
    assert len(busy) == 2, run.report["threads"]
