#!/usr/bin/python3
"""gilscope benchmarks: the cost of recording, every figure next to an untraced baseline measured
in the same run (traced and untraced runs interleaved), and per4m's way of recording (`perf
record` of perf-probed take_gil/drop_gil entry and return uprobes) on the I/O program.
Workloads: four contending CPU-bound threads (no stacks, Python stacks at 1 and 10 kHz, native
stacks), an I/O ping-pong (two threads writing and reading one byte through pipes: ~2 M GIL
events/s; on two CPUs its time swings 2x from run to run with how often a thread blocks on the GIL,
so it runs a second time with the program on one CPU, taskset -c 0, gilscope free: the steady
figure of what each GIL event costs the program), 2 million system calls that keep the GIL (what each system call costs: nothing since the
stops at exec replaced the fork watch's seccomp filter), and thread creation (3,000 threads at once;
6,000 short ones 100 at a time).
Per workload: wall time and its ratio; the traced program's CPU time (user+sys of the whole run
minus gilscope's own) and its ratio, which shows a few percent where wall time on this shared VM
cannot; the added CPU per GIL event in ns; gilscope's own CPU per GIL event in ns (its recorder.cpu_ns:
draining, ordering, encoding and writing, which on a 2-CPU machine competes with the program); the
recording's bytes per GIL event; events lost.
Targets (cost issue): I/O ping-pong <= 1.1x, CPU-bound with stacks at 1 kHz <= 1.03x, thread
creation <= 1.2x, <= 8 bytes per GIL event. Medians of --repeat runs."""
import argparse, json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_measured(cmd, env=None):
    """Runs a target that prints its own elapsed seconds as the last stdout line: (that time, the
    CPU seconds of the run and every process it reaped)."""
    c0 = children_cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    cpu = children_cpu() - c0
    if p.returncode != 0:
        sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return float(p.stdout.strip().splitlines()[-1]), cpu


def run_timed(cmd, env=None):
    return run_measured(cmd, env)[0]


def median(xs):
    return statistics.median(xs)


