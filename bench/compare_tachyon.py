#!/usr/bin/python3
"""gilscope vs CPython 3.15's own sampling profiler (Tachyon, `python3.15 -m profiling.sampling
run -a`) on the same programs: per-thread GIL held / waiting shares, and each tool's slowdown
against an untraced run measured in the same invocation. Tachyon's shares are of its samples
(has_gil / gil_requested in its flame graph's per-thread statistics); gilscope's are exact, of
each thread's lifetime."""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = os.path.join(HERE, "..", "tests", "targets")
PROGRAMS = [
    ("2 CPU-bound threads", [os.path.join(TARGETS, "cpu.py"), "2", "2000000"]),
    ("list.sort vs a spinner", [os.path.join(TARGETS, "sort.py")]),
    ("hashlib threads", [os.path.join(TARGETS, "hashing.py")]),
    ("I/O ping-pong", [os.path.join(HERE, "io_pingpong.py"), "100000"]),
]


def timed(cmd):
    env = dict(os.environ, PYTHONPATH=TARGETS)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return dt


def tachyon_stats(html):
    text = open(html, encoding="utf-8", errors="replace").read()
    i = text.find('"per_thread_stats"')
    if i < 0:
        return {}
    obj, _ = json.JSONDecoder().raw_decode(text[text.index("{", i):])
    return {int(tid): (s["has_gil_pct"], s["gil_requested_pct"]) for tid, s in obj.items() if s.get("total")}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--python", default="/opt/gilscope-pythons/3.15/usr/bin/python3.15")
    ap.add_argument("--repeat", type=int, default=3)
    opts = ap.parse_args()
    py, gs = opts.python, os.path.abspath(opts.gilscope)
    if not os.access(py, os.X_OK):
        print(f"SKIPPED: {py} is not installed (make pythons)")
        return
    tmp = tempfile.mkdtemp(prefix="gilscope-tachyon-")
    print(f"gilscope vs Tachyon (python3.15 -m profiling.sampling), {py}, medians of {opts.repeat} runs")
    print(f"{'program':24} {'untraced':>9} {'gilscope':>9} {'tachyon 1k':>11} {'tachyon 10k':>12}")
    details = []
    for name, args in PROGRAMS:
        base, gsl, t1, t10 = [], [], [], []
        for _ in range(opts.repeat):
            base.append(timed([py, *args]))
            rec = os.path.join(tmp, "r.rec")
            gsl.append(timed([gs, "record", "-q", "--no-summary", "-o", rec, "--", py, *args]))
            html1 = os.path.join(tmp, "t1.html")
            t1.append(timed([py, "-m", "profiling.sampling", "run", "-a", "--mode", "wall", "--flamegraph",
                             "-o", html1, *args]))
            t10.append(timed([py, "-m", "profiling.sampling", "run", "-a", "-r", "10khz", "--mode", "wall",
                              "--flamegraph", "-o", os.path.join(tmp, "t10.html"), *args]))
        b = statistics.median(base)
        print(f"{name:24} {b:8.3f}s {statistics.median(gsl) / b:8.2f}x {statistics.median(t1) / b:10.2f}x "
              f"{statistics.median(t10) / b:11.2f}x")
        p = subprocess.run([gs, "report", "--json", rec], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"gilscope report failed ({p.returncode}): {p.stderr.strip()}")
        rep = json.loads(p.stdout)
        if not rep["complete"] or not rep["gil_events"]:
            sys.exit(f"gilscope's recording of {name} is incomplete or holds no GIL event")
        ours = sorted(((t["gil_held_ns"] / t["lifetime_ns"] * 100, t["gil_wait_ns"] / t["lifetime_ns"] * 100)
                       for t in rep["threads"] if t["lifetime_ns"] and t["pid"] == rep["target_pid"]), reverse=True)
        theirs = sorted(tachyon_stats(html1).values(), reverse=True)
        details.append((name, ours, theirs))
    print("\nper-thread GIL shares, threads sorted by held share (held% / waiting%):")
    for name, ours, theirs in details:
        print(f"  {name}")
        print("    gilscope (exact):   " + ", ".join(f"{h:5.1f}/{w:5.1f}" for h, w in ours))
        print("    tachyon (1 kHz):    " + ", ".join(f"{h:5.1f}/{w:5.1f}" for h, w in theirs))


if __name__ == "__main__":
    main()
