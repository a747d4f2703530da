#!/usr/bin/python3
"""perf2trace speed: a large `perf script` text (the GIL fixture recorded here, repeated with
shifted timestamps), converted to Trace Event JSON; MB/s, lines/s and peak memory, which must
not grow with the input (per4m's converter: about 3 MB/s)."""
import argparse, os, re, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--copies", type=int, default=400)
    opts = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gilscope-p2t-")
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
        for name, out in (("to a file", os.path.join(tmp, "out.json")), ("to /dev/null", "/dev/null")):
            with open(big) as f:
                p = subprocess.run(["/usr/bin/time", "-f", "%e %M", os.path.abspath(opts.gilscope), "perf2trace",
                                    mode, "-q", "-o", out], stdin=f, capture_output=True, text=True)
            secs, kb = p.stderr.strip().splitlines()[-1].split()
            secs = max(float(secs), 0.01)
            print(f"perf2trace {mode} {size / 1e6:.0f} MB, {nlines / 1e6:.1f} M lines, JSON {name}: {secs:.2f} s = "
                  f"{size / 1e6 / secs:.0f} MB/s, {nlines / secs / 1e6:.1f} M lines/s, peak RSS "
                  f"{int(kb) / 1024:.1f} MiB (target >= 300 MB/s; per4m ~3 MB/s)")
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
