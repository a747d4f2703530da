/* Unit tests: the state machine on hand-written event sequences. Times are in microseconds
 * from the recording start (T(us)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/analysis.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)
#define US 1000ull

static void feed(struct gs_analysis *a, uint16_t type, uint32_t pid, uint32_t tid, uint64_t time, int32_t arg,
		 uint64_t arg64)
{
	struct gs_rec r = { .type = type, .pid = pid, .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_analysis_feed(a, &r, NULL, 0);
}

static void meta(struct gs_analysis *a, uint32_t pid, const char *kv, size_t len)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = pid, .time = START };
	gs_analysis_feed(a, &r, kv, len);
}

/* A Python process 100 with main thread 100 on CPU from the start. */
static void python_process(struct gs_analysis *a)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	gs_analysis_init(a, START);
	meta(a, 100, kv, sizeof(kv));
	feed(a, GS_REC_SWITCH_IN, 100, 100, T(0), 0, 0);
}

#define ACQ(tid, t) feed(&a, GS_REC_GIL_WRITE, 100, tid, T(t), 1, 0)
#define REL(tid, t) feed(&a, GS_REC_GIL_WRITE, 100, tid, T(t), 0, 0)
#define WAIT(tid, t) feed(&a, GS_REC_GIL_WAIT, 100, tid, T(t), 0, 0)
#define OUT(tid, t, st) feed(&a, GS_REC_SWITCH_OUT, 100, tid, T(t), 0, st)
#define IN(tid, t) feed(&a, GS_REC_SWITCH_IN, 100, tid, T(t), 0, 0)
#define WAKE(tid, t) feed(&a, GS_REC_WAKEUP, 0, tid, T(t), 0, 0)

static void test_two_threads_ping_pong(void **state)
{
	struct gs_analysis a;
	struct gs_thread *m, *w;
	struct gs_process *p;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	IN(101, 0);
	WAIT(100, 0);
	ACQ(100, 0);   /* main holds 0..100 */
	WAIT(101, 10); /* 101 waits 10..100, asleep from 20 */
	OUT(101, 20, 1);
	WAKE(101, 58); /* the timed wait expires */
	IN(101, 60);
	feed(&a, GS_REC_DROPREQ, 100, 101, T(60), 1, 0); /* asks for a switch at 60 */
	OUT(101, 62, 1);
	REL(100, 100); /* forced drop, 40 us after the request */
	WAKE(101, 100);
	IN(101, 110);
	ACQ(101, 110);  /* 101 holds 110..300 */
	WAIT(100, 120); /* main waits 120..300 on CPU */
	REL(101, 300);
	ACQ(100, 300);
	REL(100, 400);
	gs_analysis_finish(&a, T(400));

	m = gs_analysis_thread(&a, 100);
	w = gs_analysis_thread(&a, 101);
	p = gs_analysis_process(&a, 100);
	struct gs_gilstat *g = &a.gils[p->main_gil];
	assert_non_null(m);
	assert_non_null(w);
	assert_true(m->is_main);
	assert_false(w->is_main);
	assert_int_equal(m->held_ns, 200 * US);
	assert_int_equal(m->wait_ns, 180 * US);
	assert_int_equal(m->run_nogil_ns, 20 * US);
	assert_int_equal(m->acquisitions, 2);
	assert_int_equal(m->forced_drops, 1);
	assert_int_equal(m->releases, 2);
	assert_int_equal(m->longest_hold_ns, 100 * US);
	assert_int_equal(m->longest_wait_ns, 180 * US);
	assert_int_equal(w->held_ns, 190 * US);
	assert_int_equal(w->wait_ns, 100 * US);
	assert_int_equal(w->wait_sleep_ns, 76 * US);
	assert_int_equal(w->wait_runnable_ns, 12 * US);
	assert_int_equal(w->wait_oncpu_ns, 12 * US);
	assert_int_equal(w->run_nogil_ns, 100 * US + 10 * US);
	assert_int_equal(w->drop_requests, 1);
	/* every nanosecond of each lifetime is in exactly one category */
	assert_int_equal(m->held_ns + m->wait_ns + m->run_nogil_ns + m->sleeping_ns + m->runnable_ns + m->unknown_ns,
			 m->end_ns - m->first_ns);
	assert_int_equal(w->held_ns + w->wait_ns + w->run_nogil_ns + w->sleeping_ns + w->runnable_ns + w->unknown_ns,
			 w->end_ns - w->first_ns);
	/* one GIL: holds sum to at most the wall time */
	assert_true(m->held_ns + w->held_ns <= p->end_ns - p->first_ns);
	assert_int_equal(g->held_ns, 390 * US);
	assert_int_equal(g->contended_ns, 100 * US + 180 * US);
	assert_int_equal(g->forced_drops, 1);
	assert_int_equal(g->drop_latency_max_ns, 40 * US);
	assert_int_equal(a.anomalies, 0);
	/* blame: 101 waited 10..110, while main held it (90 us), then while it was handed over */
	assert_int_equal(w->nblame, 2);
	for (size_t k = 0; k < w->nblame; k++)
		assert_int_equal(w->blame[k].ns, w->blame[k].holder == 100 ? 90 * US : 10 * US);
	assert_int_equal(m->nblame, 1);
	assert_int_equal(m->blame[0].holder, 101);
	assert_int_equal(m->blame[0].ns, 180 * US);
	/* the longest holds, longest first, with who waited during them */
	assert_int_equal(a.ntop_holds, 3);
	assert_int_equal(a.top_holds[0].tid, 101);
	assert_int_equal(a.top_holds[0].ns, 190 * US);
	assert_int_equal(a.top_holds[0].max_waiters, 1);
	assert_int_equal(a.top_holds[0].waited_ns, 180 * US);
	assert_int_equal(a.top_holds[1].ns, 100 * US);
	gs_analysis_free(&a);
}

