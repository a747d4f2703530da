"""Faults around gilscope: a full disk, no tracefs, a process it may not trace, signals during an
attach, output paths that are symbolic links. In each case gilscope says one clear thing, and the
traced program behaves exactly as it would without gilscope."""
import json
import shutil
import os
import signal
import subprocess
import time

import pytest

from conftest import GILSCOPE, ROOT, TARGETS, target

PY = "/usr/bin/python3.11"  # Debian's static, stripped build: its GIL code is in the executable
SETPRIV = "/usr/bin/setpriv"
UNSHARE = "/usr/bin/unshare"
NOBODY = 65534
OTHER = 65533  # a second unprivileged user id (needs no passwd entry)


def need(path):
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not installed")


def report_json(rec):
    rep = subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    return json.loads(rep.stdout)


def errors(stderr):
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def uprobes_of(gilscope_pid):
    """uprobe definitions of the gilscope run with this pid (other runs may be going on)."""
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        p = os.path.join(d, "uprobe_events")
        if os.path.exists(p):
            with open(p) as f:
                return [line for line in f if f"gilscope_{gilscope_pid}/" in line]
    return []


def text_of(pid, path):
    """(bytes in the process, bytes in the file) of every executable mapping of path."""
    pairs = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem, \
            open(path, "rb") as f:
        for line in maps:
            parts = line.split()
            if len(parts) < 6 or parts[5] != path or "x" not in parts[1]:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            mem.seek(start)
            f.seek(int(parts[2], 16))
            pairs.append((mem.read(end - start), f.read(end - start)))
    return pairs


def assert_untouched(pid, gilscope_pid=None):
    """The process runs free: no tracer, not stopped, no gilscope mapping, its code as in the file."""
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert status["TracerPid"] == "0"
    assert status["State"][0] not in "tT", status["State"]
    with open(f"/proc/{pid}/maps") as f:
        assert "gilscope" not in f.read()
    exe = os.readlink(f"/proc/{pid}/exe")
    pairs = text_of(pid, exe)
    assert pairs, f"no executable mapping of {exe}"
    for in_memory, in_file in pairs:
        n = min(len(in_memory), len(in_file))  # the last page may run past the end of the file
        assert in_memory[:n] == in_file[:n], "the program's code was left modified"
    if gilscope_pid is not None:
        assert not uprobes_of(gilscope_pid)


