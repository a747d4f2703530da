"""The Python API: record this process, a command, or read a recording (see gilscope/__init__)."""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

__all__ = ["GilscopeError", "Recording", "record", "run", "load", "binary"]


class GilscopeError(RuntimeError):
    """gilscope could not do what was asked; the message is gilscope's own sentence."""


def _is_binary(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def binary():
    """The gilscope executable: $GILSCOPE, else the one in this package, else the first on PATH
    that is the C binary (not this package's console script)."""
    env = os.environ.get("GILSCOPE")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "gilscope")
    if os.access(here, os.X_OK):
        return here
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d or ".", "gilscope")
        if os.access(p, os.X_OK) and _is_binary(p):
            return p
    raise GilscopeError("gilscope: no gilscope binary: this package was installed without it; "
                        "reinstall with `pip install .` from the checkout, or set $GILSCOPE to its path")


def _sentence(stderr, fallback):
    """gilscope's sentence out of its stderr: its last line that starts with "gilscope:"."""
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    mine = [l for l in lines if l.startswith("gilscope:")]
    return (mine or lines or [fallback])[-1]


def _allow_tracing_by_children():
    """Yama's ptrace_scope 1 lets only ancestors trace a process: allow the gilscope we start."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PTRACER, PR_SET_PTRACER_ANY = 0x59616D61, ctypes.c_ulong(-1).value
        libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(PR_SET_PTRACER_ANY), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Recording:
    """A recording file, read with gilscope's own commands."""

    def __init__(self, path, returncode=None, summary=""):
        self.path = os.fspath(path)
        self.returncode = returncode  # the recorded command's exit status (run()), else None
        self.summary = summary        # what gilscope printed on stderr while recording

    def _gs(self, *args):
        p = subprocess.run([binary(), *args], capture_output=True, text=True)
        if p.returncode != 0:
            raise GilscopeError(_sentence(p.stderr, f"gilscope {args[0]} failed with status {p.returncode}"))
        return p.stdout

    def report(self):
        """`gilscope report --json` as a dictionary (schema in the README)."""
        return json.loads(self._gs("report", "--json", self.path))

    def text(self, active=False):
        """The summary table of `gilscope report`."""
        return self._gs("report", *(["--active"] if active else []), self.path)

    def blame(self):
        """`gilscope blame`: who held the GIL while each thread waited."""
        return self._gs("blame", self.path)

    def export(self, output, format="html", what=None):
        """`gilscope export --format FORMAT [--what WHAT] -o OUTPUT`; returns OUTPUT."""
        self._gs("export", "--format", format, *(["--what", what] if what else []), "-o", os.fspath(output),
                 self.path)
        return os.fspath(output)

    def __repr__(self):
        return f"gilscope.Recording({self.path!r})"


def load(path):
    """A recording written earlier (`gilscope record -o PATH`)."""
    if not os.path.exists(path):
        raise GilscopeError(f"gilscope: {path}: no such recording")
    return Recording(path)


def _output(output):
    if output:
        return os.fspath(output)
    return os.path.join(tempfile.mkdtemp(prefix="gilscope-"), "gilscope.rec")


def run(command, output=None, options=(), **popen):
    """Runs COMMAND (a list) under `gilscope record` and returns its Recording, whose returncode
    is the command's exit status. options: extra `record` options, e.g. ["--native"]."""
    out = _output(output)
    p = subprocess.run([binary(), "record", "-o", out, *options, "--", *command], stderr=subprocess.PIPE,
                       text=True, **popen)
    if not os.path.exists(out) or os.path.getsize(out) == 0:
        raise GilscopeError(_sentence(p.stderr, "gilscope record wrote no recording"))
    return Recording(out, p.returncode, p.stderr)


class record:
    """Records this process's threads for the duration of a with block:

        with gilscope.record() as rec:
            work()
        print(rec.report()["threads"])

    gilscope attaches to this process (stopping its threads for a few milliseconds to set its
    probes up) and detaches at the end, leaving it as it was. Needs root, or CAP_SYS_PTRACE and
    CAP_PERFMON (the README's Privileges)."""

    def __init__(self, output=None, options=(), timeout=30.0):
        self.output = _output(output)
        self.options = list(options)
        self.timeout = timeout
        self.recording = None
        self._proc = None

    def __enter__(self):
        _allow_tracing_by_children()
        cmd = [binary(), "record", "-p", str(os.getpid()), "--no-summary", "-o", self.output, *self.options]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
        seen, deadline = [], time.monotonic() + self.timeout
        while True:  # gilscope says "recording process N" once every thread is instrumented
            line = self._proc.stderr.readline()
            seen.append(line)
            if "recording process" in line:
                return self
            if not line or time.monotonic() > deadline:
                self._proc.kill()
                rest = self._proc.communicate()[1]
                raise GilscopeError(_sentence("".join(seen) + (rest or ""), "gilscope could not attach"))

    def stop(self):
        """Ends the recording (the with block does it): detaches and finishes the file."""
        if self._proc is None:
            return self.recording
        self._proc.send_signal(signal.SIGINT)
        try:
            err = self._proc.communicate(timeout=self.timeout)[1]
        except subprocess.TimeoutExpired:
            self._proc.kill()
            err = self._proc.communicate()[1]
        code, self._proc = self._proc.returncode, None
        self.recording = Recording(self.output, None, err)
        if code != 0:
            raise GilscopeError(_sentence(err, f"gilscope record ended with status {code}"))
        return self.recording

    def __exit__(self, typ, value, tb):
        try:
            self.stop()
        except GilscopeError:
            if typ is None:
                raise
        return False

    def report(self):
        """`report --json` of the finished recording, as a dictionary."""
        if self.recording is None:
            raise GilscopeError("gilscope: the recording is still running (report() after the with block)")
        return self.recording.report()

    @property
    def path(self):
        return self.output