static void test_unmatched_events(void **state)
{
	struct gs_analysis a;
	struct gs_thread *m, *w;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	IN(101, 0);
	REL(100, 5);  /* a release with nobody holding: create_gil's store, ignored */
	ACQ(100, 10); /* no wait start recorded: a zero-length wait */
	ACQ(101, 50); /* 101 takes it while 100 holds: 100's release was lost */
	REL(100, 60); /* a release by a thread that does not hold it: ignored */
	REL(101, 70);
	gs_analysis_finish(&a, T(100));
	m = gs_analysis_thread(&a, 100);
	w = gs_analysis_thread(&a, 101);
	assert_int_equal(m->held_ns, 40 * US);
	assert_int_equal(w->held_ns, 20 * US);
	assert_int_equal(a.anomalies, 2);
	assert_int_equal(a.init_writes, 1);
	gs_analysis_free(&a);
}

static void test_out_of_order_and_open_hold(void **state)
{
	struct gs_analysis a;
	struct gs_thread *m;
	(void)state;
	python_process(&a);
	WAIT(100, 10);
	ACQ(100, 20);
	OUT(100, 15, 0x100); /* older than the last event: counted and clamped to 20 */
	IN(100, 30);
	gs_analysis_finish(&a, T(130)); /* the hold is still open at the end */
	m = gs_analysis_thread(&a, 100);
	assert_int_equal(a.out_of_order, 1);
	assert_int_equal(m->held_ns, 110 * US);
	assert_int_equal(m->held_offcpu_ns, 10 * US);
	assert_int_equal(m->longest_hold_ns, 110 * US);
	assert_int_equal(m->acquisitions, 1);
	gs_analysis_free(&a);
}

static void test_lost_and_exit_while_waiting(void **state)
{
	struct gs_analysis a;
	struct gs_thread *w;
	struct gs_process *p;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_LOST, 0, 0, T(1), 0, 17);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	ACQ(100, 0);
	IN(101, 1);
	WAIT(101, 10);
	feed(&a, GS_REC_EXIT, 100, 101, T(40), 0, 0); /* exits while waiting: the wait closes */
	WAKE(101, 50);                                /* a wakeup for a dead thread is ignored */
	gs_analysis_finish(&a, T(60));
	w = gs_analysis_thread(&a, 101);
	p = gs_analysis_process(&a, 100);
	assert_int_equal(a.lost_events, 17);
	assert_true(w->exited);
	assert_int_equal(w->wait_ns, 30 * US);
	assert_int_equal(w->end_ns - w->first_ns, 40 * US);
	assert_int_equal(a.gils[p->main_gil].nwaiters, 0);
	assert_int_equal(a.gils[p->main_gil].contended_ns, 30 * US);
	gs_analysis_free(&a);
}

