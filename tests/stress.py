#!/usr/bin/python3
"""`make stress`: gilscope on heavy programs, checked for lost events and consistency.

  1. THREADS CPU-bound threads contending for the GIL for SECONDS seconds (tests/targets/contend.py);
  2. SHORT short-lived threads, 50 alive at a time (tests/targets/short_threads.py).

Each run must lose no event, end complete, report every thread, keep each GIL's holds within
the wall time (one holder at a time) and each thread's time split exactly into its states, and
give every contending thread the CPU time it measured itself (time.thread_time: on CPU = holding
the GIL on CPU + waiting on CPU + running without it; less a few microseconds per switch-in, see
check()), and no more than the CPU time it had in all (from above: whatever the machine's load,
a thread is on a CPU only while its CPU clock runs). Prints the events recorded,
gilscope's peak RSS (its own getrusage, kept in the recording) and the time taken. The same
checks run in a reduced form in tests/functional/test_stress.py (part of `make check`)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join(ROOT, "tests", "targets")
sys.path.insert(0, os.path.join(ROOT, "tests", "functional"))


def steal_ns():
    """CPU time taken from the threads' own clocks so far, all CPUs: what the hypervisor stole
    and what interrupts used (/proc/stat's steal, irq and softirq columns). The scheduler counts
    it as a thread's time on a CPU; the thread's CPU clock does not (the kernel takes it out):
    an upper bound on that difference."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    ticks = sum(int(x) for x in fields[6:9]) if len(fields) > 8 else 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def run(gilscope, python, cmd, tmp, name):
    """Records cmd; returns (report, facts, stdout, seconds, records)."""
    rec = os.path.join(tmp, name + ".rec")
    facts = os.path.join(tmp, name + ".facts")
    env = dict(os.environ, PYTHONPATH=TARGETS, GS_FACTS=facts)
    t0, steal0 = time.monotonic(), steal_ns()
    proc = subprocess.run([gilscope, "record", "--no-summary", "-o", rec, "--", python, *cmd], env=env,
                          capture_output=True, text=True, timeout=3600)
    took, stolen = time.monotonic() - t0, steal_ns() - steal0
    if proc.returncode != 0:
        raise AssertionError(f"{name}: gilscope exited {proc.returncode}: {proc.stderr}")
    rep = subprocess.run([gilscope, "report", "--json", rec], capture_output=True, text=True, timeout=600)
    if rep.returncode != 0:
        raise AssertionError(f"{name}: report failed: {rep.stderr}")
    dump = subprocess.run([gilscope, "dump", rec], capture_output=True, text=True, timeout=600)
    switch_ins = {}
    for line in dump.stdout.splitlines():
        if " SWITCH_IN " in line:
            tid = int(line.split(" tid=", 1)[1].split(None, 1)[0])
            switch_ins[tid] = switch_ins.get(tid, 0) + 1
    rep = json.loads(rep.stdout)
    rep["switch_ins"] = switch_ins
    rep["steal_ns"] = stolen
    fl = []
    if os.path.exists(facts):
        with open(facts) as f:
            fl = [json.loads(line) for line in f if line.strip()]
    return rep, fl, proc.stdout, took, dump.stdout.count("\n"), os.path.getsize(rec)


def check(rep, facts, nthreads, exited_only=False):
    """The consistency rules; returns a list of broken ones (empty: all hold)."""
    bad = []
    if rep["lost_events"] != 0:
        bad.append(f"{rep['lost_events']} events lost")
    if rep["complete"] is not True:
        bad.append("the recording is incomplete")
    pid = rep["target_pid"]
    threads = [t for t in rep["threads"] if t["pid"] == pid]
    workers = [t for t in threads if not t["is_main"]]
    if len(workers) != nthreads:
        bad.append(f"{len(workers)} worker threads reported, {nthreads} ran")
    if exited_only and not all(t["exited"] for t in workers):
        bad.append("a finished thread is not marked exited")
    for t in rep["threads"]:
        parts = (t["gil_held_ns"] + t["gil_wait_ns"] + t["running_no_gil_ns"] + t["sleeping_ns"] + t["runnable_ns"]
                 + t["unknown_ns"])
        if abs(parts - t["lifetime_ns"]) > 1000:
            bad.append(f"thread {t['tid']}: states sum to {parts} ns of a {t['lifetime_ns']} ns life")
    for p in rep["processes"]:
        for g in p["gils"]:
            if g["held_ns"] > g["wall_ns"] + 1000:
                bad.append(f"process {p['pid']}: a GIL held {g['held_ns']} ns in {g['wall_ns']} ns of wall time")
        if len([g for g in p["gils"] if g["acquisitions"]]) <= 1:
            held = sum(t["gil_held_ns"] for t in rep["threads"] if t["pid"] == p["pid"])
            if held > p["wall_ns"] + 1000:
                bad.append(f"process {p['pid']}: holds sum to {held} ns in {p['wall_ns']} ns of wall time")
    by_tid = {t["tid"]: t for t in threads}
    for f in facts:
        t = by_tid.get(f["tid"])
        if t is None:
            bad.append(f"thread {f['tid']} is missing from the report")
            continue
        on_cpu = (t["gil_held_ns"] - t["gil_held_off_cpu_ns"] + t["gil_wait_on_cpu_ns"] + t["running_no_gil_ns"])
        # The thread measured its CPU time over part of its life; gilscope saw all of it. The
        # kernel charges a thread from the moment the scheduler picks it, while the switch-in
        # record is written after the context switch: 0.4 to 1.6 us per switch-in measured in
        # this VM (a waiter wakes every 5 ms), so 10 us per switch-in is allowed, plus 1%.
        slack = 10_000 * rep.get("switch_ins", {}).get(f["tid"], 0) + 0.01 * f["cpu_ns"] + 1_000_000
        if on_cpu < f["cpu_ns"] - slack:
            bad.append(f"thread {f['tid']}: on CPU {on_cpu} ns by gilscope, {f['cpu_ns']} ns by itself "
                       f"({rep.get('switch_ins', {}).get(f['tid'], 0)} switch-ins)")
        # From above: gilscope cannot see it on a CPU longer than the CPU time it had in all, its
        # clock read at the end of its loop (cpu_total_ns: since the thread started); after that
        # it only writes its facts and exits, well under a millisecond (2 ms and 1% allowed). Time
        # stolen by the hypervisor or spent in interrupts is on a CPU for the guest's scheduler,
        # not in the thread's clock: the run's whole such time is allowed on top.
        steal = rep.get("steal_ns", 0)
        if "cpu_total_ns" in f and on_cpu > 1.01 * f["cpu_total_ns"] + 2_000_000 + steal:
            bad.append(f"thread {f['tid']}: on CPU {on_cpu} ns by gilscope, more than the {f['cpu_total_ns']} ns "
                       f"of CPU time it had (and the {steal} ns of steal and interrupt time during the run)")
        if f.get("kind") == "contend" and t["acquisitions"] < 1:
            bad.append(f"thread {f['tid']} never took the GIL")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gilscope", required=True)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--short", type=int, default=5000)
    args = ap.parse_args()
    gs = os.path.abspath(args.gilscope)
    ok = True
    with tempfile.TemporaryDirectory(prefix="gilscope-stress-") as tmp:
        for name, cmd, n, exited in (
                (f"{args.threads} contending threads, {args.seconds:g} s",
                 [os.path.join(TARGETS, "contend.py"), str(args.threads), str(args.seconds)], args.threads, False),
                (f"{args.short} short-lived threads", [os.path.join(TARGETS, "short_threads.py"), str(args.short)],
                 args.short, True)):
            rep, facts, out, took, records, size = run(gs, args.python, cmd, tmp, name.split()[1])
            bad = check(rep, facts, n, exited)
            acq = sum(t["acquisitions"] for t in rep["threads"])
            print(f"{name}: {took:.1f} s, {records} records ({size / 1e6:.1f} MB: {rep['gil_events']} GIL events, "
                  f"{rep['sched_events']} scheduler events, {rep['stack_samples']} stack samples), {acq} GIL acquisitions, "
                  f"lost {rep['lost_events']}, gilscope peak RSS {rep['recorder_max_rss_kb'] / 1024:.1f} MiB, "
                  f"repaired {rep['repaired_inconsistencies']}: {'ok' if not bad else 'FAILED'}", flush=True)
            for b in bad[:20]:
                print("   ", b)
            ok &= not bad
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
