"""Ground truth that tells held from wait: tests/targets/duty.py runs a thread that holds the GIL
most of its life (the hog) and one that waits for it most of its life (the waiter); each measures
its own truth with its own CPU clock (time.thread_time: CPU time while holding the GIL, whatever
the machine's load) and the program's own timers (wall time of the Python loops, of the
GIL-releasing calls, of the stretches between them). Held and wait are bounded apart, per thread
and for the main thread, so that a swap of the two, a hold 10% too long or a wait counted as held
fails on every interpreter."""
from conftest import record, target

MS = 1_000_000


def near(value, truth, rel, abs_ms):
    return abs(value - truth) <= rel * truth + abs_ms * MS


def test_held_and_wait_follow_each_threads_own_truth(tmp_path, python):
    run = record(tmp_path, [python, target("duty.py"), "1.0"], args=["--sample-rate", "0"])
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.proc.stdout == "duty done\n"
    rep = run.report
    assert rep["lost_events"] == 0 and rep["complete"] is True
    facts = {f["kind"]: f for f in run.facts}
    hog, waiter, main = run.thread(facts["hog"]["tid"]), run.thread(facts["waiter"]["tid"]), \
        run.thread(facts["main"]["tid"])
    fh, fw, fm = facts["hog"], facts["waiter"], facts["main_end"]
    on_cpu = lambda t: t["gil_held_ns"] - t["gil_held_off_cpu_ns"]  # noqa: E731

    # the hog: on a CPU while holding exactly as long as its CPU clock ran its Python loops; it
    # holds at most as long as those loops took (it also gives the GIL up in them, when the waiter
    # asks for a switch); it neither holds nor waits during its 2 ms sleeps (asleep, or on a
    # loaded machine runnable)
    assert near(on_cpu(hog), fh["cpu_ns"], 0.03, 5), (hog, fh)
    assert hog["gil_held_ns"] <= 1.01 * fh["spin_ns"] + 2 * MS, (hog, fh)
    off = hog["sleeping_ns"] + hog["runnable_ns"] + hog["running_no_gil_ns"]
    assert off >= 0.95 * 2 * MS * fh["calls"], (hog, fh)

    # the waiter: holds between its calls (wall time, off-CPU included; the calls' own Python
    # part, before the release and after the take, is held too: a microsecond a call at most)
    slack = 0.03 * fw["held_ns"] + 5 * MS + fw["calls"] * 1000
    assert near(waiter["gil_held_ns"], fw["held_ns"], 0, slack / MS), (waiter["gil_held_ns"], slack, fw)
    assert waiter["gil_wait_ns"] <= fw["call_ns"] + 2 * MS, (waiter, fw)
    outside_wait = waiter["sleeping_ns"] + waiter["runnable_ns"] + waiter["running_no_gil_ns"]
    assert waiter["gil_wait_ns"] >= 0.97 * fw["call_ns"] - outside_wait - 5 * MS, (waiter, fw)

    # who is which: the hog holds far more than it waits and than the waiter holds; the waiter
    # waits far more than the hog (3.9 and 3.10 let it retake the GIL it released more often)
    assert hog["gil_held_ns"] > 1.5 * hog["gil_wait_ns"] and hog["gil_held_ns"] > 1.5 * waiter["gil_held_ns"]
    assert waiter["gil_wait_ns"] > 2 * hog["gil_wait_ns"], (hog, waiter)

    # the main thread: held on a CPU = its CPU time since it started (start-up included: it holds
    # the GIL to run Python), and it sleeps in join() while the hog lives; it hardly waits
    assert on_cpu(main) >= 0.97 * facts["main"]["cpu_ns"], (main, facts["main"])
    assert near(on_cpu(main), fm["cpu_ns"], 0.03, 10), (main, fm)
    assert main["sleeping_ns"] >= 0.95 * fh["life_ns"] - 5 * MS, (main, fh)
    assert main["gil_wait_ns"] <= 0.1 * fh["life_ns"], main