def start_busy(seconds, user=None, env_extra=None):
    """busy_forever.py (two spinning threads), as root or as another user; returns it once it runs."""
    cmd = [PY, target("busy_forever.py"), str(seconds)]
    if user is not None:
        cmd = [SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", "--inh-caps=-all", *cmd]
    env = dict(os.environ, PYTHONPATH=TARGETS, **(env_extra or {}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd="/")
    assert proc.stdout.readline() == "pid\n"
    time.sleep(0.2)
    return proc


def finish_busy(proc):
    out, _ = proc.communicate(timeout=60)
    assert out == "busy done\n"
    assert proc.returncode == 0


# ---- a full disk ------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, unmounted at the end whatever happens."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_recording(tmp_path, small_disk):
    # four threads ping-ponging through pipes: hundreds of thousands of GIL events, far more than 1 MiB
    cmd = [PY, target("pingpong.py"), "4", "60000", "3"]
    expected = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert expected.returncode == 3
    rec = small_disk / "run.rec"
    proc = subprocess.run([GILSCOPE, "record", "-o", str(rec), "--", *cmd], capture_output=True, text=True,
                          timeout=300)
    # the command ran as it does alone, and gilscope exits with its status (the documented rule)
    assert proc.stdout == expected.stdout
    assert proc.returncode == 3, proc.stderr
    # one message, naming the file and the cause
    errs = errors(proc.stderr)
    assert len(errs) == 1, proc.stderr
    assert str(rec) in errs[0] and "no space" in errs[0].lower(), errs
    assert "Traceback" not in proc.stderr
    # what was written is a readable recording, marked incomplete
    rep = report_json(rec)
    assert rep["complete"] is False
    assert sum(t["acquisitions"] for t in rep["threads"]) > 0
    assert os.path.getsize(rec) > 512 * 1024  # what fitted was kept, in whole records
    for kind in (["blame"], ["dump"]):
        out = subprocess.run([GILSCOPE, *kind, str(rec)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr


def test_disk_full_before_recording(tmp_path, small_disk):
    # not even the header fits: gilscope stops before it starts the command
    with open(small_disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    marker = tmp_path / "ran"
    proc = subprocess.run([GILSCOPE, "record", "-o", str(small_disk / "run.rec"), "--", "/bin/touch", str(marker)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert not marker.exists()
    assert "no space" in proc.stderr.lower() and "run.rec" in proc.stderr
    assert "the command was not started" in proc.stderr


# ---- no tracefs ---------------------------------------------------------------------------------

def in_private_mounts(script, *argv):
    """Runs script (sh) in a private mount namespace: what it mounts and unmounts stays there."""
    return subprocess.run([UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", *argv],
                          capture_output=True, text=True, timeout=60)


def test_tracefs_cannot_be_mounted(tmp_path):
    # root, but without CAP_SYS_ADMIN (as in many containers), and tracefs not mounted
    need(UNSHARE)
    need(SETPRIV)
    marker = tmp_path / "ran"
    proc = in_private_mounts(
        'umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; '
        'exec "$1" --inh-caps=-sys_admin --bounding-set=-sys_admin "$2" record -o "$3" -- /bin/touch "$4"',
        SETPRIV, GILSCOPE, str(tmp_path / "x.rec"), str(marker))
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists(), "the command must not start"
    assert not (tmp_path / "x.rec").exists()
    assert "tracefs" in proc.stderr and "CAP_SYS_ADMIN" in proc.stderr
    assert "mount -t tracefs nodev /sys/kernel/tracing" in proc.stderr  # what to do about it
    assert "the command was not started" in proc.stderr
    assert "run gilscope as root" not in proc.stderr  # it is root already
    assert len(errors(proc.stderr)) == 2, proc.stderr


def test_tracefs_missing(tmp_path):
    # no /sys/kernel/tracing at all (an empty /sys/kernel): a clear sentence, not a raw errno
    need(UNSHARE)
    marker = tmp_path / "ran"
    proc = in_private_mounts(
        'umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null; '
        'mount -t tmpfs -o ro,size=4k tmpfs /sys/kernel && exec "$1" record -o "$2" -- /bin/touch "$3"',
        GILSCOPE, str(tmp_path / "x.rec"), str(marker))
    assert proc.returncode == 1, proc.stderr
    assert not marker.exists()
    assert "tracefs is not available" in proc.stderr and "/sys/kernel/tracing" in proc.stderr
    assert "the command was not started" in proc.stderr
    # the real tracefs is still there for everyone else
    assert os.path.exists("/sys/kernel/tracing/uprobe_events")


# ---- a process gilscope may not trace ---------------------------------------------------------------

def attach_refused(tmp_path, setpriv_args, tgt):
    os.chmod(tmp_path, 0o777)
    rec = tmp_path / "x.rec"
    gs = subprocess.Popen([SETPRIV, *setpriv_args, GILSCOPE, "record", "-p", str(tgt.pid), "--duration", "1",
                           "-o", str(rec)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = gs.communicate(timeout=60)
    assert gs.returncode == 1, err
    assert len(err.splitlines()) == 1, err  # one message
    assert not rec.exists(), "nothing is created"
    assert "Traceback" not in err and "Segmentation" not in err
    assert_untouched(tgt.pid, gs.pid)
    return err


def test_attach_unprivileged_user_to_root_process(tmp_path):
    need(SETPRIV)
    tgt = start_busy(3)
    try:
        err = attach_refused(tmp_path, [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                        "--inh-caps=-all"], tgt)
        assert "root" in err
    finally:
        if tgt.poll() is None:
            finish_busy(tgt)


def test_attach_without_cap_sys_ptrace(tmp_path):
    # root that may do everything but ptrace (a restricted capability set): refused before anything
    need(SETPRIV)
    tgt = start_busy(3)
    try:
        err = attach_refused(tmp_path, ["--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"], tgt)
        assert f"not permitted to attach to process {tgt.pid}" in err
        assert "without CAP_SYS_PTRACE" in err and "nothing was done to the process" in err
    finally:
        if tgt.poll() is None:
            finish_busy(tgt)


def test_attach_to_another_users_process(tmp_path):
    # a user with the perf and tracefs capabilities but not CAP_SYS_PTRACE, against another user's process
    need(SETPRIV)
    tgt = start_busy(3, user=OTHER)
    caps = "+sys_admin,+perfmon,+dac_override,+kill"
    try:
        err = attach_refused(tmp_path, [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                        f"--inh-caps=-all,{caps}", f"--ambient-caps={caps}"], tgt)
        assert f"not permitted to attach to process {tgt.pid}" in err
        assert f"runs as user {OTHER}" in err and f"gilscope as user {NOBODY}" in err
    finally:
        if tgt.poll() is None:
            finish_busy(tgt)


def test_attach_to_missing_process(tmp_path):
    pid = 4_000_000  # above pid_max's default ceiling: never a live process
    proc = subprocess.run([GILSCOPE, "record", "-p", str(pid), "-o", str(tmp_path / "x.rec")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr == f"gilscope: error: no process with pid {pid}\n"
    assert not (tmp_path / "x.rec").exists()


# ---- signals during an attach -----------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_an_attach_cleanly(tmp_path, sig):
    tgt = start_busy(8)
    rec = tmp_path / "attach.rec"
    try:
        gs = subprocess.Popen([GILSCOPE, "record", "--no-summary", "-p", str(tgt.pid), "-o", str(rec)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = gs.stderr.readline()
        assert "recording process" in line, line
        # wait for GIL events to reach the file (no fixed delay: it is flushed every 50 ms)
        deadline = time.monotonic() + 30
        while os.path.getsize(rec) < 64 * 1024 and time.monotonic() < deadline and tgt.poll() is None:
            time.sleep(0.05)
        gs.send_signal(sig)
        out, err = gs.communicate(timeout=30)
        assert gs.returncode == 0, err
        assert errors(err) == [], err
        # the process carries on, unstopped and unpatched, while it still runs
        assert tgt.poll() is None, "the target should outlive the recording (a slow machine?)"
        assert_untouched(tgt.pid, gs.pid)
        rep = report_json(rec)
        assert rep["complete"] is True
        assert rep["mode"] == "attach"
        threads = [t for t in rep["threads"] if t["pid"] == tgt.pid]
        assert sum(t["acquisitions"] for t in threads) > 0
        assert sum(t["gil_held_ns"] for t in threads) <= rep["duration_ns"] + 1000
    finally:
        if tgt.poll() is None:
            finish_busy(tgt)


# ---- outputs that are symbolic links ------------------------------------------------------------------

@pytest.fixture
def sticky_dir(tmp_path):
    """A /tmp-like directory (world-writable, sticky) holding a victim file and links planted to it."""
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o1777)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    return d, victim


def test_outputs_do_not_follow_symlinks(tmp_path, sticky_dir):
    d, victim = sticky_dir
    rec = tmp_path / "good.rec"
    ok = subprocess.run([GILSCOPE, "record", "--no-summary", "-o", str(rec), "--", PY, "-c", "pass"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    fixture = os.path.join(ROOT, "tests", "fixtures", "perf-script-gil.txt")
    cases = {
        "record": [GILSCOPE, "record", "-o", "{out}", "--", "/bin/true"],
        "record --html": [GILSCOPE, "record", "--no-summary", "-o", str(tmp_path / "h.rec"), "--html", "{out}",
                          "--", "/bin/true"],
        "export html": [GILSCOPE, "export", "--format", "html", str(rec), "-o", "{out}"],
        "export folded": [GILSCOPE, "export", "--format", "folded", str(rec), "-o", "{out}"],
        "export svg": [GILSCOPE, "export", "--format", "svg", str(rec), "-o", "{out}"],
        "export trace-json": [GILSCOPE, "export", "--format", "trace-json", str(rec), "-o", "{out}"],
        "export perfetto": [GILSCOPE, "export", "--format", "perfetto", str(rec), "-o", "{out}"],
        "perf2trace": [GILSCOPE, "perf2trace", "gil", "-q", "-o", "{out}"],
        "offgil": [GILSCOPE, "offgil", "-o", "{out}", str(rec)],
    }
    for name, argv in cases.items():
        link = d / f"out-{name.replace(' ', '-')}"
        os.symlink(victim, link)
        with open(fixture) as stdin:
            proc = subprocess.run([a.replace("{out}", str(link)) for a in argv], stdin=stdin, capture_output=True,
                                  text=True, timeout=60)
        assert victim.read_text() == "precious\n", name
        assert os.path.islink(link), name
        assert f"refusing to write {link}: it is a symbolic link" in proc.stderr, (name, proc.stderr)
        if name != "record --html":  # the recording itself was fine there: the command's status
            assert proc.returncode == 1, (name, proc.stderr)
    # a dangling link is not followed to create its target
    dangling = d / "dangling"
    os.symlink(tmp_path / "created-by-root", dangling)
    proc = subprocess.run([GILSCOPE, "record", "-o", str(dangling), "--", "/bin/true"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and not (tmp_path / "created-by-root").exists()
    assert "the command was not started" in proc.stderr


def test_outputs_refuse_a_file_planted_by_another_user(tmp_path, sticky_dir):
    d, _ = sticky_dir
    planted = d / "run.rec"
    planted.write_text("mine\n")
    os.chown(planted, NOBODY, NOBODY)
    proc = subprocess.run([GILSCOPE, "record", "-o", str(planted), "--", "/bin/true"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "belongs to user 65534" in proc.stderr and "world-writable" in proc.stderr
    assert planted.read_text() == "mine\n"
    # a new file there is created 0644 (less the umask), owned by the caller
    new = d / "new.rec"
    proc = subprocess.run([GILSCOPE, "record", "--no-summary", "-o", str(new), "--", "/bin/true"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    st = os.stat(new)
    assert st.st_mode & 0o022 == 0 and st.st_uid == os.geteuid()


def test_attach_to_a_process_strace_traces(tmp_path):
    """A process has one tracer: gilscope says who holds it (TracerPid), creates nothing, and
    leaves both the process and strace as they were."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (apt-get install strace)")
    tgt = start_busy(4)
    st = subprocess.Popen([strace, "-f", "-qq", "-e", "trace=none", "-p", str(tgt.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:  # strace's attach is asynchronous
            with open(f"/proc/{tgt.pid}/status") as f:
                if f"TracerPid:\t{st.pid}" in f.read():
                    break
            time.sleep(0.05)
        else:
            pytest.fail("strace did not attach")
        rec = tmp_path / "x.rec"
        proc = subprocess.run([GILSCOPE, "record", "-p", str(tgt.pid), "--duration", "1", "-o", str(rec)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (f"gilscope: error: process {tgt.pid} is already traced by process {st.pid} (strace): "
                               "a process can have one tracer; stop that one (or detach it) and try again; "
                               "nothing was done to the process\n")
        assert not rec.exists(), "nothing is created"
        assert st.poll() is None, "strace keeps tracing"
        with open(f"/proc/{tgt.pid}/status") as f:
            assert f"TracerPid:\t{st.pid}" in f.read()
    finally:
        st.terminate()
        st.wait(timeout=30)
        if tgt.poll() is None:
            finish_busy(tgt)