static void test_attach_wait_in_progress(void **state)
{
	/* Attached while 101 was blocked in take_gil and 100 held the GIL: 101's first GIL event
	 * is the acquisition; all its time since the start was a wait. */
	struct gs_analysis a;
	struct gs_thread *w, *m;
	static const char kv[] = "python.version\0"
				 "3.11.2";
	(void)state;
	gs_analysis_init(&a, START);
	meta(&a, 100, kv, sizeof(kv));
	feed(&a, GS_REC_THREAD, 100, 100, T(0), 'R', GS_THREAD_HOLDS_GIL | GS_THREAD_MAIN);
	feed(&a, GS_REC_THREAD, 100, 101, T(0), 'S', 0);
	REL(100, 50);
	WAKE(101, 50);
	IN(101, 60);
	ACQ(101, 60);
	gs_analysis_finish(&a, T(100));
	m = gs_analysis_thread(&a, 100);
	w = gs_analysis_thread(&a, 101);
	assert_int_equal(m->held_ns, 50 * US);
	assert_int_equal(m->acquisitions, 0); /* the hold began before the recording */
	assert_int_equal(w->wait_ns, 60 * US);
	assert_int_equal(w->wait_sleep_ns, 50 * US);
	assert_int_equal(w->wait_runnable_ns, 10 * US);
	assert_int_equal(w->sleeping_ns, 0);
	assert_int_equal(w->held_ns, 40 * US);
	gs_analysis_free(&a);
}

static void test_not_python_and_states(void **state)
{
	/* a process without Python metadata: GIL events are ignored, states still counted */
	struct gs_analysis a;
	struct gs_thread *t;
	(void)state;
	gs_analysis_init(&a, START);
	feed(&a, GS_REC_SWITCH_IN, 200, 200, T(0), 0, 0);
	feed(&a, GS_REC_GIL_WRITE, 200, 200, T(5), 1, 0);
	feed(&a, GS_REC_SWITCH_OUT, 200, 200, T(10), 0, 2); /* D */
	feed(&a, GS_REC_WAKEUP, 0, 200, T(30), 0, 0);
	feed(&a, GS_REC_SWITCH_IN, 200, 200, T(35), 0, 0);
	feed(&a, GS_REC_SWITCH_OUT, 200, 200, T(40), 0, 0x100); /* preempted */
	feed(&a, GS_REC_SWITCH_IN, 200, 200, T(45), 0, 0);
	gs_analysis_finish(&a, T(50));
	t = gs_analysis_thread(&a, 200);
	assert_int_equal(t->held_ns, 0);
	assert_int_equal(t->run_nogil_ns, 20 * US);
	assert_int_equal(t->sleeping_ns, 20 * US);
	assert_int_equal(t->uninterruptible_ns, 20 * US);
	assert_int_equal(t->runnable_ns, 10 * US);
	gs_analysis_free(&a);
}

static uint64_t samples_of(const struct gs_analysis *a, uint32_t what, uint32_t tid)
{
	uint64_t n = 0;
	for (size_t i = 0; i < a->cap_counts; i++)
		if (a->counts[i].amount && a->counts[i].what == what && a->counts[i].tid == tid)
			n += a->counts[i].amount;
	return n;
}

static void test_samples_by_state(void **state)
{
	/* thread 101: holds, waits, runs without the GIL, is preempted, sleeps: one sample each */
	struct gs_analysis a;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	IN(101, 0);
	ACQ(101, 10);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(15), 0, 0); /* hold */
	REL(101, 20);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(25), 0, 0); /* cpu */
	OUT(101, 30, 0x100);                            /* preempted */
	feed(&a, GS_REC_SAMPLE, 100, 101, T(35), 0, 0); /* still cpu: resumes that work */
	IN(101, 40);
	WAIT(101, 45);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(47), 0, 0); /* wait */
	ACQ(101, 50);
	REL(101, 55);
	OUT(101, 60, 1);                                /* asleep */
	feed(&a, GS_REC_SAMPLE, 100, 101, T(65), 0, 0); /* offcpu */
	gs_analysis_finish(&a, T(70));
	assert_int_equal(samples_of(&a, GS_WHAT_HOLD, 101), 1);
	assert_int_equal(samples_of(&a, GS_WHAT_NOGIL, 101), 2);
	assert_int_equal(samples_of(&a, GS_WHAT_WAIT, 101), 1);
	assert_int_equal(samples_of(&a, GS_WHAT_OFFCPU, 101), 1);
	assert_int_equal(a.stack_samples, 5);
	gs_analysis_free(&a);
}

