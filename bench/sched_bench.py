#!/usr/bin/python3
"""The scheduler sources' cost where the perf source is weakest: thread creation.
  (a) a Python program that starts N short threads (in waves of W at once; 3,000 at once by
      default) and prints its own elapsed seconds: untraced, and recorded by each gilscope and
      source given;
  (b) a thread-per-request server (python3 -m http.server: ThreadingHTTPServer) under
      `ab -c 8 -n REQUESTS` while something is attached, against the same server untraced
      (throughput ratio): gilscope with its GIL probes (inline, injected at attach; BPF thread states), with
      uprobes, with thread states only (-G: --no-gil-detect) from each scheduler source, and
      `perf record -e sched:sched_switch -e sched:sched_wakeup -p PID` (the scheduler events
      alone, perf's way), and on a 3.15 server CPython's own sampling profiler (`python3.15 -m
      profiling.sampling attach -a`, Tachyon, at its default 1 kHz over all threads), on each
      --server-python (Debian 3.11 and 3.14, and 3.15 by default); each attach ends with a detach,
      the server goes on.
Rounds are interleaved (untraced, then each traced variant, again and again) and each figure is
the median over rounds of the ratio to the untraced run of the same round, so a drift of the
shared machine's speed cancels out. --old GILSCOPE adds a gilscope built from another tree (its
only source is perf) for an old/new comparison."""
import argparse, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))

THREADS = r'''
import sys, threading, time
n, wave = int(sys.argv[1]), int(sys.argv[2])
def work():
    x = 0
    for i in range(200): x += i
t0 = time.perf_counter()
done = 0
while done < n:
    ts = [threading.Thread(target=work) for _ in range(min(wave, n - done))]
    for t in ts: t.start()
    for t in ts: t.join()
    done += len(ts)
print(f"{time.perf_counter() - t0:.6f}")
'''


def chosen(args, v):
    """The variants named by --variant (all when none is)."""
    return [x for x in v if not args.variant or x[0] in args.variant]


def variants(args, states_only=False):
    v = [("new bpf", args.gilscope, ["--sched=bpf"]), ("new perf", args.gilscope, ["--sched=perf"])]
    if args.old:
        v.insert(0, ("old", args.old, args.old_args.split()))
    if states_only:  # thread states only: the scheduler source's cost alone, without the GIL probes
        v += [(f"{name} -G", gs, [*extra, "--no-gil-detect"]) for name, gs, extra in v]
    return chosen(args, v)


def threads_bench(args, tmp):
    script = os.path.join(tmp, "threads.py")
    with open(script, "w") as f:
        f.write(THREADS)
    cmd = [args.python, script, str(args.threads), str(args.wave)]
    ratios = {name: [] for name, _, _ in variants(args, True)}
    base = []

    def timed(c):
        p = subprocess.run(c, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(c)}\n{p.stderr}")
        return float(p.stdout.strip().splitlines()[-1])

    for _ in range(args.repeat):
        u = timed(cmd)
        base.append(u)
        for name, gs, extra in variants(args, True):
            rec = os.path.join(tmp, "t.rec")
            t = timed([gs, "record", "-q", "--no-summary", "--sample-rate", "0", *extra, "-o", rec, "--", *cmd])
            ratios[name].append(t / u)
    print(f"(a) {args.threads} threads, {args.wave} at once: untraced {statistics.median(base):.3f} s (median); "
          "-G: --no-gil-detect (the scheduler source alone)")
    for name, r in ratios.items():
        print(f"    {name:10s} {statistics.median(r):.2f}x untraced (rounds: {' '.join(f'{x:.2f}' for x in r)})")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ab_rps(ab, port, n):
    p = subprocess.run([ab, "-q", "-c", "8", "-n", str(n), f"http://127.0.0.1:{port}/page.html"],
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"Requests per second:\s+([\d.]+)", p.stdout)
    if p.returncode != 0 or not m:
        sys.exit(f"ab failed ({p.returncode}): {p.stderr.strip()}")
    return float(m.group(1))


def has_tachyon(python):
    """CPython 3.15+ ships its sampling profiler as profiling.sampling."""
    return subprocess.run([python, "-c", "import profiling.sampling"], capture_output=True).returncode == 0


