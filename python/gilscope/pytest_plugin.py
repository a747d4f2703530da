"""pytest plugin: the GIL of every test, and GIL budgets (`pytest --gilscope`).

    pytest --gilscope                          # a line per test: the GIL held and waited by its threads
    pytest --gilscope --gilscope-max-wait 0.25 # fail a test in which a thread waited for the GIL
                                               # longer than 25% of the test's duration
    @pytest.mark.gilscope(max_wait=0.1, max_hold=0.9)   # a budget for one test

One recording per session (gilscope attaches to the pytest process at the start and detaches at
the end); each test's call phase is a slice of it: after the test, the plugin asks gilscope for a
barrier (SIGUSR1; gilscope answers on --sync-fd once everything before it is in the file) and reads
the slice with `gilscope report --window`. Every thread alive during the call phase counts, measured
inside that window. Under pytest-xdist each worker records itself. Needs what `gilscope record -p`
needs (root, or CAP_SYS_PTRACE and CAP_PERFMON); without it, the session stops with gilscope's sentence.
"""
import json
import os
import select
import signal
import subprocess
import time

import pytest

from ._api import GilscopeError, _allow_tracing_by_children, _sentence, binary

def pytest_addoption(parser):
    g = parser.getgroup("gilscope", "the GIL of every test (gilscope)")
    g.addoption("--gilscope", action="store_true", help="record the session with gilscope: a GIL line per test")
    g.addoption("--gilscope-max-wait", type=float, metavar="FRACTION", default=None,
                help="fail a test in which a thread waited for the GIL longer than FRACTION of its duration")
    g.addoption("--gilscope-output", metavar="FILE", default=None,
                help="keep the session's recording in FILE (default: a temporary file, removed)")


def pytest_configure(config):
    config.addinivalue_line("markers", "gilscope(max_wait=None, max_hold=None): GIL budgets of a test, as "
                            "fractions of its duration (with --gilscope)")
    if not config.getoption("gilscope"):
        return
    if config.getoption("gilscope_max_wait") is not None and not 0 <= config.getoption("gilscope_max_wait") <= 1:
        raise pytest.UsageError("--gilscope-max-wait takes a fraction of a test's duration, from 0 to 1")
    # the lines are gathered from the tests' reports: under pytest-xdist they come from the workers
    config.pluginmanager.register(_Lines(), "gilscope-lines")
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the pytest-xdist controller runs no test: each worker records itself
    output = config.getoption("gilscope_output")
    if output and hasattr(config, "workerinput"):  # one file per worker
        root, ext = os.path.splitext(output)
        output = f"{root}-{config.workerinput['workerid']}{ext}"
    rec = _SessionRecording(output)
    config.pluginmanager.register(rec, "gilscope-session")


class _Lines:
    """The per-test lines (each test report's "gilscope" section), printed at the end."""

    def __init__(self):
        self.lines = []
        self.recordings = []

    def pytest_runtest_logreport(self, report):
        for name, text in getattr(report, "sections", ()):
            if name == "gilscope":
                self.lines.append(text)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.lines:
            return
        terminalreporter.section("gilscope: the GIL per test")
        for line in self.lines:
            terminalreporter.write_line(line)