static void test_longest_holds_carry_their_stack(void **state)
{
	/* 101 holds 10-50 us, sampled in stacks 7, 9, 7 (majority 7); 102 takes the GIL at 60 and
	 * still holds it at the end, sampled once in stack 5 */
	struct gs_analysis a;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	feed(&a, GS_REC_FORK, 100, 102, T(0), 100, 100);
	IN(101, 0);
	IN(102, 0);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(5), 0, 3); /* before the hold: not its stack */
	ACQ(101, 10);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(20), 0, 7);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(30), 0, 9);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(40), 0, 7);
	REL(101, 50);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(55), 0, 3); /* after it */
	ACQ(102, 60);
	feed(&a, GS_REC_SAMPLE, 100, 102, T(65), 0, 5);
	gs_analysis_finish(&a, T(200));
	assert_int_equal(a.ntop_holds, 2);
	assert_int_equal(a.top_holds[0].tid, 102);
	assert_int_equal(a.top_holds[0].ns, 140 * US);
	assert_true(a.top_holds[0].open);
	assert_int_equal(a.top_holds[0].stack, 5);
	assert_int_equal(a.top_holds[0].samples, 1);
	assert_int_equal(a.top_holds[1].tid, 101);
	assert_int_equal(a.top_holds[1].ns, 40 * US);
	assert_false(a.top_holds[1].open);
	assert_int_equal(a.top_holds[1].stack, 7);
	assert_int_equal(a.top_holds[1].samples, 3);
	gs_analysis_free(&a);
}

static uint64_t held_for(const struct gs_analysis *a, uint32_t waiter, uint32_t holder, uint64_t stack)
{
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (c->amount && c->what == GS_WHAT_HELD_FOR && c->tid == waiter && c->peer == holder &&
		    c->stack == stack)
			return c->amount;
	}
	return 0;
}

static void test_holder_stacks_per_waiter(void **state)
{
	/* 101 holds 10-100 us; 102 waits 20-100, 103 waits 60-100. Holder samples: stack 7 at 30
	 * (only 102 waiting), stack 9 at 70 and 80 (both waiting); stack 4 at 5 (nobody) */
	struct gs_analysis a;
	(void)state;
	python_process(&a);
	for (uint32_t t = 101; t <= 103; t++) {
		feed(&a, GS_REC_FORK, 100, t, T(0), 100, 100);
		IN(t, 0);
	}
	feed(&a, GS_REC_SAMPLE, 100, 101, T(5), 0, 4);
	ACQ(101, 10);
	WAIT(102, 20);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(30), 0, 7);
	WAIT(103, 60);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(70), 0, 9);
	feed(&a, GS_REC_SAMPLE, 100, 101, T(80), 0, 9);
	REL(101, 100);
	gs_analysis_finish(&a, T(120));
	assert_int_equal(held_for(&a, 102, 101, 7), 1);
	assert_int_equal(held_for(&a, 102, 101, 9), 2);
	assert_int_equal(held_for(&a, 103, 101, 7), 0); /* 103 was not waiting yet */
	assert_int_equal(held_for(&a, 103, 101, 9), 2);
	assert_int_equal(held_for(&a, 102, 101, 4), 0); /* nobody waited */
	assert_int_equal(samples_of(&a, GS_WHAT_BLOCKING, 101), 3);
	/* each wait's time goes to the first stack sampled in it: none was (the samples above are
	 * the holder's), so 102 and 103 have unsampled waits, still open at the end */
	assert_int_equal(samples_of(&a, GS_WHAT_WAITED_NS, 102), 100 * US); /* 20 to the end at 120 */
	assert_int_equal(samples_of(&a, GS_WHAT_WAITS, 103), 1);
	assert_int_equal(samples_of(&a, GS_WHAT_OFFGIL, 101), 1); /* the one at 5, running without it */
	gs_analysis_free(&a);
}

static void test_wait_sites(void **state)
{
	/* 102 waits 10-50 (sampled in stack 6 at 20 and stack 8 at 30: the first counts), 60-62
	 * (not sampled), and 70 to the end at 100 (sampled in 5 at 80) */
	struct gs_analysis a;
	uint64_t got6 = 0, got5 = 0, got0 = 0, n0 = 0;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	feed(&a, GS_REC_FORK, 100, 102, T(0), 100, 100);
	IN(101, 0);
	IN(102, 0);
	ACQ(101, 5);
	WAIT(102, 10);
	feed(&a, GS_REC_SAMPLE, 100, 102, T(20), 0, 6);
	feed(&a, GS_REC_SAMPLE, 100, 102, T(30), 0, 8);
	REL(101, 50);
	ACQ(102, 50);
	REL(102, 55);
	ACQ(101, 56);
	WAIT(102, 60);
	REL(101, 62);
	ACQ(102, 62);
	REL(102, 65);
	ACQ(101, 66);
	WAIT(102, 70);
	feed(&a, GS_REC_SAMPLE, 100, 102, T(80), 0, 5);
	gs_analysis_finish(&a, T(100));
	for (size_t i = 0; i < a.cap_counts; i++) {
		const struct gs_stack_count *c = &a.counts[i];
		if (!c->amount || c->tid != 102)
			continue;
		if (c->what == GS_WHAT_WAITED_NS && c->stack == 6)
			got6 = c->amount;
		if (c->what == GS_WHAT_WAITED_NS && c->stack == 5)
			got5 = c->amount;
		if (c->what == GS_WHAT_WAITED_NS && c->stack == 0)
			got0 = c->amount;
		if (c->what == GS_WHAT_WAITS && c->stack == 0)
			n0 = c->amount;
		assert_false(c->what == GS_WHAT_WAITED_NS && c->stack == 8);
	}
	assert_int_equal(got6, 40 * US);
	assert_int_equal(got0, 2 * US);
	assert_int_equal(n0, 1);
	assert_int_equal(got5, 30 * US); /* still waiting at the end */
	assert_int_equal(got6 + got0 + got5, gs_analysis_thread(&a, 102)->wait_ns);
	gs_analysis_free(&a);
}

