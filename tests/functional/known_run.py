"""The known-answer run of test_known_answers.py as a recording (recwriter.py), on its own so
that tools without pytest (tests/valgrind.py as non-root) can write it too; its figures, worked
out by hand, are in test_known_answers.py."""
import recwriter as rw

P, MAIN, HOG, WAITER = 100, 100, 101, 102


def scenario(lost=0, version=rw.VERSION):
    r = rw.Recording(version=version).launch(P)
    for fid, q, f, line in ((1, "main_loop", "known.py", 10), (2, "hog", "known.py", 20),
                            (3, "Thread.run", "threading.py", 900), (4, "waiter_fn", "known.py", 30)):
        r.pyframe(fid, q, f, line)
    r.pystack(1, [2, 3]).pystack(2, [4, 3]).pystack(3, [1])
    r.comm(0, P, MAIN, "python3", by_exec=True).python(0, P).switch_in(0, P, MAIN).wait(0, MAIN).take(0, MAIN)
    r.fork(10, P, HOG, P, MAIN).comm(10, P, HOG, "hogger").switch_in(10, P, HOG)
    r.fork(10, P, WAITER, P, MAIN).comm(10, P, WAITER, "waiter").switch_in(10, P, WAITER)
    r.wait(20, HOG).wait(30, WAITER).switch_out(40, P, WAITER, rw.SLEEP)
    r.sample(25, P, MAIN, 3)
    r.release(50, MAIN).switch_out(50, P, MAIN, rw.SLEEP)
    r.take(60, HOG)
    if lost:
        r.lost(70, lost, cpu=1)
    r.sample(100, P, HOG, 1).sample(100, P, WAITER, 2).sample(200, P, HOG, 1).sample(300, P, WAITER, 2)
    r.wakeup(395, WAITER).switch_in(398, P, WAITER).drop_request(400, WAITER, 1)
    r.switch_out(402, P, WAITER, rw.SLEEP)
    r.release(460, HOG).wakeup(465, WAITER, HOG).switch_in(468, P, WAITER).take(470, WAITER)
    r.drop_request(470, WAITER, 0)
    r.sample(470, P, HOG, 1)
    r.wait(480, HOG)
    r.sample(500, P, WAITER, 2).sample(500, P, MAIN, 3)
    r.release(520, WAITER).take(520, HOG).wait(530, WAITER)
    r.release(820, HOG).take(825, WAITER).exit(830, P, HOG)
    r.release(850, WAITER).exit(860, P, WAITER)
    r.wakeup(895, MAIN, WAITER).switch_in(900, P, MAIN).wait(900, MAIN).take(900, MAIN).release(990, MAIN)
    r.exit(1000, P, MAIN).proc_exit(1000, P, 0).end(1000, lost=lost)
    return r
