#!/usr/bin/python3
"""What following the command's process tree costs (record's default, first threads traced and
the stops at exec; and --fork-watch, the seccomp filter) against --no-children and untraced, on
what a tree does most:
  (a) a shell that starts 40 short interpreters one after the other (`PY -c pass`): each is
      handed over (entry-point breakpoint, analysis, inline probes); wall time of the whole
      `gilscope record` run, gilscope's own start and end included;
  (b) a Python that forks 500 short children one after the other (fork, _exit, waitpid): one
      fork stop and one exit report per child; the program's own elapsed time;
  (c) a Python that starts 2,000 short threads, one at a time (--threads): no stop per thread
      by default or with the fork watch (one clone stop each with --no-fork-watch: --before an
      older build), against
      --no-children, which takes none;
  (d) a Python that runs /bin/true 200 times with subprocess.run (vfork/clone + exec of a program
      that is not CPython: one exec stop each);
  (e) a thread-per-request server (python -m http.server) launched by `gilscope record` under
      `ab -c 8 -n 2000`: throughput against the same server untraced (a thread per request);
  (f) attached (`record -p`): a waiting Python, once gilscope is attached, runs 40 short
      interpreters and then /bin/true 200 times (subprocess.run): its own elapsed time for each
      part, with the stop at exec (default) and with --no-exec-stop (the /proc scan), and how
      many of the 40 interpreters each recorded with GIL events.
Rounds are interleaved; each figure is the median over rounds of the ratio to the untraced run of
the same round, and the per-event cost is (traced - untraced) / events."""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

FORKS = r'''
import os, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print(f"{time.perf_counter() - t0:.6f}")
'''

THREADS = r'''
import sys, threading, time
n = int(sys.argv[1])
t0 = time.perf_counter()
for _ in range(n):
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
print(f"{time.perf_counter() - t0:.6f}")
'''

EXECS = r'''
import subprocess, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
for _ in range(n):
    subprocess.run(["/bin/true"])
print(f"{time.perf_counter() - t0:.6f}")
'''


ATTACHED = r'''
import subprocess, sys, time
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
for _ in range(40):
    subprocess.run([sys.executable, "-c", "pass"])
t1 = time.perf_counter()
for _ in range(200):
    subprocess.run(["/bin/true"])
print(f"{t1 - t0:.6f} {time.perf_counter() - t1:.6f}", flush=True)
'''


def run(cmd, own_clock):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return float(p.stdout.strip().splitlines()[-1]) if own_clock else wall


def variants_of(args):
    """(name, extra options, gilscope binary) of each traced variant; --before adds another build's tree."""
    v = [("tree (default)", [], args.gilscope), ("--fork-watch", ["--fork-watch"], args.gilscope),
         ("--no-children", ["--no-children"], args.gilscope)]
    if args.before:
        v.insert(1, ("tree (--before)", [], args.before))
    return v


def bench(args, tmp, title, cmd, events, own_clock):
    variants = variants_of(args)
    rec = os.path.join(tmp, "p.rec")
    base, ratios, costs = [], {n: [] for n, _, _ in variants}, {n: [] for n, _, _ in variants}
    for _ in range(args.repeat):
        u = run(cmd, own_clock)
        base.append(u)
        for name, extra, gilscope in variants:
            t = run([gilscope, "record", "-q", "--no-summary", "--sample-rate", "0", *extra, "-o", rec, "--",
                     *cmd], own_clock)
            ratios[name].append(t / u)
            costs[name].append((t - u) / events * 1e6)
    print(f"{title}: untraced {statistics.median(base):.3f} s (median of {args.repeat})")
    for name, _, _ in variants:
        print(f"    {name:15s} {statistics.median(ratios[name]):.2f}x untraced, "
              f"{statistics.median(costs[name]):.0f} us more per event "
              f"(rounds: {' '.join(f'{x:.2f}' for x in ratios[name])})")


