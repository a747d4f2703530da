"""One thread making N cheap system calls (os.getppid, which keeps the GIL): what gilscope costs a
program on each system call that is not a GIL event (the fork watch's seccomp filter cost ~55 ns
each; the stops at exec cost none)."""
import os, sys, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
t0 = time.perf_counter()
for _ in range(n):
    os.getppid()
print(f"{time.perf_counter() - t0:.6f}")