class _SessionRecording:
    def __init__(self, output):
        self.keep = output is not None
        self.dir = None
        if output is None:
            import tempfile
            self.dir = tempfile.mkdtemp(prefix="gilscope-pytest-")
            output = os.path.join(self.dir, "session.rec")
        self.path = os.path.abspath(output)
        self.proc = None
        self.sync = None

    # the recording: from the session's start to its end
    def pytest_sessionstart(self, session):
        _allow_tracing_by_children()
        try:
            exe = binary()
        except GilscopeError as e:
            raise pytest.UsageError(f"--gilscope: {e}") from None
        r, w = os.pipe()
        cmd = [exe, "record", "-p", str(os.getpid()), "--no-summary", "-o", self.path,
               "--sync-fd", str(w)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, pass_fds=(w,))
        os.close(w)
        self.sync = r
        seen = []
        while True:  # "recording process N" once every thread is instrumented
            line = self.proc.stderr.readline()
            seen.append(line)
            if "recording process" in line:
                return
            if not line:
                err = "".join(seen) + (self.proc.communicate()[1] or "")
                self.proc = None
                raise pytest.UsageError("--gilscope: " + _sentence(err, "gilscope could not attach to pytest"))

    def pytest_sessionfinish(self, session):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        os.close(self.sync)
        self.proc = None

    def pytest_unconfigure(self, config):
        if not self.keep and self.dir:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)

    # each test's call phase
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        t0 = time.monotonic_ns()
        yield
        item._gilscope_window = (t0, time.monotonic_ns())

    def _barrier(self):
        """Everything before now is in the file: gilscope says so on --sync-fd."""
        self.proc.send_signal(signal.SIGUSR1)
        ready, _, _ = select.select([self.sync], [], [], 10.0)
        if not ready or not os.read(self.sync, 64):
            raise GilscopeError("gilscope: no answer to the barrier within 10 s (is gilscope still running?)")

    def _slice(self, t0, t1):
        self._barrier()
        p = subprocess.run([binary(), "report", "--window", f"{t0}:{t1}", "--json", self.path],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise GilscopeError(_sentence(p.stderr, "gilscope report --window failed"))
        return json.loads(p.stdout)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        rep = outcome.get_result()
        window = getattr(item, "_gilscope_window", None)
        if call.when != "call" or window is None or self.proc is None:
            return
        t0, t1 = window
        try:
            doc = self._slice(t0, t1)
        except GilscopeError as e:
            rep.sections.append(("gilscope", f"{item.nodeid}: {e}"))
            return
        dur = max(t1 - t0, 1)
        threads = [t for t in doc["threads"] if t["held_ns"] or t["wait_ns"]]
        held = sum(t["held_ns"] for t in threads)
        wait = sum(t["wait_ns"] for t in threads)
        worst = max(threads, key=lambda t: t["wait_ns"], default=None)
        line = (f"{item.nodeid}: {dur / 1e6:.1f} ms, GIL held {held / 1e6:.1f} ms, waited {wait / 1e6:.1f} ms "
                f"by {len(threads)} thread(s)")
        if worst and worst["wait_ns"] >= 100_000:
            line += f"; longest wait: {worst['name']} {worst['wait_ns'] / 1e6:.1f} ms ({worst['wait_ns'] / dur:.0%})"
        rep.sections.append(("gilscope", line))
        if rep.passed:
            msg = _over_budget(item, doc, dur)
            if msg:
                rep.outcome = "failed"
                rep.longrepr = msg

    def pytest_terminal_summary(self, terminalreporter):
        if self.keep:
            terminalreporter.write_line(f"gilscope recording: {self.path} (gilscope report, blame, export)")


def _budgets(item):
    max_wait = item.config.getoption("gilscope_max_wait")
    max_hold = None
    m = item.get_closest_marker("gilscope")
    if m:
        max_wait = m.kwargs.get("max_wait", max_wait)
        max_hold = m.kwargs.get("max_hold")
    return max_wait, max_hold


def _who(t):
    return f"thread {t['name']!r} (TID {t['tid']})"


def _over_budget(item, doc, dur):
    """The message of a test that broke its GIL budget, or None."""
    max_wait, max_hold = _budgets(item)
    for t in doc["threads"]:
        if max_wait is not None and t["wait_ns"] > max_wait * dur:
            holders = ", ".join(
                f"{_who(h)} {h['ns'] / 1e6:.1f} ms" + (f" in {h['where']}" if h.get("where") else "")
                for h in t["waited_behind"][:3]) or "no thread (the GIL changed hands)"
            return (f"GIL budget exceeded: {_who(t)} waited for the GIL {t['wait_ns'] / 1e6:.1f} ms of the test's "
                    f"{dur / 1e6:.1f} ms ({t['wait_ns'] / dur:.0%}; budget {max_wait:.0%}). Meanwhile the GIL was "
                    f"held by {holders}.")
        if max_hold is not None and t["held_ns"] > max_hold * dur:
            return (f"GIL budget exceeded: {_who(t)} held the GIL {t['held_ns'] / 1e6:.1f} ms of the test's "
                    f"{dur / 1e6:.1f} ms ({t['held_ns'] / dur:.0%}; budget {max_hold:.0%}).")
    return None
