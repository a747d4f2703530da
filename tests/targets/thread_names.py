"""Threads with Python names: two named CPU-bound threads (one with a non-ASCII name), one that
renames itself half-way, and one started by _thread (no threading.Thread: it keeps its label).
Each reports its native id and final name to $GS_FACTS."""
import _thread, threading, time
import facts


def spin(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


def worker():
    spin(0.5)
    facts.report(name=threading.current_thread().name)


def renamer():
    spin(0.4)
    threading.current_thread().name = "renamed-late"
    spin(0.5)
    facts.report(name=threading.current_thread().name, renamed=True)


def raw_spinner(done):
    spin(0.5)
    facts.report(raw=True)
    done.release()


done = _thread.allocate_lock()
done.acquire()
_thread.start_new_thread(raw_spinner, (done,))
ts = [threading.Thread(target=worker, name="db-pool-3"), threading.Thread(target=worker, name="wörker-β"),
      threading.Thread(target=renamer, name="early-name")]
for t in ts:
    t.start()
for t in ts:
    t.join()
done.acquire()