static void test_tid_reuse(void **state)
{
	struct gs_analysis a;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	feed(&a, GS_REC_EXIT, 100, 101, T(10), 0, 0);
	feed(&a, GS_REC_FORK, 100, 101, T(20), 100, 100);
	IN(101, 20);
	ACQ(101, 25);
	REL(101, 30);
	gs_analysis_finish(&a, T(40));
	assert_int_equal(a.nthreads, 3);
	assert_int_equal(gs_analysis_thread(&a, 101)->acquisitions, 1);
	assert_int_equal(gs_analysis_thread(&a, 101)->first_ns, T(20));
	gs_analysis_free(&a);
}

/* The sampler reads a thread's Python name from its copy of the thread: the name may be written
 * after the thread exited, and names that thread, not a new one with the same tid. */
static void test_name_after_exit(void **state)
{
	static const char name[] = "worker-1";
	struct gs_analysis a;
	struct gs_rec r = { .type = GS_REC_PYNAME, .pid = 100, .tid = 101, .time = T(15) };
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	IN(101, 1);
	ACQ(101, 2);
	REL(101, 3);
	feed(&a, GS_REC_EXIT, 100, 101, T(10), 0, 0);
	gs_analysis_feed(&a, &r, name, sizeof(name));
	gs_analysis_finish(&a, T(40));
	assert_int_equal(a.nthreads, 2);
	assert_true(gs_analysis_thread(&a, 101)->exited);
	assert_string_equal(gs_analysis_thread(&a, 101)->pyname, "worker-1");
	gs_analysis_free(&a);
}

static void test_subinterpreters_own_gils(void **state)
{
	/* Threads 101 and 102 run in two interpreters with their own GIL (events name the GIL by
	 * the address of its `locked` field): both hold at once, which is no inconsistency. */
	struct gs_analysis a;
	struct gs_process *p;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	feed(&a, GS_REC_FORK, 100, 102, T(0), 100, 100);
	IN(101, 0);
	IN(102, 0);
	feed(&a, GS_REC_GIL_WRITE, 100, 101, T(10), 1, 0x1000);
	feed(&a, GS_REC_GIL_WRITE, 100, 102, T(10), 1, 0x2000);
	feed(&a, GS_REC_GIL_WAIT, 100, 100, T(20), 0, 0x1000); /* main waits for 101's GIL */
	feed(&a, GS_REC_GIL_WRITE, 100, 101, T(60), 0, 0x1000);
	feed(&a, GS_REC_GIL_WRITE, 100, 100, T(60), 1, 0x1000);
	feed(&a, GS_REC_GIL_WRITE, 100, 102, T(90), 0, 0x2000);
	feed(&a, GS_REC_GIL_WRITE, 100, 100, T(100), 0, 0x1000);
	gs_analysis_finish(&a, T(100));
	p = gs_analysis_process(&a, 100);
	assert_int_equal(a.anomalies, 0);
	assert_int_equal(p->ngils, 2);
	assert_int_equal(a.gils[p->main_gil].ref, 0x1000);
	assert_int_equal(gs_analysis_thread(&a, 101)->held_ns, 50 * US);
	assert_int_equal(gs_analysis_thread(&a, 102)->held_ns, 80 * US);
	assert_int_equal(gs_analysis_thread(&a, 100)->wait_ns, 40 * US);
	for (size_t i = 0; i < a.ngils; i++) /* each GIL: holds within the wall time */
		assert_true(a.gils[i].held_ns <= 100 * US);
	assert_int_equal(a.gils[p->main_gil].held_ns, 50 * US + 40 * US);
	assert_int_equal(a.gils[p->main_gil].contended_ns, 40 * US);
	gs_analysis_free(&a);
}