def http_variants(args, server_python=None):
    v = [("gilscope inline", args.gilscope, ["--sched=bpf"]),
         ("gilscope inline -S0", args.gilscope, ["--sched=bpf", "--sample-rate", "0"]),  # no stack sampler
         ("gilscope uprobes", args.gilscope, ["--uprobes"]),
         ("gilscope -G bpf", args.gilscope, ["--no-gil-detect", "--sched=bpf"]),
         ("gilscope -G perf", args.gilscope, ["--no-gil-detect", "--sched=perf"])]
    if args.old:
        v.insert(0, ("old", args.old, args.old_args.split()))
    if shutil.which("perf"):
        v.append(("perf record", None, []))
    if server_python and has_tachyon(server_python):
        v.append(("tachyon attach", "tachyon", [server_python]))
    return chosen(args, v)


def attach(gs, extra, pid, rec):
    if gs == "tachyon":  # CPython's own: all threads, its default rate, folded stacks at the end
        g = subprocess.Popen([extra[0], "-m", "profiling.sampling", "attach", "-a", "--collapsed", "-o",
                              rec + ".txt", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # it says nothing once it samples
        return g
    if gs is None:  # perf's way: the scheduler events of the process, nothing else
        g = subprocess.Popen([shutil.which("perf"), "record", "-q", "-e", "sched:sched_switch", "-e",
                              "sched:sched_wakeup", "-p", str(pid), "-o", rec], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # perf says nothing once it is in place
        return g
    g = subprocess.Popen([gs, "record", "--no-summary", *extra, "-p", str(pid), "-o", rec],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in g.stderr:  # "recording process PID; Ctrl-C to stop" once everything is in place
        if "recording process" in line:
            return g
    sys.exit(f"{gs} {' '.join(extra)} did not attach: exit {g.wait()}")


def http_bench(args, tmp, server_python):
    ab = shutil.which("ab")
    if not ab:
        print("(b) skipped: ab is not installed (apt-get install apache2-utils)")
        return
    with open(os.path.join(tmp, "page.html"), "w") as f:
        f.write("x" * 2048)
    port = free_port()
    srv = subprocess.Popen([server_python, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        ab_rps(ab, port, 200)  # warm-up
        ratios = {name: [] for name, _, _ in http_variants(args, server_python)}
        base = []
        for _ in range(args.repeat):
            u = ab_rps(ab, port, args.requests)
            base.append(u)
            for name, gs, extra in http_variants(args, server_python):
                g = attach(gs, extra, srv.pid, os.path.join(tmp, "h.rec"))
                r = ab_rps(ab, port, args.requests)
                g.send_signal(signal.SIGINT)
                _, err = g.communicate(timeout=120)
                if g.returncode != 0 and not (gs is None and g.returncode == -signal.SIGINT):  # perf re-raises it
                    sys.exit(f"{name} failed at detach ({g.returncode}): {(err or '').strip()[-300:]}")
                ratios[name].append(r / u)
            if srv.poll() is not None:
                sys.exit(f"the server died while attached to ({srv.returncode})")
        ver = subprocess.run([server_python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True).stdout.strip()
        print(f"(b) http.server on {server_python} ({ver}) under ab -c 8 -n {args.requests}: untraced "
              f"{statistics.median(base):.0f} req/s (median); -G: thread states only")
        for name, r in ratios.items():
            print(f"    {name:10s} {statistics.median(r):.2f}x untraced throughput "
                  f"(rounds: {' '.join(f'{x:.2f}' for x in r)})")
    finally:
        srv.kill()
        srv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--old", help="another gilscope to compare with (e.g. built from main in another worktree)")
    ap.add_argument("--old-args", default="", help="options for --old's record (e.g. '--sched=bpf')")
    ap.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3.11")
    ap.add_argument("--server-python", action="append",
                    help="the server's interpreter (repeatable; default Debian 3.11, 3.14 and 3.15 when present)")
    ap.add_argument("--threads", type=int, default=3000)
    ap.add_argument("--wave", type=int, default=3000)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=["threads", "http"])
    ap.add_argument("--variant", action="append",
                    help="only this traced variant (repeatable; by its printed name, e.g. 'new bpf', "
                    "'gilscope inline')")
    args = ap.parse_args()
    if not os.access(args.python, os.X_OK):
        args.python = shutil.which("python3.11") or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "threads"):
            threads_bench(args, tmp)
        if args.only in (None, "http"):
            pythons = args.server_python or [p for p in ("/usr/bin/python3.11",
                                                          "/opt/gilscope-pythons/3.14/usr/bin/python3.14",
                                                          "/opt/gilscope-pythons/3.15/usr/bin/python3.15")
                                              if os.access(p, os.X_OK)]
            for py in pythons:
                http_bench(args, tmp, py)


if __name__ == "__main__":
    main()
