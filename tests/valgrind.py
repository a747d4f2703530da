#!/usr/bin/python3
"""`make valgrind`: gilscope under memcheck on real work. Each case fails on a memory error, a
definite or indirect leak, or a file descriptor left open at exit that gilscope opened itself
(valgrind --track-fds; descriptors inherited from this harness are not gilscope's: each case
starts with only 0, 1 and 2 open).

Cases: record (launch, with --html) of a small multi-threaded program and record -p (attach) of a
running one, both under valgrind (the recorded programs run natively: valgrind does not follow
exec); report, report --json, blame, dump of that recording; export in every format (folded and
svg for every --what, trace-json, trace-json --combine, perfetto, html); perf2trace gil and sched
on tests/fixtures; offgil on perf script text and on the recording; and the error paths a user
meets (garbage and missing files, a symbolic link as output, usage errors). Without root (or with
--no-record) the record cases are printed as SKIPPED, by name, and the reading cases run on a
hand-written recording (tests/functional/known_run.py) instead."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = os.path.join(ROOT, "tests", "targets")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
PY = "/usr/bin/python3.11"

SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")  # libbpf's bpf(2) attrs
VALGRIND = ["valgrind", "--tool=memcheck", f"--suppressions={SUPP}", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect", "--error-exitcode=99", "--track-fds=yes", "--num-callers=30"]


def own_fds_left(log):
    """Descriptors above 2 open at exit that were not inherited."""
    left, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"Open (?:file|AF_\w+ socket) descriptor (\d+): ?(.*)", line)
        if not m or int(m.group(1)) <= 2:
            continue
        following = " ".join(lines[i + 1:i + 3])
        if "<inherited from parent>" not in following:
            left.append(f"fd {m.group(1)} {m.group(2)}")
    return left


def run_case(name, argv, tmp, expect=0, stdin=None, env=None):
    log = os.path.join(tmp, "vg-%s.log" % re.sub(r"[^A-Za-z0-9]+", "-", name))
    t0 = time.monotonic()
    with open(stdin or os.devnull, "rb") as inp:
        proc = subprocess.run([*VALGRIND, f"--log-file={log}", *argv], stdin=inp, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env, close_fds=True, timeout=600)
    with open(log) as f:
        text = f.read()
    problems = []
    if proc.returncode == 99:
        problems.append("memcheck errors or leaks")
    elif proc.returncode != expect:
        problems.append(f"exit status {proc.returncode}, expected {expect}: {proc.stderr.strip()[-300:]}")
    fds = own_fds_left(text)
    if fds:
        problems.append("descriptors left open: " + ", ".join(fds))
    status = "ok" if not problems else "FAIL"
    print(f"  {status:4} {name:44} {time.monotonic() - t0:5.1f}s", flush=True)
    for p in problems:
        print(f"       {p}\n       log: {log}")
    if problems:
        summary = [l for l in text.splitlines() if "==" in l]
        print("\n".join(summary[-60:]))
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gilscope", required=True)
    ap.add_argument("--no-record", action="store_true", help="skip the two record cases (no root)")
    args = ap.parse_args()
    gs = os.path.abspath(args.gilscope)
    env = dict(os.environ, PYTHONPATH=TARGETS)
    tmp = tempfile.mkdtemp(prefix="gilscope-valgrind-")
    rec = os.path.join(tmp, "run.rec")
    ok = True
    t0 = time.monotonic()
    print(f"valgrind {subprocess.run(['valgrind', '--version'], capture_output=True, text=True).stdout.strip()} "
          f"on {gs} (logs in {tmp})")

    def case(name, argv, **kw):
        nonlocal ok
        ok &= run_case(name, argv, tmp, env=env, **kw)

    if not args.no_record and os.geteuid() == 0:
        case("record (launch, --html)", [gs, "record", "--no-summary", "-o", rec, "--html", os.path.join(tmp, "r.html"),
                                         "--", PY, os.path.join(TARGETS, "cpu.py"), "3", "300000"])
        tgt = subprocess.Popen([PY, os.path.join(TARGETS, "busy_forever.py"), "30"], stdout=subprocess.PIPE,
                               text=True, env=env)
        try:
            tgt.stdout.readline()
            case("record -p (attach, 1 s)", [gs, "record", "-o", os.path.join(tmp, "attach.rec"), "-p",
                                              str(tgt.pid), "--duration", "1"])
        finally:
            tgt.kill()
            tgt.wait()
        viz = os.path.join(tmp, "viz.json")
        subprocess.run([gs, "record", "-q", "--no-summary", "-o", os.path.join(tmp, "viz.rec"), "--", PY,
                        os.path.join(TARGETS, "viztrace_like.py"), viz], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        case("record summary (table)", [gs, "record", "-o", os.path.join(tmp, "s.rec"), "--", "/bin/true"])
        nat = os.path.join(tmp, "native.rec")
        case("record --native (libdwfl unwinding)", [gs, "record", "--no-summary", "--native", "-o", nat, "--", PY,
                                                    os.path.join(TARGETS, "native_mix.py"), "0.5"])
        case("blame --keep-cpython-evals (native)", [gs, "blame", "--keep-cpython-evals", nat])
    else:
        # Every case dropped is said so, by name. The reading cases run all the same, on the
        # hand-written recording of tests/functional/known_run.py (no root needed to write it).
        why = "--no-record" if args.no_record else "not root"
        for name in ("record (launch, --html)", "record -p (attach, 1 s)", "record summary (table)",
                     "record --native (libdwfl unwinding)", "blame --keep-cpython-evals (native)",
                     "export trace-json --combine"):
            print(f"  SKIPPED {name:44} ({why}: recording needs root)", flush=True)
        sys.path.insert(0, os.path.join(ROOT, "tests", "functional"))
        from known_run import scenario
        scenario().write(rec)
        viz = None

    if rec:
        case("report", [gs, "report", rec])
        case("report --json", [gs, "report", "--json", rec])
        case("report --active", [gs, "report", "--active", rec])
        case("blame", [gs, "blame", rec])
        case("dump", [gs, "dump", rec])
        for what in ("hold", "wait", "cpu", "offcpu", "offgil", "blocking"):
            case(f"export folded --what {what}", [gs, "export", "--format", "folded", "--what", what, rec])
            case(f"export svg --what {what}", [gs, "export", "--format", "svg", "--what", what, rec, "-o",
                                                os.path.join(tmp, f"{what}.svg")])
        case("export trace-json", [gs, "export", "--format", "trace-json", rec, "-o", os.path.join(tmp, "t.json")])
        if viz:
            case("export trace-json --combine", [gs, "export", "--combine", viz, os.path.join(tmp, "viz.rec"), "-o",
                                                 os.path.join(tmp, "c.json")])
        case("export perfetto", [gs, "export", "--format", "perfetto", rec, "-o", os.path.join(tmp, "t.pftrace")])
        case("export html", [gs, "export", "--format", "html", rec, "-o", os.path.join(tmp, "e.html")])
        case("offgil (recording)", [gs, "offgil", rec, "-o", os.path.join(tmp, "offgil-rec.txt")])
        link = os.path.join(tmp, "link.json")
        os.symlink(os.path.join(tmp, "victim"), link)
        case("export -o symlink (refused)", [gs, "export", "--format", "trace-json", rec, "-o", link], expect=1)
        truncated = os.path.join(tmp, "truncated.rec")
        with open(rec, "rb") as f, open(truncated, "wb") as out:
            out.write(f.read()[:os.path.getsize(rec) // 2 + 13])
        case("report (truncated recording)", [gs, "report", truncated])

    for fx in ("perf-script-gil.txt", "perf-script-gil-ns.txt"):
        case(f"perf2trace gil < {fx}", [gs, "perf2trace", "gil", "-o", os.path.join(tmp, fx + ".json")],
             stdin=os.path.join(FIXTURES, fx))
    case("perf2trace sched < perf-script-sched-dwarf.txt",
         [gs, "perf2trace", "sched", "-o", os.path.join(tmp, "sched.json")],
         stdin=os.path.join(FIXTURES, "perf-script-sched-dwarf.txt"))
    case("offgil < perf-script-sched-dwarf.txt", [gs, "offgil"],
         stdin=os.path.join(FIXTURES, "perf-script-sched-dwarf.txt"))
    garbage = os.path.join(tmp, "garbage.rec")
    with open(garbage, "wb") as f:
        f.write(b"GILSCOPE" + b"\x01\x00\x00\x00\x40\x00\x00\x00" + b"\xff" * 400)
    case("report (garbage)", [gs, "report", garbage], expect=1)
    case("report (missing file)", [gs, "report", os.path.join(tmp, "missing.rec")], expect=1)
    case("perf2trace (not perf script)", [gs, "perf2trace", "gil", "-o", os.path.join(tmp, "x.json")],
         stdin=garbage, expect=1)
    case("usage error", [gs, "export", "--format", "nope", "x"], expect=2)
    print(f"valgrind: {'all clean' if ok else 'FAILURES'} ({time.monotonic() - t0:.0f} s)")
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
