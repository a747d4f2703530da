#!/usr/bin/python3
"""Export time and peak memory on a synthetic recording of N million events (16 threads taking
turns at the GIL, with scheduler events), for each output format; the recording is written in
gilscope's format by this script, so no tracing is needed."""
import argparse, os, struct, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REC = struct.Struct("<HHIIiQQ")  # type, size, pid, tid, arg, time, arg64


def meta(pid, k, v, t):
    payload = k.encode() + b"\0" + v.encode() + b"\0"
    payload += b"\0" * (-len(payload) % 8)
    return REC.pack(1, 32 + len(payload), pid, 0, 0, t, 0) + payload


def synth(path, n_events, threads=16):
    pid, t = 1000, 1_000_000_000
    with open(path, "wb") as f:
        f.write(b"GILSCOPE" + struct.pack("<II", 1, 64) + b"\0" * 8 + struct.pack("<QQ", 0, t) + b"\0" * 24)
        f.write(meta(pid, "python.version", "3.11.7", t) + meta(0, "command", "synthetic", t) +
                meta(0, "target_pid", str(pid), t))
        for i in range(threads):
            f.write(REC.pack(8, 32, pid, pid + i, pid, t, pid))  # FORK
            f.write(REC.pack(6, 32, pid, pid + i, 0, t, 0))      # SWITCH_IN
        n, chunk, k = 0, [], 0
        while n < n_events:
            tid = pid + k % threads
            nxt = pid + (k + 1) % threads
            chunk.append(REC.pack(2, 32, 0, nxt, 0, t + 100, 0))           # next waits
            chunk.append(REC.pack(5, 32, pid, nxt, 0, t + 200, 1))         # ... asleep
            chunk.append(REC.pack(3, 32, 0, tid, 0, t + 5000, 0))          # holder releases
            chunk.append(REC.pack(7, 32, 0, nxt, tid, t + 5100, 0))        # wakes the next
            chunk.append(REC.pack(6, 32, pid, nxt, 0, t + 5300, 0))        # which runs
            chunk.append(REC.pack(3, 32, 0, nxt, 1, t + 5400, 0))          # and takes the GIL
            n += 6
            k += 1
            t += 5400
            if len(chunk) > 60000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
        f.write(REC.pack(13, 32, 0, 0, 0, t, 0))  # END
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gilscope", default=os.path.join(HERE, "..", "build", "gilscope"))
    ap.add_argument("--million-events", type=float, default=10)
    opts = ap.parse_args()
    gs = os.path.abspath(opts.gilscope)
    tmp = tempfile.mkdtemp(prefix="gilscope-export-")
    rec = os.path.join(tmp, "synth.rec")
    t0 = time.perf_counter()
    n = synth(rec, int(opts.million_events * 1e6))
    print(f"export benchmark: synthetic recording of {n / 1e6:.1f} M events, "
          f"{os.path.getsize(rec) / 1e6:.0f} MB (written in {time.perf_counter() - t0:.1f} s)")
    runs = [("report --json", ["report", "--json", rec]),
            ("trace-json", ["export", "--format", "trace-json", rec]),
            ("perfetto", ["export", "--format", "perfetto", rec]),
            ("html", ["export", "--format", "html", rec])]
    failed = []
    for name, args in runs:
        out = os.path.join(tmp, "out")
        with open(out, "wb") as f:
            p = subprocess.run(["/usr/bin/time", "-f", "%e %M", gs, *args], stdout=f, stderr=subprocess.PIPE,
                               text=True)
        if p.returncode != 0 or os.path.getsize(out) == 0:
            print(f"  {name:14} FAILED ({p.returncode}): {p.stderr.strip()[-300:]}")
            failed.append(name)
            continue
        secs, kb = p.stderr.strip().splitlines()[-1].split()
        secs = max(float(secs), 0.01)
        print(f"  {name:14} {secs:6.2f} s = {n / secs / 1e6:5.2f} M events/s  peak RSS {int(kb) / 1024:7.1f} MiB "
              f"({int(kb) * 1024 / os.path.getsize(rec):.3f}x the recording)  output {os.path.getsize(out) / 1e6:8.1f} MB")
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    os.rmdir(tmp)
    if failed:
        sys.exit(f"export benchmark: gilscope failed on {', '.join(failed)}")


if __name__ == "__main__":
    main()
