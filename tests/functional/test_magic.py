"""The %%giltracer IPython magic (python/gilscope/ipython.py, also as gilscope_ipython), driven by a
real IPython shell. test_package.py installs the package."""
import os
import re
import subprocess
import sys

import pytest

from conftest import GILSCOPE, ROOT

SCRIPT = r'''
import os, sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", sys.argv[2])
ip.run_cell_magic("giltracer", "--html " + sys.argv[1], """
import threading
def cell_worker(n):
    x = 0
    for i in range(n):
        x += i
ts = [threading.Thread(target=cell_worker, args=(1_000_000,)) for _ in range(2)]
for t in ts: t.start()
for t in ts: t.join()
print("cell ran")
""")
'''


@pytest.mark.parametrize("ext", ["gilscope", "gilscope_ipython"])
def test_giltracer_cell_magic(tmp_path, ext):
    check = subprocess.run(["/usr/bin/python3", "-c", "import IPython"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("IPython is not installed (apt-get install python3-ipython)")
    html = tmp_path / "cell.html"
    env = dict(os.environ, GILSCOPE=os.path.abspath(GILSCOPE), PYTHONPATH=os.path.join(ROOT, "python"))
    proc = subprocess.run(["/usr/bin/python3", "-c", SCRIPT, str(html), ext], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "cell ran" in out
    table = [l for l in out.splitlines() if re.match(r"[ *] +\d+ +\S", l)]  # TID NAME ... rows
    rows = [l for l in table if "Thread-" in l and "(cell_worker)" in l]
    assert len(rows) == 2, out          # the cell's two threads, by their Python names
    assert "idle or short-lived threads" in out or len(table) < 6
    assert f"HTML report: {html}" in out and html.exists()
