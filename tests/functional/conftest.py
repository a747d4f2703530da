"""Shared fixtures: the gilscope binary, the interpreters of this machine, and a helper that
records a target program and returns gilscope's JSON report with the target's own facts."""
import json
import os
import shutil
import subprocess
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = os.path.join(ROOT, "tests", "targets")
GILSCOPE = os.environ.get("GILSCOPE", os.path.join(ROOT, "build", "gilscope"))

# Every CPython build this issue supports; the ones missing here are skipped with the reason.
DEBIAN = os.environ.get("GILSCOPE_PYTHONS", "/opt/gilscope-pythons")
PYTHONS = {
    "pyenv-3.9-shared": "/root/.pyenv/versions/3.9.18/bin/python3.9",
    "pyenv-3.10-shared": "/root/.pyenv/versions/3.10.13/bin/python3.10",
    "pyenv-3.11.7-shared": "/root/.pyenv/versions/3.11.7/bin/python3.11",
    "debian-3.11-stripped": "/usr/bin/python3.11",
    "debian-3.11-debug": "/usr/bin/python3.11d",
    "pyenv-3.12-shared": "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "pyenv-3.13-shared": "/root/.pyenv/versions/3.13.0/bin/python3.13",
    "debian-3.13-stripped": f"{DEBIAN}/3.13/usr/bin/python3.13",
    "debian-3.14-stripped": f"{DEBIAN}/3.14/usr/bin/python3.14",
    "debian-3.15-stripped": f"{DEBIAN}/3.15/usr/bin/python3.15",
}


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the functional tests drive gilscope as root (perf events, tracefs, ptrace): run as root",
                    returncode=1)
    if not os.access(GILSCOPE, os.X_OK):
        pytest.exit(f"{GILSCOPE} is not built: run `make`", returncode=1)


@pytest.fixture(params=sorted(PYTHONS), ids=sorted(PYTHONS))
def python(request):
    path = PYTHONS[request.param]
    if not os.access(path, os.X_OK):
        how = " (make pythons installs it)" if path.startswith(DEBIAN) else ""
        pytest.skip(f"{request.param}: {path} is not installed on this machine{how}")
    return path


_versions = {}


def version_of(python):
    """'3.X' of an interpreter, asked to the interpreter itself."""
    if python not in _versions:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        _versions[python] = out
    return _versions[python]


def tracks_forced_drops(report):
    return "forced drops not told apart" not in report["python"]["mechanism"]


class Run:
    def __init__(self, proc, report, facts, rec):
        self.proc, self.report, self.facts, self.rec = proc, report, facts, rec
        self.threads = {t["tid"]: t for t in report["threads"]} if report else {}

    def thread(self, tid):
        return self.threads[tid]

    def python_threads(self):
        pid = self.report["target_pid"]
        return [t for t in self.report["threads"] if t["pid"] == pid]


def record(tmp_path, cmd, env_extra=None, args=(), timeout=300, check_report=True):
    rec = tmp_path / "run.rec"
    facts = tmp_path / "facts.jsonl"
    env = dict(os.environ, GS_FACTS=str(facts), PYTHONPATH=TARGETS)
    env.update(env_extra or {})
    with subprocess.Popen([GILSCOPE, "record", "--no-summary", "-o", str(rec), *args, "--", *cmd],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as p:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    proc = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    proc.pid = p.pid  # gilscope's: its uprobes are the group gilscope_PID
    report = None
    if check_report:
        rep = subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True, timeout=120)
        assert rep.returncode == 0, rep.stderr
        report = json.loads(rep.stdout)
    fl = []
    if facts.exists():
        fl = [json.loads(line) for line in facts.read_text().splitlines() if line.strip()]
    return Run(proc, report, fl, rec)


def target(name):
    return os.path.join(TARGETS, name)


def uprobes_left(pid):
    """The uprobes that the gilscope of process `pid` defined (its group gilscope_PID) and that are
    still there. Only its own: other gilscopes (another test suite on the machine) may be running."""
    for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        p = os.path.join(d, "uprobe_events")
        if os.path.exists(p):
            with open(p) as f:
                return [line for line in f if f":gilscope_{pid}/" in line]
    return []


NPM_DIR = os.environ.get("GILSCOPE_NPM", "/opt/gilscope-npm")


def npm_module(package):
    """The directory of npm package `package` (e.g. "speedscope@1"), installed into NPM_DIR,
    outside the repository, when missing; skips with the reason when npm cannot provide it."""
    name = package.rsplit("@", 1)[0]
    where = os.path.join(NPM_DIR, "node_modules", name)
    if os.path.isdir(where):
        return where
    npm = shutil.which("npm")
    if not npm:
        pytest.skip(f"SKIPPED: npm is not installed (apt-get install npm), so {name} is missing")
    os.makedirs(NPM_DIR, exist_ok=True)
    p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", NPM_DIR, package],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"))
    if p.returncode != 0 or not os.path.isdir(where):
        pytest.skip(f"SKIPPED: npm install {package} failed: {p.stderr.strip()[-300:]}")
    return where
