"""Thread creation: starts thousands of short threads (in waves of `wave` at once: each does a
little Python work and ends), the pattern of a thread-per-request server. Prints elapsed seconds."""
import sys, threading, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
wave = int(sys.argv[2]) if len(sys.argv) > 2 else 3000


def work():
    x = 0
    for i in range(200):
        x += i


t0 = time.perf_counter()
done = 0
while done < n:
    ts = [threading.Thread(target=work) for _ in range(min(wave, n - done))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    done += len(ts)
print(f"{time.perf_counter() - t0:.6f}")
