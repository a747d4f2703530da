#!/usr/bin/python3
"""The cost of the blame bookkeeping when thousands of threads wait for the GIL at once.

Writes synthetic recordings (gilscope's format, src/base/recfile.h, written by this script: no
tracing) of N threads released together, as by one threading.Event: the main thread holds the
GIL, all N threads enter take_gil within a millisecond, then each in turn is woken, takes the
GIL, holds it 50 us (asking for a switch half way through when it is not the last), releases
it and exits. Waiter k waits behind the k-1 holders before it and the hand-overs between them.
Times `gilscope report` and `gilscope blame` on each (wall and CPU seconds and peak RSS of the
gilscope process) for the sizes given (10,000 and 100 by default); the ratio of the largest's
CPU time (a busy machine disturbs it less than wall time) to the smallest's, against (N/n) and
(N/n)^2, shows the complexity. The answer itself has N^2/2
(waiter, holder) pairs, so O(waiters) per GIL step is the best possible: quadratic in total.
Exits 1 when gilscope fails or blame does not list every waiter."""
import argparse, math, os, shutil, struct, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REC = struct.Struct("<HHIIiQQ")  # type, size, pid, tid, arg, time, arg64
META, GIL_WAIT, GIL_WRITE, DROPREQ, SWITCH_OUT, SWITCH_IN, WAKEUP, FORK, EXIT, END = 1, 2, 3, 4, 5, 6, 7, 8, 9, 13
HOLD_NS, HANDOVER_NS = 50_000, 2_000


def meta(pid, k, v, t):
    payload = k.encode() + b"\0" + v.encode() + b"\0"
    payload += b"\0" * (-len(payload) % 8)
    return REC.pack(META, 32 + len(payload), pid, 0, 0, t, 0) + payload


def synth(path, waiters):
    """Writes the recording."""
    pid, t0 = 1000, 1_000_000_000
    tids = [pid + 1 + i for i in range(waiters)]
    out = []
    out.append(b"GILSCOPE" + struct.pack("<II", 1, 64) + b"\0" * 8 + struct.pack("<QQ", 0, t0) + b"\0" * 24)
    out.append(meta(pid, "python.version", "3.11.7", t0) + meta(0, "command", "blame_bench", t0) +
               meta(0, "target_pid", str(pid), t0))
    t = t0
    out.append(REC.pack(SWITCH_IN, 32, pid, pid, 0, t, 0))
    out.append(REC.pack(GIL_WRITE, 32, pid, pid, 1, t, 0))           # main holds the GIL
    for tid in tids:                                                  # threads started, parked
        out.append(REC.pack(FORK, 32, pid, tid, pid, t, pid))
        out.append(REC.pack(SWITCH_OUT, 32, pid, tid, 0, t, 1))
    t += 1_000_000
    for i, tid in enumerate(tids):                                    # the Event is set: all wait
        w = t + i * (1_000_000 // max(waiters, 1))
        out.append(REC.pack(WAKEUP, 32, 0, tid, pid, w, 0))
        out.append(REC.pack(SWITCH_IN, 32, pid, tid, 0, w, 0))
        out.append(REC.pack(GIL_WAIT, 32, pid, tid, 0, w + 100, 0))
        out.append(REC.pack(SWITCH_OUT, 32, pid, tid, 0, w + 200, 1))
    t += 1_000_000
    out.append(REC.pack(GIL_WRITE, 32, pid, pid, 0, t, 0))           # main lets go, then sleeps
    out.append(REC.pack(SWITCH_OUT, 32, pid, pid, 0, t, 1))
    for i, tid in enumerate(tids):                                    # each takes its turn
        t += HANDOVER_NS
        out.append(REC.pack(WAKEUP, 32, 0, tid, pid, t - 1000, 0))
        out.append(REC.pack(SWITCH_IN, 32, pid, tid, 0, t - 500, 0))
        out.append(REC.pack(GIL_WRITE, 32, pid, tid, 1, t, 0))
        if i + 1 < waiters:
            out.append(REC.pack(DROPREQ, 32, pid, tids[i + 1], 1, t + HOLD_NS // 2, 0))
        t += HOLD_NS
        out.append(REC.pack(GIL_WRITE, 32, pid, tid, 0, t, 0))
        out.append(REC.pack(EXIT, 32, pid, tid, 0, t + 100, 0))
        if len(out) > 50000:
            with open(path, "ab") as f:
                f.write(b"".join(out))
            out = []
    t += 1_000_000
    out.append(REC.pack(EXIT, 32, pid, pid, 0, t, 0))
    out.append(REC.pack(END, 32, 0, 0, 0, t, 0))
    with open(path, "ab") as f:
        f.write(b"".join(out))


def run(gs, args):
    """(wall seconds, CPU seconds, peak RSS in MiB, stdout) of one gilscope run; None when it failed."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        p = subprocess.Popen([gs] + args, stdout=o, stderr=e)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        dt = time.perf_counter() - t0
        o.seek(0)
        e.seek(0)
        out, err = o.read().decode(errors="replace"), e.read().decode(errors="replace")
    if p.returncode != 0:
        print(f"  gilscope {' '.join(args)} failed with status {p.returncode}: {err.strip()[:400]}", file=sys.stderr)
        return None
    return dt, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--waiters", type=int, nargs="+", default=[10000, 100])
    opts = ap.parse_args()
    gs = os.path.abspath(opts.gilscope)
    tmp = tempfile.mkdtemp(prefix="gilscope-blame-")
    results, failed = {}, False
    try:
        for n in sorted(set(opts.waiters)):
            rec = os.path.join(tmp, f"waiters{n}.rec")
            synth(rec, n)
            print(f"blame benchmark: {n} simultaneous waiters ({os.path.getsize(rec) / 1e6:.1f} MB recording)")
            for what in ("report", "blame"):
                r = run(gs, [what, rec])
                if r is None:
                    failed = True
                    continue
                dt, cpu, rss, out = r
                results[(n, what)] = cpu
                print(f"  {what:7s} {dt:8.2f} s ({cpu:.2f} s CPU)  peak RSS {rss:8.1f} MiB")
                if what == "blame":
                    # every waiter is listed, with its waits' total: the sum is known
                    listed = sum(1 for line in out.splitlines() if line.startswith("  TID ") and " waited " in line)
                    if listed != n:  # each waiter once
                        print(f"  blame lists {listed} threads, expected {n}", file=sys.stderr)
                        failed = True
            os.unlink(rec)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = sorted(set(opts.waiters))
    if len(sizes) > 1 and not failed:
        lo, hi = sizes[0], sizes[-1]
        k = hi / lo
        for what in ("report", "blame"):
            a, b = max(results[(lo, what)], 1e-3), max(results[(hi, what)], 1e-3)  # rusage: ms at best
            print(f"  {what}: {hi} / {lo} waiters = {b / a:.1f}x the CPU time (linear: {k:.0f}x, quadratic: "
                  f"{k * k:.0f}x; exponent {math.log(b / a) / math.log(k):.2f}, "
                  f"startup included)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
