"""Every CPython of a recording, not only the first, gets its threads' Python names and its stack
samples: two processes attached with `record -p A -p B`, and a multiprocessing Pool's
workers (spawn, fork, forkserver) under `record -- COMMAND`."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import GILSCOPE, PYTHONS, record

PY_A = PYTHONS["pyenv-3.11.7-shared"]
PY_B = PYTHONS["debian-3.11-stripped"]  # stripped: another image beside the first

SPIN = r"""
import sys, threading, time
tag = sys.argv[1]
end = time.monotonic() + float(sys.argv[2])
def spin_%s():
    while time.monotonic() < end:
        pass
threading.current_thread().name = "main-" + tag
ts = [threading.Thread(target=spin_%s, name=f"{tag}-spin{i}") for i in range(2)]
[t.start() for t in ts]
print("ready", flush=True)
[t.join() for t in ts]
"""


def need(*pythons):
    for p in pythons:
        if not os.access(p, os.X_OK):
            pytest.skip(f"{p} is not installed on this machine")


def start(tmp_path, python, tag, seconds):
    script = tmp_path / f"spin_{tag}.py"
    script.write_text(SPIN % (tag, tag))
    p = subprocess.Popen([python, str(script), tag, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    return p


def speedscope_functions(rec, tmp_path):
    """{(pid, tid): set of function names in the thread's samples}, from the speedscope export."""
    out = tmp_path / f"ss-{time.monotonic_ns()}.json"
    subprocess.run([GILSCOPE, "export", "--format", "speedscope", str(rec), "-o", str(out)], check=True,
                   capture_output=True)
    doc = json.loads(out.read_text())
    frames = doc["shared"]["frames"]
    funcs = {}
    for prof in doc["profiles"]:
        # "NAME (TID t, PID p[, main]): KIND"
        ids = prof["name"].rsplit("(", 1)[1].split(")")[0].split(", ")
        tid, pid = int(ids[0].split()[1]), int(ids[1].split()[1])
        seen = funcs.setdefault((pid, tid), set())
        for sample in prof.get("samples", []):
            seen.update(frames[i]["name"] for i in sample)
        for ev in prof.get("events", []):
            seen.add(frames[ev["frame"]]["name"])
    return funcs


def test_two_attached_processes_have_names_and_stacks(tmp_path):
    need(PY_A, PY_B)
    procs = [start(tmp_path, PY_A, "a", 30), start(tmp_path, PY_B, "b", 30)]
    rec = tmp_path / "two.rec"
    try:
        gs = subprocess.run([GILSCOPE, "record", "--no-summary", "-o", str(rec), "-p", str(procs[0].pid), "-p",
                             str(procs[1].pid), "--duration", "2"], capture_output=True, text=True, timeout=180)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert gs.returncode == 0, gs.stderr
    rep = json.loads(subprocess.run([GILSCOPE, "report", "--json", str(rec)], capture_output=True, text=True,
                                    check=True).stdout)
    funcs = speedscope_functions(rec, tmp_path)
    for p, tag in zip(procs, "ab"):
        threads = [t for t in rep["threads"] if t["pid"] == p.pid]
        names = sorted(t["python_name"] for t in threads)
        assert names == sorted([f"main-{tag}", f"{tag}-spin0", f"{tag}-spin1"]), (threads, gs.stderr)
        for t in threads:
            if t["python_name"].startswith(f"{tag}-spin"):
                assert f"spin_{tag}" in funcs.get((p.pid, t["tid"]), set()), (t, funcs)
    assert rep["threads_named"] == 6, rep
    # every thread of both processes sampled at the same rate (within a third: the machine is shared)
    counts = samples_per_thread(rec)
    per = [counts.get((p.pid, t["tid"]), 0) for p in procs for t in rep["threads"] if t["pid"] == p.pid]
    assert len(per) == 6 and min(per) > 0.66 * max(per), counts


def samples_per_thread(rec):
    dump = subprocess.run([GILSCOPE, "dump", str(rec)], capture_output=True, text=True, check=True).stdout
    counts = {}
    for line in dump.splitlines():
        f = line.split()
        if len(f) > 3 and f[1] == "SAMPLE":
            key = (int(f[2].split("=")[1]), int(f[3].split("=")[1]))
            counts[key] = counts.get(key, 0) + 1
    return counts


POOL = r"""
import multiprocessing as mp, os, sys, threading, time

def spin_in_worker(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass

def task(i):
    threading.current_thread().name = f"poolmain-{os.getpid()}"
    t = threading.Thread(target=spin_in_worker, args=(1.0,), name=f"poolspin-{os.getpid()}")
    t.start()
    t.join()
    return os.getpid()

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        pids = set(pool.map(task, range(2), chunksize=1))
    print(" ".join(map(str, sorted(pids))), flush=True)
"""


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_pool_workers_threads_are_named(tmp_path, method):
    """spawn: each worker a CPython of its own (probes in S->more); fork, forkserver: forks of the
    first CPython or of the forkserver, sampled with their parent's layout."""
    need(PY_B)
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    run = record(tmp_path, [PY_B, str(script), method])
    assert run.proc.returncode == 0, run.proc.stderr
    pids = [int(x) for x in run.proc.stdout.split()]
    assert pids, run.proc.stdout
    funcs = speedscope_functions(run.rec, tmp_path)
    for pid in pids:
        names = {t["python_name"] for t in run.report["threads"] if t["pid"] == pid}
        assert f"poolspin-{pid}" in names, (pid, names, run.proc.stderr)
        assert f"poolmain-{pid}" in names, (pid, names, run.proc.stderr)
        spinner = [t for t in run.report["threads"] if t["python_name"] == f"poolspin-{pid}"]
        assert "spin_in_worker" in funcs.get((pid, spinner[0]["tid"]), set()), (pid, funcs)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
