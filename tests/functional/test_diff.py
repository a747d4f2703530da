"""`gilscope diff A B`: two recordings of one program compared (threads matched by name and order
of start), in text and JSON, and --fail-if-worse's exit status for CI."""
import json
import subprocess

import pytest

from conftest import GILSCOPE, record, target

PY = "/usr/bin/python3.11"  # Debian's 3.11 tells forced drops apart (inline probes on the drop request)


def gs(*args):
    return subprocess.run([GILSCOPE, *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name, interval in (("slow", "0.005"), ("fast", "0.0002")):
        d = tmp_path_factory.mktemp(name)
        run = record(d, [PY, target("interval_spin.py"), interval])
        assert run.proc.returncode == 0, run.proc.stderr
        out[name] = run
    return out


def test_diff_sees_the_switch_interval(runs):
    a, b = runs["slow"], runs["fast"]
    p = gs("diff", "--json", a.rec, b.rec)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "gilscope.diff/1"
    fa, fb = doc["a"]["figures"], doc["b"]["figures"]
    # the figures are the recordings' own: the same as report --json's for the target's GIL
    for run, f in ((a, fa), (b, fb)):
        proc = next(p for p in run.report["processes"] if p["pid"] == run.report["target_pid"])
        assert f["acquisitions"] == proc["acquisitions"] and f["forced_drops"] == proc["forced_drops"], (f, proc)
        assert f["threads_wait_ns"] == sum(t["gil_wait_ns"] for t in run.report["threads"])
    # 25x shorter interval: many more forced drops (3 spinners contend for ~100 ms)
    assert fb["forced_drops"] > 3 * max(fa["forced_drops"], 5), (fa, fb)
    assert doc["change"]["forced_drops_percent"] > 100
    # threads matched by name, then by order of start among the same name
    names = [(t["name"], t["ordinal"]) for t in doc["threads"]]
    assert names[0] == ("MainThread", 1), names
    for n in ("spinner-0", "spinner-1", "spinner-2"):
        assert (n, 1) in names
    assert ("worker", 1) in names and ("worker", 2) in names, names
    for t in doc["threads"]:
        assert t["a"] and t["b"], t  # same program: every thread has its partner
        if t["name"].startswith("spinner"):
            assert t["a"]["forced_drops"] <= t["b"]["forced_drops"] + 2, t
    w1 = next(t for t in doc["threads"] if t["name"] == "worker" and t["ordinal"] == 1)
    w2 = next(t for t in doc["threads"] if t["name"] == "worker" and t["ordinal"] == 2)
    tids_a = {t["tid"]: t for t in a.report["threads"]}
    assert tids_a[w1["a"]["tid"]]["start_ns"] <= tids_a[w2["a"]["tid"]]["start_ns"]
    # the sites where threads waited: spin is one, in both recordings
    # (B's waits last about 0.2 ms: the 1 kHz sampler may catch none of them, so they may all be
    # the site with no stack)
    spin = [s for s in doc["wait_sites"] if s["function"] == "spin"]
    assert spin and spin[0]["a_ns"] > 0, doc["wait_sites"]
    assert sum(s["b_ns"] for s in doc["wait_sites"]) > 0, doc["wait_sites"]
    assert doc["worse"] is None
    text = gs("diff", a.rec, b.rec)
    assert text.returncode == 0
    line = next(l for l in text.stdout.splitlines() if l.startswith("forced drops"))
    assert line.split()[2:4] == [str(fa["forced_drops"]), str(fb["forced_drops"])], line
    assert "spinner-0" in text.stdout and "spin (" in text.stdout


def test_fail_if_worse_is_the_exit_status(runs, tmp_path):
    a = runs["slow"]
    same = gs("diff", "--fail-if-worse", "0", a.rec, a.rec)
    assert same.returncode == 0 and "not worse" in same.stdout, same.stdout
    # a quiet program (one thread) against a contended one: the wait grew from ~0
    quiet = record(tmp_path, [PY, "-c", "sum(range(2000000))"])
    worse = gs("diff", "--fail-if-worse", "50", quiet.rec, a.rec)
    assert worse.returncode == 1 and "WORSE" in worse.stdout, worse.stdout
    doc = json.loads(gs("diff", "--json", "--fail-if-worse", "50", quiet.rec, a.rec).stdout)
    assert doc["worse"] is True and doc["fail_if_worse_percent"] == 50
    # the other way round it got better
    assert gs("diff", "--fail-if-worse", "50", a.rec, quiet.rec).returncode == 0


@pytest.mark.parametrize("args, status, words", [
    ([], 2, "two recordings"),
    (["--fail-if-worse", "ten"], 2, "percentage"),
    (["--fail-if-worse", "-5"], 2, "percentage"),
])
def test_diff_usage_errors(runs, args, status, words):
    p = gs("diff", *args, runs["slow"].rec, runs["fast"].rec) if args else gs("diff", runs["slow"].rec)
    assert p.returncode == status and words in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) <= 2


def test_diff_of_garbage_says_which_file(runs, tmp_path):
    bad = tmp_path / "garbage.rec"
    bad.write_bytes(b"not a recording at all\n" * 100)
    p = gs("diff", runs["slow"].rec, bad)
    assert p.returncode == 1 and "garbage.rec" in p.stderr, p.stderr
    assert p.stdout == ""


def test_diff_of_a_recording_with_itself_matches_every_site(runs):
    a = runs["fast"]
    p = gs("diff", "--json", a.rec, a.rec)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    sites = doc["wait_sites"]
    assert len(sites) >= 2, sites  # spin and at least one other (or the site with no stack)
    keys = [(s["function"], s["file"]) for s in sites]
    assert len(keys) == len(set(keys)), keys  # each site once
    for s in sites:  # every site met its own twin, with the same figures
        assert s["a_ns"] == s["b_ns"] and s["a_waits"] == s["b_waits"], s
    assert [s["a_ns"] for s in sites] == sorted((s["a_ns"] for s in sites), reverse=True)
    for t in doc["threads"]:
        assert t["a"]["tid"] == t["b"]["tid"], t