/* Many simultaneous waiters: blame against a reference computed from the timeline. Main holds
 * 0..1000 while NW threads start waiting; then each takes the GIL in turn for 100 us, 5 us after
 * the previous release (handed over: "free"). Every 5th wait starts in the middle of the hold
 * before its turn; every 11th waiter exits in the middle of a hold instead of taking the GIL. */
#define NW 300
struct ivl {
	uint32_t holder;
	uint64_t s, e; /* us */
};
struct ev {
	uint64_t t;
	int seq;
	uint16_t type;
	uint32_t tid;
	int32_t arg;
};

static int cmp_ev(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void test_many_waiters_blame(void **state)
{
	static struct ivl tl[2 * NW + 2];
	static struct ev evs[4 * NW + 8];
	static uint64_t ws[NW], we[NW];
	size_t ntl = 0, nev = 0;
	uint64_t t = 1000;
	struct gs_analysis a;
	(void)state;
	python_process(&a);
	tl[ntl++] = (struct ivl){ 100, 0, 1000 };
	evs[nev++] = (struct ev){ 0, (int)nev, GS_REC_GIL_WRITE, 100, 1 };
	evs[nev++] = (struct ev){ 1000, (int)nev, GS_REC_GIL_WRITE, 100, 0 };
	for (int k = 0; k < NW; k++) {
		uint32_t tid = 101 + (uint32_t)k;
		uint64_t prev_hold = t - 100; /* the hold before this one's turn (main's for the first) */
		feed(&a, GS_REC_FORK, 100, tid, T(0), 100, 100);
		ws[k] = (k % 5 == 0 && k > 0) ? prev_hold + 37 : 10 + 3 * (uint64_t)k;
		evs[nev++] = (struct ev){ ws[k], (int)nev, GS_REC_GIL_WAIT, tid, 0 };
		if (k % 11 == 3 && k > 0) {
			/* gives up in the middle of the hold before its turn (killed) */
			we[k] = prev_hold + 61 > ws[k] ? prev_hold + 61 : ws[k] + 1;
			evs[nev++] = (struct ev){ we[k], (int)nev, GS_REC_EXIT, tid, 0 };
			continue;
		}
		tl[ntl++] = (struct ivl){ 0, t, t + 5 };
		we[k] = t + 5;
		tl[ntl++] = (struct ivl){ tid, t + 5, t + 105 };
		evs[nev++] = (struct ev){ t + 5, (int)nev, GS_REC_GIL_WRITE, tid, 1 };
		evs[nev++] = (struct ev){ t + 105, (int)nev, GS_REC_GIL_WRITE, tid, 0 };
		t += 105;
	}
	qsort(evs, nev, sizeof(*evs), cmp_ev);
	for (size_t i = 0; i < nev; i++)
		feed(&a, evs[i].type, 100, evs[i].tid, T(evs[i].t), evs[i].arg, 0);
	gs_analysis_finish(&a, T(t + 10));
	for (int k = 0; k < NW; k++) {
		struct gs_thread *w = gs_analysis_thread(&a, 101 + (uint32_t)k);
		size_t n = 0;
		uint64_t total = 0;
		assert_non_null(w);
		/* the reference: overlaps in time order, one entry per holder at its first overlap */
		for (size_t i = 0; i < ntl; i++) {
			uint64_t s = tl[i].s > ws[k] ? tl[i].s : ws[k], e = tl[i].e < we[k] ? tl[i].e : we[k], sum = 0;
			int first = 1;
			if (e <= s)
				continue;
			for (size_t j = 0; j < i; j++) {
				uint64_t s2 = tl[j].s > ws[k] ? tl[j].s : ws[k], e2 = tl[j].e < we[k] ? tl[j].e : we[k];
				if (tl[j].holder == tl[i].holder && e2 > s2)
					first = 0;
			}
			if (!first)
				continue;
			for (size_t j = i; j < ntl; j++) {
				uint64_t s2 = tl[j].s > ws[k] ? tl[j].s : ws[k], e2 = tl[j].e < we[k] ? tl[j].e : we[k];
				if (tl[j].holder == tl[i].holder && e2 > s2)
					sum += e2 - s2;
			}
			assert_true(n < w->nblame);
			assert_int_equal(w->blame[n].holder, tl[i].holder);
			assert_int_equal(w->blame[n].ns, sum * US);
			total += sum;
			n++;
		}
		assert_int_equal(w->nblame, n);
		assert_int_equal(total, we[k] - ws[k]);
		assert_int_equal(w->wait_ns, (we[k] - ws[k]) * US);
	}
	/* main was waited for by every waiter that started in its hold; the last holder by nobody */
	assert_int_equal(a.anomalies, 0);
	{
		struct gs_gilstat *g = &a.gils[gs_analysis_process(&a, 100)->main_gil];
		assert_int_equal(g->nwaiters, 0);
		assert_int_equal(g->nsegs, 0);                          /* the log is empty once nobody waits */
		assert_int_equal(g->contended_ns, (t - 100 - 10) * US); /* from the first wait to the last turn */
	}
	gs_analysis_free(&a);
}

/* exec() of a Python process: holds and waits end at the exec, GIL events of the old image after
 * it are not counted, and the first image's Python stays the process's. */
static void test_exec_ends_holds(void **state)
{
	static const char name[] = "python3.11";
	static const char ver2[] = "python.version\0"
				   "3.12.1";
	static const char err2[] = "python.error\0"
				   "not a CPython";
	struct gs_analysis a;
	struct gs_rec r = { .type = GS_REC_COMM, .pid = 100, .tid = 100, .time = T(50), .arg = 1 };
	struct gs_process *p;
	struct gs_thread *m, *w;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	IN(101, 0);
	ACQ(100, 0);
	WAIT(101, 10);
	feed(&a, GS_REC_DROPREQ, 100, 101, T(20), 1, 0);
	gs_analysis_feed(&a, &r, name, sizeof(name)); /* exec at 50: 101 is killed by it */
	ACQ(101, 60);                                 /* late GIL events of the old image: ignored */
	REL(101, 70);
	p = gs_analysis_process(&a, 100);
	assert_int_equal(p->nimages, 2);
	assert_int_equal(p->is_python, 0);
	assert_string_equal(p->python_version, "3.11.7");
	assert_true(p->images[0].is_python);
	assert_false(p->images[1].is_python);
	assert_int_equal(p->images[1].start_ns, T(50));
	r.type = GS_REC_META;
	r.arg = GS_META_TEXT;
	r.time = T(80);
	gs_analysis_feed(&a, &r, err2, sizeof(err2)); /* the new image is not CPython */
	assert_string_equal(p->python_version, "3.11.7");
	assert_string_equal(p->images[1].python_error, "not a CPython");
	assert_int_equal(p->python_error[0], '\0');
	gs_analysis_finish(&a, T(300));
	m = gs_analysis_thread(&a, 100);
	w = gs_analysis_thread(&a, 101);
	assert_int_equal(m->held_ns, 50 * US);
	assert_int_equal(m->releases, 1);
	assert_int_equal(m->forced_drops, 0);
	assert_int_equal(w->wait_ns, 40 * US);
	assert_int_equal(w->held_ns, 0);
	assert_int_equal(w->nblame, 1);
	assert_int_equal(w->blame[0].holder, 100);
	assert_int_equal(w->blame[0].ns, 40 * US);
	assert_int_equal(a.gils[p->main_gil].held_ns, 50 * US);
	assert_int_equal(a.gils[p->main_gil].holder, 0);
	assert_int_equal(a.ntop_holds, 1);
	assert_false(a.top_holds[0].open);
	gs_analysis_free(&a);

	/* a later image that is CPython again: it is the one shown, and its GIL events count */
	python_process(&a);
	ACQ(100, 0);
	r.type = GS_REC_COMM;
	r.arg = 1; /* set by exec */
	r.time = T(50);
	gs_analysis_feed(&a, &r, name, sizeof(name));
	r.type = GS_REC_META;
	r.arg = GS_META_TEXT;
	r.time = T(60);
	gs_analysis_feed(&a, &r, ver2, sizeof(ver2));
	ACQ(100, 70);
	REL(100, 90);
	/* a child forked by it that execs without running Python (subprocess): not a Python process */
	feed(&a, GS_REC_FORK, 200, 200, T(95), 100, 100);
	r.type = GS_REC_COMM;
	r.arg = 1;
	r.pid = r.tid = 200;
	r.time = T(96);
	gs_analysis_feed(&a, &r, name, sizeof(name));
	gs_analysis_finish(&a, T(100));
	p = gs_analysis_process(&a, 100);
	assert_int_equal(p->is_python, 1);
	assert_string_equal(p->python_version, "3.12.1");
	assert_string_equal(p->images[0].python_version, "3.11.7");
	assert_int_equal(gs_analysis_thread(&a, 100)->held_ns, 70 * US);
	p = gs_analysis_process(&a, 200);
	assert_non_null(p);
	assert_int_equal(p->is_python, 0);
	assert_int_equal(p->python_version[0], '\0');
	gs_analysis_free(&a);
}

/* An exec's argv that the recorder learned late (META's arg64: the moment it was true) belongs to
 * the image that ran then, not to the one the process runs when the record comes: env's argv,
 * learned after env exec'd python, stays env's; one from before a process started (its pid's
 * earlier owner) belongs to no image of it. */
static void test_argv_as_of_an_earlier_exec(void **state)
{
	static const char env[] = "env";
	static const char env_argv[] = "argv\0"
				       "12:/usr/bin/env7:python3";
	static const char py_argv[] = "argv\0"
				      "7:python3";
	struct gs_analysis a;
	struct gs_rec r = { .type = GS_REC_COMM, .pid = 300, .tid = 300, .arg = 1 };
	struct gs_process *p;
	(void)state;
	gs_analysis_init(&a, START);
	feed(&a, GS_REC_FORK, 300, 300, T(5), 100, 100);
	r.time = T(10); /* exec of env */
	gs_analysis_feed(&a, &r, env, sizeof(env));
	r.time = T(20); /* env execs python */
	gs_analysis_feed(&a, &r, env, sizeof(env));
	r.type = GS_REC_META;
	r.arg = GS_META_TEXT;
	r.time = T(30);
	r.arg64 = T(12); /* env's exec stop, told late */
	gs_analysis_feed(&a, &r, env_argv, sizeof(env_argv));
	r.time = T(31);
	r.arg64 = 0; /* python's, told at once */
	gs_analysis_feed(&a, &r, py_argv, sizeof(py_argv));
	r.time = T(32);
	r.arg64 = T(1); /* before the process began */
	gs_analysis_feed(&a, &r, py_argv, sizeof(py_argv));
	p = gs_analysis_process(&a, 300);
	assert_int_equal(p->nimages, 3);
	assert_null(p->images[0].argv);
	assert_string_equal(p->images[1].argv, "12:/usr/bin/env7:python3");
	assert_string_equal(p->images[2].argv, "7:python3");
	gs_analysis_free(&a);
}

/* Three threads taking turns for 30,000 steps, two always waiting: the blame log never empties,
 * so it must drop what no waiter needs (it stays small), and each thread's blame is exact. */
static void test_blame_log_stays_short(void **state)
{
	enum {
		STEPS = 30000
	};
	struct gs_analysis a;
	struct gs_gilstat *g;
	(void)state;
	python_process(&a);
	feed(&a, GS_REC_FORK, 100, 101, T(0), 100, 100);
	feed(&a, GS_REC_FORK, 100, 102, T(0), 100, 100);
	WAIT(101, 0);
	WAIT(102, 0);
	ACQ(100, 0);
	for (int s = 0; s < STEPS; s++) {
		uint32_t h = 100 + (uint32_t)(s % 3), next = 100 + (uint32_t)((s + 1) % 3);
		REL(h, 10 * (s + 1));
		WAIT(h, 10 * (s + 1));
		ACQ(next, 10 * (s + 1));
	}
	gs_analysis_finish(&a, T(10 * STEPS));
	g = &a.gils[gs_analysis_process(&a, 100)->main_gil];
	assert_true(g->cap_segs <= 256);
	for (uint32_t tid = 100; tid <= 102; tid++) {
		struct gs_thread *t = gs_analysis_thread(&a, tid);
		uint64_t others = 0;
		assert_int_equal(t->nblame, 2);
		for (size_t k = 0; k < t->nblame; k++) {
			assert_int_not_equal(t->blame[k].holder, tid);
			assert_int_not_equal(t->blame[k].holder, 0);
			assert_int_equal(t->blame[k].ns, 10 * US * (STEPS / 3));
			others += t->blame[k].ns;
		}
		assert_int_equal(others, t->wait_ns);
	}
	gs_analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_threads_ping_pong),
		cmocka_unit_test(test_unmatched_events),
		cmocka_unit_test(test_out_of_order_and_open_hold),
		cmocka_unit_test(test_lost_and_exit_while_waiting),
		cmocka_unit_test(test_attach_wait_in_progress),
		cmocka_unit_test(test_not_python_and_states),
		cmocka_unit_test(test_samples_by_state),
		cmocka_unit_test(test_longest_holds_carry_their_stack),
		cmocka_unit_test(test_holder_stacks_per_waiter),
		cmocka_unit_test(test_wait_sites),
		cmocka_unit_test(test_tid_reuse),
		cmocka_unit_test(test_name_after_exit),
		cmocka_unit_test(test_subinterpreters_own_gils),
		cmocka_unit_test(test_many_waiters_blame),
		cmocka_unit_test(test_exec_ends_holds),
		cmocka_unit_test(test_argv_as_of_an_earlier_exec),
		cmocka_unit_test(test_blame_log_stays_short),
	};
	return cmocka_run_group_tests_name("analysis", tests, NULL, NULL);
}
