"""A module for giltracer-style runs: `gilscope record -m giltracer_mod N`."""
import sys, threading

def worker(n):
    x = 0
    for i in range(n):
        x += i

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    ts = [threading.Thread(target=worker, args=(n,)) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    print("module ran", sys.argv[1:])
