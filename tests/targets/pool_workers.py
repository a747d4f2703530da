"""A multiprocessing Pool (start method argv[1]) whose workers each run two contending CPU-bound
threads; every worker thread reports its tid, pid and CPU time (facts.py)."""
import multiprocessing as mp
import os, sys, threading, time
import facts


def spin(out):
    t0 = time.thread_time_ns()
    s = 0
    for i in range(400_000):
        s += i * i
    out.append((threading.get_native_id(), time.thread_time_ns() - t0))


def job(k):
    got = []
    ts = [threading.Thread(target=spin, args=(got,)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for tid, cpu in got:
        facts.report(kind="worker_thread", tid=tid, pid=os.getpid(), cpu_ns=cpu, job=k)
    return os.getpid()


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        pids = pool.map(job, range(4), chunksize=1)
    facts.report(kind="pool", method=sys.argv[1], pids=sorted(set(pids)))
    print("workers", sorted(set(pids)))