def report(gilscope, rec):
    p = subprocess.run([gilscope, "report", "--json", rec], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"gilscope report failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def traced(gilscope, python, script, args, tmp, rate=0, extra=(), prefix=()):
    """A traced run's time and report; exits non-zero when gilscope failed or recorded no GIL event
    (a benchmark of a recorder that does not record measures nothing)."""
    rec = os.path.join(tmp, "bench.rec")
    t, cpu = run_measured([gilscope, "record", "-q", "--no-summary", "--sample-rate", str(rate), *extra, "-o", rec, "--",
                   *prefix, python, script, *args])
    rep = report(gilscope, rec)
    if not rep.get("complete") or not rep.get("gil_events"):
        sys.exit(f"gilscope's recording of {script} is incomplete or holds no GIL event: "
                 f"complete={rep.get('complete')}, gil_events={rep.get('gil_events')}")
    rep["_cpu"] = cpu
    rep["_bytes"] = os.path.getsize(rec)
    return t, rep


def per4m_way(python, script, args, tmp):
    """What per4m automates: perf probe the four take_gil/drop_gil entry/return probes, perf record."""
    perf = shutil.which("perf")
    if not perf:
        return None, "perf is not installed"
    lib = python
    libdir = os.path.join(os.path.dirname(os.path.dirname(python)), "lib")
    for name in sorted(os.listdir(libdir)) if os.path.isdir(libdir) else []:
        if name.startswith("libpython3") and ".so" in name:
            lib = os.path.join(libdir, name)
            break
    subprocess.run([perf, "probe", "-q", "-d", "gsbench:*"], capture_output=True)
    for spec in ("take_gil", "take_gil%return", "drop_gil", "drop_gil%return"):
        name = spec.replace("%return", "__return")
        p = subprocess.run([perf, "probe", "-q", "-x", lib, "-a", f"gsbench:{name}={spec}"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            subprocess.run([perf, "probe", "-q", "-d", "gsbench:*"], capture_output=True)
            return None, f"perf probe {spec} failed on {lib}: {p.stderr.strip()}"
    try:
        data = os.path.join(tmp, "perf.data")
        ts = [run_timed([perf, "record", "-q", "-k", "CLOCK_MONOTONIC", "-o", data, "-e", "gsbench:*", "--",
                         python, script, *args]) for _ in range(2)]
        return median(ts), None
    finally:
        subprocess.run([perf, "probe", "-q", "-d", "gsbench:*"], capture_output=True)


class Workload:
    def __init__(self, name, script, args, rate=0, extra=(), target=None, per4m=False, prefix=()):
        self.name, self.script, self.args, self.rate, self.extra = name, script, args, rate, extra
        self.prefix = list(prefix)  # a command the program runs under (taskset), traced and untraced
        self.target, self.per4m = target, per4m
        self.base, self.base_cpu, self.wall, self.cpu, self.reps = [], [], [], [], []

    def run(self, gs, python, tmp):
        b, bc = run_measured([*self.prefix, python, self.script, *self.args])
        t, rep = traced(gs, python, self.script, self.args, tmp, self.rate, self.extra, self.prefix)
        self.base.append(b)
        self.base_cpu.append(bc)
        self.wall.append(t)
        self.cpu.append(rep["_cpu"] - rep["recorder_cpu_ns"] / 1e9)
        self.reps.append(rep)

    def figures(self):
        rep = self.reps[-1]
        gil = statistics.median(r["gil_events"] for r in self.reps)
        wall = median(self.wall) / median(self.base)
        cpu = median(self.cpu) / median(self.base_cpu)
        ns = (median(self.cpu) - median(self.base_cpu)) * 1e9 / gil if gil else 0
        nbytes = statistics.median(r["_bytes"] for r in self.reps)
        return dict(wall=wall, cpu=cpu, ns=ns, gil=gil, bytes_per=nbytes / gil if gil else 0,
                    bytes_all=nbytes / max(1, gil + rep["sched_events"]), mb=nbytes / 1e6,
                    rec_cpu=median([r["recorder_cpu_ns"] / 1e9 for r in self.reps]),
                    rec_ns=median([r["recorder_cpu_ns"] / r["gil_events"] for r in self.reps if r["gil_events"]] or [0]),
                    lost=sum(r["lost_events"] for r in self.reps))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--python", default=None, help="interpreter (default: pyenv 3.11.7 if present, else python3.11)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--io-iterations", default="200000")
    ap.add_argument("--cpu-iterations", default="3000000")
    ap.add_argument("--only", metavar="TEXT", help="run only the workloads whose name contains TEXT (e.g. ping-pong;"
                    " several, comma-separated: any of them)")
    opts = ap.parse_args()
    python = opts.python
    if not python:
        python = "/root/.pyenv/versions/3.11.7/bin/python3.11"
        if not os.access(python, os.X_OK):
            python = "/usr/bin/python3.11"
    gs = os.path.abspath(opts.gilscope)
    tmp = tempfile.mkdtemp(prefix="gilscope-bench-")
    print(f"gilscope benchmarks: {python}, {opts.repeat} interleaved runs each (medians), {os.cpu_count()} CPUs")
    cpu4, io, thr, sysc = (os.path.join(HERE, n) for n in ("cpu4.py", "io_pingpong.py", "threads.py", "syscalls.py"))
    it = [opts.cpu_iterations]
    loads = [Workload("4 CPU-bound threads", cpu4, it, target="1.03x"),
             Workload("  + Python stacks 1 kHz", cpu4, it, 1000, target="1.03x"),
             Workload("  + Python stacks 10 kHz", cpu4, it, 10000),
             Workload("  + native stacks 1 kHz", cpu4, it, 1000, ("--native",)),
             Workload("I/O ping-pong", io, [opts.io_iterations], target="1.1x", per4m=True),
             Workload("I/O ping-pong, one CPU", io, [opts.io_iterations], target="1.1x", prefix=("taskset", "-c", "0")),
             Workload("  + --fork-watch", io, [opts.io_iterations], prefix=("taskset", "-c", "0"),
                      extra=("--fork-watch",)),
             Workload("2 M system calls, GIL kept", sysc, ["2000000"]),
             Workload("  + --fork-watch", sysc, ["2000000"], extra=("--fork-watch",)),
             Workload("3,000 threads at once", thr, ["3000", "3000"], target="1.2x"),
             Workload("6,000 threads, 100 at a time", thr, ["6000", "100"], target="1.2x")]
    stack_loads = loads[1:4] if not opts.only else []
    if opts.only:
        loads = [w for w in loads if any(t.strip().lower() in w.name.lower() for t in opts.only.split(","))]
        if not loads:
            sys.exit(f"--only {opts.only}: no workload's name contains it")
    for _ in range(opts.repeat):
        for w in loads:
            w.run(gs, python, tmp)

    print(f"{'workload':<30} {'untraced':>9} {'gilscope':>9} {'wall':>6} {'CPU':>6} {'target':>6} "
          f"{'ns/GIL ev':>9} {'rec ns/ev':>9} {'GIL ev':>9} {'B/GIL ev':>8} {'B/event':>7} {'lost':>4}")
    lost = 0

    def nsper(f, key="ns"):  # a per-event figure means nothing when the run has few events
        return f"{f[key]:.0f}" if f["gil"] >= 100000 else "-"
    for w in loads:
        f = w.figures()
        lost += f["lost"]
        print(f"{w.name:<30} {median(w.base):8.3f}s {median(w.wall):8.3f}s {f['wall']:5.2f}x {f['cpu']:5.2f}x "
              f"{w.target or '':>6} {nsper(f):>9} {nsper(f, 'rec_ns'):>9} {f['gil']:9.0f} {f['bytes_per']:8.1f} {f['bytes_all']:7.1f} "
              f"{f['lost']:4d}")
    print("  wall: traced/untraced elapsed; CPU: the traced program's CPU time (gilscope's own taken out)"
          " / untraced; ns/GIL ev: that added CPU per GIL event;\n  rec ns/ev: gilscope's own CPU per GIL event; B/GIL ev: recording bytes per GIL event,"
          " B/event: per GIL or scheduler event")
    if stack_loads:
        stack_figures(*stack_loads)
    io_w = next((x for x in loads if x.per4m), None)
    if io_w:
        io_figures(io_w, python, io, opts.io_iterations, tmp)
    print(f"events lost in all runs: {lost} (target 0)")
    shutil.rmtree(tmp, ignore_errors=True)


def stack_figures(w, w10k, wnat):
    """The stack samplers' achieved rates and failures (1 and 10 kHz, native)."""
    rep1k, rep10k, repnat = w.reps[-1], w10k.reps[-1], wnat.reps[-1]

    def rate(r, t):
        return r["stack_samples"] / (t * 4) if t else 0
    print(f"stacks: 1 kHz {rate(rep1k, median(w.wall)):.0f} samples/s per thread achieved, "
          f"{100 * rep1k['stack_errors'] / max(1, rep1k['stack_samples']):.3f}% failed or torn; 10 kHz "
          f"{rate(rep10k, median(w10k.wall)):.0f} samples/s per thread, "
          f"{100 * rep10k['stack_errors'] / max(1, rep10k['stack_samples']):.3f}% failed or torn")
    ns = repnat.get("native_stacks", {})
    print(f"native: {rate(repnat, median(wnat.wall)):.0f} merged samples/s per thread; {ns.get('unwinds', 0)} "
          f"unwindings, {ns.get('truncated', 0)} cut short, {ns.get('mismatched', 0)} of {ns.get('merged', 0)} C/Python "
          f"disagreements, {ns.get('lost', 0)} copies lost; recorder CPU {repnat['recorder_cpu_ns'] / 1e9:.2f} s vs "
          f"{rep1k['recorder_cpu_ns'] / 1e9:.2f} s without")


def io_figures(io_w, python, io, iterations, tmp):
    """The I/O ping-pong's event counts, gilscope's own CPU and memory, and per4m's way."""
    f = io_w.figures()
    rep = io_w.reps[-1]
    print(f"I/O ping-pong: {rep['gil_events']} GIL + {rep['sched_events']} scheduler events per run "
          f"({rep['gil_events'] / median(io_w.base) / 1e6:.2f} M GIL events/s untraced); recorder "
          f"{f['rec_cpu'] * 1e3:.0f} ms CPU ({f['rec_cpu'] * 1e9 / max(1, f['gil']):.0f} ns per GIL event), "
          f"{rep['recorder_max_rss_kb'] / 1024:.1f} MiB peak RSS; recording {f['mb']:.1f} MB")
    p4, why = per4m_way(python, io, [iterations], tmp)
    if p4 is None:
        print(f"    per4m's way: SKIPPED ({why})")
    else:
        s4 = p4 / median(io_w.base)
        print(f"    per4m's way (perf record of 4 take_gil/drop_gil entry+return uprobes): {p4:.3f} s, slowdown "
              f"{s4:.2f}x; gilscope's slowdown ({f['wall']:.2f}x) is {s4 / f['wall']:.2f}x smaller")


if __name__ == "__main__":
    main()
