#!/usr/bin/python3
"""perf2trace speed: a large `perf script` text (the GIL fixture recorded here, repeated with
shifted timestamps), converted to Trace Event JSON; MB/s, lines/s and peak memory, which must
not grow with the input (per4m's converter: about 3 MB/s). Input and output go to --dir: /dev/shm
(tmpfs: the figure is gilscope's, not the disk's) unless told otherwise. Each mode ends with its
speeds to a file and to /dev/null side by side."""
import argparse, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def trace_written(path):
    """A Trace Event JSON object with events in it (its head and its tail; it is too big to load)."""
    if not os.path.exists(path) or os.path.getsize(path) < 64:
        return False
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(-64, os.SEEK_END)
        tail = f.read()
    return head.lstrip().startswith(b"{") and b"traceEvents" in head and tail.rstrip().endswith(b"}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--copies", type=int, default=400)
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the input and the JSON go (default /dev/shm, a tmpfs)")
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gilscope-p2t-", dir=opts.dir)
    failed = []
    for mode, fixture, copies, step in (("gil", "perf-script-gil.txt", opts.copies, 0.1),
                                        ("sched", "perf-script-sched-dwarf.txt", opts.copies * 3, 0.1)):
        src = open(os.path.join(HERE, "..", "tests", "fixtures", fixture)).read().splitlines()
        big = os.path.join(tmp, "big.txt")
        nlines = 0
        with open(big, "w") as f:
            for k in range(copies):
                for line in src:
                    m = re.search(r" (\d+\.\d+): ", line)
                    if m:
                        line = line[:m.start(1)] + f"{float(m.group(1)) + k * step:.6f}" + line[m.end(1):]
                    f.write(line + "\n")
                    nlines += 1
        size = os.path.getsize(big)
        speeds = {}
        for name, out in (("to a file", os.path.join(tmp, "out.json")), ("to /dev/null", "/dev/null")):
            if out != "/dev/null" and os.path.exists(out):
                os.unlink(out)  # a new file each time: truncating the last one is not the converter's cost
            with open(big) as f:
                p = subprocess.run(["/usr/bin/time", "-f", "%e %M", os.path.abspath(opts.gilscope), "perf2trace",
                                    mode, "-q", "-o", out], stdin=f, capture_output=True, text=True)
            # a converter that failed, or wrote no trace, converted nothing: no speed to print
            if p.returncode != 0 or (out != "/dev/null" and not trace_written(out)):
                print(f"perf2trace {mode} JSON {name}: FAILED ({p.returncode}): {p.stderr.strip()[-300:]}")
                failed.append(f"{mode} {name}")
                continue
            secs, kb = p.stderr.strip().splitlines()[-1].split()
            secs = max(float(secs), 0.01)
            mbs = size / 1e6 / secs
            speeds[name] = mbs
            print(f"perf2trace {mode} {size / 1e6:.0f} MB, {nlines / 1e6:.1f} M lines, JSON {name}: {secs:.2f} s = "
                  f"{mbs:.0f} MB/s ({mbs / 300:.2f}x the 300 MB/s target, {mbs / 3:.0f}x per4m's ~3 MB/s), "
                  f"{nlines / secs / 1e6:.1f} M lines/s, peak RSS {int(kb) / 1024:.1f} MiB")
        if len(speeds) == 2:
            print(f"perf2trace {mode}: {speeds['to a file']:.0f} MB/s to a file, "
                  f"{speeds['to /dev/null']:.0f} MB/s to /dev/null")
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    if failed:
        sys.exit(f"perf2trace benchmark: gilscope failed ({', '.join(failed)})")


if __name__ == "__main__":
    main()