def serve_and_load(cmd, tmp, ab, n):
    """Requests per second of ab against the server cmd (started here, stopped with SIGINT)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen([*cmd, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        p = subprocess.run([ab, "-q", "-c", "8", "-n", str(n), f"http://127.0.0.1:{port}/page.html"],
                           capture_output=True, text=True, timeout=600)
        m = re.search(r"Requests per second:\s+([\d.]+)", p.stdout)
        if p.returncode != 0 or not m:
            sys.exit(f"ab failed ({p.returncode}): {p.stderr.strip()}")
        return float(m.group(1))
    finally:
        srv.send_signal(signal.SIGINT)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def http_bench(args, tmp):
    ab = shutil.which("ab")
    if not ab:
        print("(e) skipped: ab is not installed (apt-get install apache2-utils)")
        return
    with open(os.path.join(tmp, "page.html"), "w") as f:
        f.write("x" * 2048)
    rec = os.path.join(tmp, "h.rec")
    variants = variants_of(args)
    base, ratios = [], {n: [] for n, _, _ in variants}
    for _ in range(args.repeat):
        u = serve_and_load([args.python], tmp, ab, 2000)
        base.append(u)
        for name, extra, gilscope in variants:
            gs = [gilscope, "record", "-q", "--no-summary", "--sample-rate", "0", *extra, "-o", rec, "--"]
            ratios[name].append(serve_and_load([*gs, args.python], tmp, ab, 2000) / u)
    print(f"(e) http.server under ab -c 8 -n 2000: untraced {statistics.median(base):.0f} req/s (median)")
    for name, _, _ in variants:
        print(f"    {name:15s} {statistics.median(ratios[name]):.2f}x untraced throughput "
              f"(rounds: {' '.join(f'{x:.2f}' for x in ratios[name])})")


def attached_once(args, script, extra, rec):
    """((seconds for 40 interpreters, for 200 /bin/true), interpreters recorded) of one run; extra
    None: untraced."""
    p = subprocess.Popen([args.python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    gs = None
    try:
        assert p.stdout.readline() == "ready\n"
        if extra is not None:
            gs = subprocess.Popen([args.gilscope, "record", "-q", "--no-summary", "--sample-rate", "0", "-p",
                                   str(p.pid), *extra, "-o", rec], stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)  # attached
        p.stdin.write("\n")
        p.stdin.flush()
        times = tuple(float(x) for x in p.stdout.readline().split())
        p.wait(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
    if gs is None:
        return times, 0
    gs.communicate(timeout=600)
    rep = json.loads(subprocess.run([args.gilscope, "report", "--json", rec], capture_output=True, text=True,
                                    check=True).stdout)
    acq = {}
    for t in rep["threads"]:
        acq[t["pid"]] = acq.get(t["pid"], 0) + t["acquisitions"]
    return times, sum(1 for q in rep["processes"] if q["pid"] != p.pid and acq.get(q["pid"], 0) > 0)


def attached_bench(args, tmp):
    script = os.path.join(tmp, "attached.py")
    with open(script, "w") as f:
        f.write(ATTACHED)
    rec = os.path.join(tmp, "a.rec")
    variants = [("exec stop", []), ("--no-exec-stop", ["--no-exec-stop"])]
    base, r40, r200, seen = [], {n: [] for n, _ in variants}, {n: [] for n, _ in variants}, {n: [] for n, _ in variants}
    for _ in range(args.repeat):
        u, _ = attached_once(args, script, None, rec)
        base.append(u)
        for name, extra in variants:
            t, n = attached_once(args, script, extra, rec)
            r40[name].append(t[0] / u[0])
            r200[name].append(t[1] / u[1])
            seen[name].append(n)
    print(f"(f) attached: 40 interpreters untraced {statistics.median(b[0] for b in base):.3f} s, "
          f"200 /bin/true {statistics.median(b[1] for b in base):.3f} s (medians of {args.repeat})")
    for name, _ in variants:
        print(f"    {name:15s} 40 interpreters {statistics.median(r40[name]):.2f}x untraced "
              f"({min(seen[name])} to {max(seen[name])} of 40 recorded with GIL events), "
              f"200 /bin/true {statistics.median(r200[name]):.2f}x "
              f"(rounds: {' '.join(f'{x:.2f}' for x in r40[name])} / {' '.join(f'{x:.2f}' for x in r200[name])})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gilscope", default="build/gilscope")
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", help="another gilscope build whose tree following is measured alongside")
    ap.add_argument("--only", default="abcdef", help="the benchmarks to run, by letter (default abcdef)")
    ap.add_argument("--threads", type=int, default=2000, help="threads started in (c)")
    args = ap.parse_args()
    args.gilscope = os.path.abspath(args.gilscope)
    args.before = args.before and os.path.abspath(args.before)
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {}
        for name, text in (("forks", FORKS), ("threads", THREADS), ("execs", EXECS)):
            scripts[name] = os.path.join(tmp, name + ".py")
            with open(scripts[name], "w") as f:
                f.write(text)
        loop = f"for i in $(seq 40); do {args.python} -c pass; done"
        if "a" in args.only:
            bench(args, tmp, "(a) 40 short interpreters from a shell (whole run)", ["sh", "-c", loop], 40, False)
        if "b" in args.only:
            bench(args, tmp, "(b) 500 forked short children", [args.python, scripts["forks"], "500"], 500, True)
        if "c" in args.only:
            bench(args, tmp, f"(c) {args.threads:,} threads, one at a time",
                  [args.python, scripts["threads"], str(args.threads)], args.threads, True)
        if "d" in args.only:
            bench(args, tmp, "(d) 200 runs of /bin/true", [args.python, scripts["execs"], "200"], 200, True)
        if "e" in args.only:
            http_bench(args, tmp)
        if "f" in args.only:
            attached_bench(args, tmp)


if __name__ == "__main__":
    main()
