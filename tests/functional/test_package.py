"""The Python package: `pip install` of the checkout (offline), the console script and
`python -m gilscope`, the API recording its own threads, the pytest plugin with GIL budgets."""
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest

from conftest import ROOT

PY = "/usr/bin/python3"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    if subprocess.run([PY, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not installed (apt-get install python3-pip)")
    if subprocess.run([PY, "-c", "import wheel, venv"], capture_output=True).returncode != 0:
        pytest.skip("python3-wheel or python3-venv is not installed (tests/deps.sh installs them)")
    d = tmp_path_factory.mktemp("pkg")
    wheels = d / "wheels"
    p = subprocess.run([PY, "-m", "pip", "wheel", "--no-build-isolation", "--no-index", "--no-deps", "-w",
                        str(wheels), ROOT], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    (whl,) = os.listdir(wheels)
    venv = d / "venv"
    subprocess.run([PY, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index", "--no-deps", str(wheels / whl)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return {"dir": d, "wheel": wheels / whl, "bin": venv / "bin"}


def env_without_gilscope():
    env = dict(os.environ)
    env.pop("GILSCOPE", None)  # the package's own binary, not the tree's
    env.pop("PYTHONPATH", None)
    return env


def test_the_wheel_is_a_platform_wheel_with_an_executable(venv):
    assert venv["wheel"].name.endswith("-py3-none-linux_x86_64.whl"), venv["wheel"].name
    with zipfile.ZipFile(venv["wheel"]) as z:
        (exe,) = [i for i in z.infolist() if i.filename.endswith("gilscope/_bin/gilscope")]
        assert (exe.external_attr >> 16) & 0o111 == 0o111
        names = z.namelist()
    assert any(n.endswith("entry_points.txt") for n in names)
    for mod in ("__init__.py", "__main__.py", "pytest_plugin.py", "ipython.py"):
        assert any(n.endswith("gilscope/" + mod) for n in names), names
    assert any(n.endswith("gilscope_ipython/__init__.py") for n in names)  # the magics' first name


def test_console_script_and_module_run_the_bundled_binary(venv, tmp_path):
    for cmd in ([str(venv["bin"] / "gilscope"), "--version"], [str(venv["bin"] / "python"), "-m", "gilscope",
                                                                "--version"]):
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env_without_gilscope())
        assert p.returncode == 0 and p.stdout.startswith("gilscope 0.1.0"), (cmd, p.stdout, p.stderr)
    # a usage error keeps the binary's status
    p = subprocess.run([str(venv["bin"] / "gilscope"), "report"], capture_output=True, text=True, cwd=tmp_path,
                       env=env_without_gilscope())
    assert p.returncode == 2 and "gilscope" in p.stderr


API = textwrap.dedent('''
    import json, sys, threading
    import gilscope

    def spin(n):
        x = 0
        for i in range(n):
            x += i

    with gilscope.record() as rec:
        ts = [threading.Thread(target=spin, args=(1_000_000,), name=f"api-{i}") for i in range(2)]
        for t in ts: t.start()
        for t in ts: t.join()
    r = rec.report()
    again = gilscope.load(rec.path).report()
    child = gilscope.run([sys.executable, "-c", "import sys; sys.exit(3)"])
    try:
        gilscope.load("/nonexistent.rec").report()
        err = None
    except gilscope.GilscopeError as e:
        err = str(e)
    print(json.dumps({"threads": r["threads"], "same": again == r, "child": child.returncode,
                      "child_mode": child.report()["mode"], "err": err, "file": gilscope.__file__}))
''')


def test_api_records_its_own_threads(venv, tmp_path):
    import json
    p = subprocess.run([str(venv["bin"] / "python"), "-c", API], capture_output=True, text=True, cwd=tmp_path,
                       env=env_without_gilscope(), timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert str(venv["dir"]) in doc["file"]  # the installed package, not the checkout's
    named = {t["name"]: t for t in doc["threads"]}
    for n in ("api-0", "api-1"):
        assert named[n]["acquisitions"] > 0 and named[n]["gil_held_ns"] > 0, named.get(n)
    assert doc["same"] and doc["child"] == 3 and doc["child_mode"] == "launch"
    assert doc["err"].startswith("gilscope: ") and "nonexistent.rec" in doc["err"]


TESTS = textwrap.dedent('''
    import threading, time

    def spin(n, go):
        go.wait()  # both spin at once: each waits for the GIL about half the time
        x = 0
        for i in range(n):
            x += i

    def test_contended():
        go = threading.Barrier(2)
        ts = [threading.Thread(target=spin, args=(1_500_000, go), name=f"spinner-{i}") for i in range(2)]
        for t in ts: t.start()
        for t in ts: t.join()

    def test_quiet():
        time.sleep(0.1)
''')


def test_pytest_plugin_lines_and_budget(venv, tmp_path):
    (tmp_path / "test_gil.py").write_text(TESTS)
    py = str(venv["bin"] / "python")
    env = env_without_gilscope()
    p = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "--gilscope", "test_gil.py"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "gilscope: the GIL per test" in p.stdout
    lines = [l for l in p.stdout.split("gilscope: the GIL per test")[1].splitlines() if l.startswith("test_gil.py::")]
    assert [l.split(":")[2] for l in lines] == ["test_contended", "test_quiet"], lines
    contended = next(l for l in p.stdout.splitlines() if l.startswith("test_gil.py::test_contended:"))
    assert "GIL held" in contended and "longest wait: spinner-" in contended, contended
    # a budget: the contended test fails with a message about the GIL, the quiet one passes
    p = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "--gilscope", "--gilscope-max-wait", "0.25",
                        "-rf", "test_gil.py"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 1, p.stdout[-3000:]
    assert "1 failed, 1 passed" in p.stdout, p.stdout[-2000:]
    assert "FAILED test_gil.py::test_contended" in p.stdout
    assert "GIL budget exceeded: thread 'spinner-" in p.stdout and "Meanwhile the GIL was held by thread" in p.stdout
    # without --gilscope the plugin does nothing
    p = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_gil.py"], capture_output=True,
                       text=True, cwd=tmp_path, env=env, timeout=300)
    assert p.returncode == 0 and "gilscope" not in p.stdout


def test_a_build_without_a_debian_package_names_it(monkeypatch):
    sys.path.insert(0, ROOT)
    try:
        import setup
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(setup, "NEEDS", setup.NEEDS + [("/usr/include/no-such-header.h", "libnothing-dev")])
    assert setup.missing_packages() == ["libnothing-dev"]


def test_pytest_plugin_under_xdist_each_worker_records_itself(venv, tmp_path):
    py = str(venv["bin"] / "python")
    if subprocess.run([py, "-c", "import xdist"], capture_output=True).returncode != 0:
        pytest.skip("pytest-xdist is not installed (apt-get install python3-pytest-xdist)")
    (tmp_path / "test_gil.py").write_text(TESTS)
    p = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--gilscope", "--gilscope-max-wait",
                        "0.25", "--gilscope-output", str(tmp_path / "s.rec"), "test_gil.py"], capture_output=True,
                       text=True, cwd=tmp_path, env=env_without_gilscope(), timeout=300)
    assert p.returncode == 1 and "1 failed, 1 passed" in p.stdout, p.stdout[-3000:] + p.stderr[-2000:]
    assert "GIL budget exceeded: thread 'spinner-" in p.stdout
    summary = p.stdout.split("gilscope: the GIL per test")[1]
    lines = sorted(l.split(":")[2] for l in summary.splitlines() if l.startswith("test_gil.py::"))
    assert lines == ["test_contended", "test_quiet"], p.stdout[-2000:]
    # a recording per worker
    recs = sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("s-gw"))
    assert recs == ["s-gw0.rec", "s-gw1.rec"], recs
