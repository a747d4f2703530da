"""A reduced `make stress` (tests/stress.py): 64 contending CPU threads for 5 s, then 1,000
short-lived threads. No event may be lost and the report must hold together: each GIL held at
most for the wall time, each thread's life split exactly into its states, and every contending
thread seen on a CPU at least as long as it measured itself."""
import os
import sys

import pytest

from conftest import GILSCOPE, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests"))
import stress  # noqa: E402

PY = "/usr/bin/python3.11"


@pytest.mark.parametrize("name,argv,n,exited", [
    ("contend", ["contend.py", "64", "5"], 64, False),
    ("short", ["short_threads.py", "1000"], 1000, True),
])
def test_stress_reduced(tmp_path, name, argv, n, exited):
    cmd = [os.path.join(stress.TARGETS, argv[0]), *argv[1:]]
    rep, facts, out, took, records, size = stress.run(GILSCOPE, PY, cmd, str(tmp_path), name)
    assert stress.check(rep, facts, n, exited) == []
    assert rep["recorder_max_rss_kb"] > 0
    if name == "contend":
        assert out == "contend done 64\n"
        assert len(facts) == 64
    else:
        assert out.split()[0] == "1000"
