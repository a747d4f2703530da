/* Unit tests: the live figures (analysis/live.h) on hand-written event sequences: states in
 * progress counted up to the newest record, the wait histogram, exited threads retired after
 * GS_LIVE_SHOWN snapshots with their sums kept, ended processes forgotten as they do, and the names. Times in microseconds (T(us)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "analysis/live.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)
#define US 1000ull

static void feed(struct gs_live *l, uint16_t type, uint32_t tid, uint64_t time, int32_t arg, uint64_t arg64)
{
	struct gs_rec r = { .type = type, .pid = 100, .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_live_feed(l, &r, NULL, 0);
}

static struct gs_live *python_process(void)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	struct gs_live *l = gs_live_new();
	struct gs_rec r = { .type = GS_REC_META, .pid = 100, .time = START };
	gs_live_start(l, START);
	gs_live_feed(l, &r, kv, sizeof(kv));
	feed(l, GS_REC_SWITCH_IN, 100, T(0), 0, 0);
	return l;
}

static const struct gs_live_thread *row(const struct gs_live_snap *s, uint32_t tid, const char *group)
{
	for (size_t i = 0; i < s->nthreads; i++)
		if (s->threads[i].tid == tid && (!group || strcmp(s->threads[i].group, group) == 0))
			return &s->threads[i];
	return NULL;
}

static void test_in_progress_and_histogram(void **state)
{
	struct gs_live *l = python_process();
	struct gs_live_snap s;
	const struct gs_live_thread *m, *w;
	(void)state;
	feed(l, GS_REC_FORK, 101, T(0), 100, 100);
	feed(l, GS_REC_SWITCH_IN, 101, T(0), 0, 0);
	feed(l, GS_REC_GIL_WRITE, 100, T(0), 1, 0);  /* main holds from 0 */
	feed(l, GS_REC_GIL_WAIT, 101, T(10), 0, 0);  /* 101 waits 10..30 */
	feed(l, GS_REC_DROPREQ, 101, T(15), 1, 0);   /* asks */
	feed(l, GS_REC_GIL_WRITE, 100, T(30), 0, 0); /* forced drop */
	feed(l, GS_REC_GIL_WRITE, 101, T(30), 1, 0); /* 101 holds from 30 */
	feed(l, GS_REC_GIL_WAIT, 100, T(40), 0, 0);  /* main waits from 40 */
	feed(l, GS_REC_SWITCH_IN, 102, T(1000), 0, 0);
	gs_live_snapshot(l, &s, 1);
	m = row(&s, 100, NULL);
	w = row(&s, 101, NULL);
	assert_non_null(m);
	assert_non_null(w);
	assert_int_equal(m->held_ns, 30 * US);
	assert_int_equal(m->wait_ns, 960 * US); /* in progress, to the newest record (1000) */
	assert_int_equal(m->waiting_ns, 960 * US);
	assert_int_equal(m->forced_drops, 1);
	assert_int_equal(w->held_ns, 970 * US); /* in progress */
	assert_int_equal(w->wait_ns, 20 * US);
	assert_int_equal(w->nogil_ns, 10 * US);
	assert_int_equal(w->interval_wait_max_ns, 20 * US);
	assert_int_equal(s.ngils, 1);
	assert_int_equal(s.gils[0].held_ns, 1000 * US);
	assert_int_equal(s.gils[0].contended_ns, 20 * US + 960 * US);
	assert_int_equal(s.gils[0].waiters, 1);
	assert_int_equal(s.gils[0].waits, 1);
	assert_int_equal(s.gils[0].hist[1], 1); /* 20 us: in the 50 us bucket, (10, 50] */
	assert_int_equal(s.gils[0].wait_sum_ns, 20 * US);
	gs_live_snap_free(&s);
	gs_live_snapshot(l, &s, 0);
	assert_int_equal(row(&s, 101, NULL)->interval_wait_max_ns, 0); /* marked */
	gs_live_snap_free(&s);
	gs_live_free(l);
}

static void test_exited_threads_retired(void **state)
{
	struct gs_live *l = python_process();
	struct gs_live_snap s;
	const struct gs_live_thread *r;
	uint64_t t = 0;
	(void)state;
	feed(l, GS_REC_GIL_WRITE, 100, T(0), 1, 0);
	feed(l, GS_REC_GIL_WRITE, 100, T(1), 0, 0);
	for (int round = 0; round < 50; round++) {
		for (uint32_t k = 0; k < 20; k++) {
			uint32_t tid = 1000 + (uint32_t)round * 20 + k;
			char name[32];
			struct gs_rec pn = { .type = GS_REC_PYNAME, .pid = 100, .tid = tid, .time = T(t + 2) };
			int n = snprintf(name, sizeof(name), "Thread-%u (handle)", tid);
			feed(l, GS_REC_FORK, tid, T(t + 1), 100, 100);
			feed(l, GS_REC_SWITCH_IN, tid, T(t + 1), 0, 0);
			gs_live_feed(l, &pn, name, (size_t)n + 1);
			feed(l, GS_REC_GIL_WRITE, tid, T(t + 2), 1, 0);
			feed(l, GS_REC_GIL_WRITE, tid, T(t + 12), 0, 0);
			feed(l, GS_REC_EXIT, tid, T(t + 13), 0, 0);
			t += 20;
		}
		gs_live_snapshot(l, &s, 0);
		assert_true(s.nthreads <= 1 + 20 * GS_LIVE_SHOWN + 1 + 1);
		gs_live_snap_free(&s);
	}
	gs_live_snapshot(l, &s, 0);
	gs_live_snap_free(&s);
	gs_live_snapshot(l, &s, 0);
	r = row(&s, 0, "Thread-* (handle)");
	assert_non_null(r);
	assert_int_equal(r->held_ns, 1000 * 10 * US); /* every thread's 10 us, none lost */
	assert_int_equal(r->acquisitions, 1000);
	assert_int_equal(s.nthreads, 2); /* main and the retired group */
	gs_live_snap_free(&s);
	gs_live_free(l);
}

static void test_names(void **state)
{
	char out[128];
	static const char c1[] = "/usr/bin/python3.11\0-X\0dev\0/srv/app.py\0--token\0secret\0";
	static const char c2[] = "python3\0-m\0http.server\0";
	static const char c3[] = "/usr/sbin/nginx\0-g\0x\0";
	(void)state;
	gs_live_process_name(c1, sizeof(c1) - 1, out, sizeof(out));
	assert_string_equal(out, "python3.11 app.py");
	gs_live_process_name(c2, sizeof(c2) - 1, out, sizeof(out));
	assert_string_equal(out, "python3 -m http.server");
	gs_live_process_name(c3, sizeof(c3) - 1, out, sizeof(out));
	assert_string_equal(out, "nginx");
	gs_live_process_name("", 0, out, sizeof(out));
	assert_string_equal(out, "?");
	gs_live_group("Thread-12 (serve)", out, sizeof(out));
	assert_string_equal(out, "Thread-* (serve)");
	gs_live_group("Thread-x", out, sizeof(out));
	assert_string_equal(out, "Thread-x");
	gs_live_group("ThreadPoolExecutor-0_1", out, sizeof(out));
	assert_string_equal(out, "ThreadPoolExecutor-0_1");
}

static void define(struct gs_live *l, uint16_t type, uint64_t id, int32_t arg, const void *payload, size_t plen)
{
	struct gs_rec r = { .type = type, .time = T(0), .arg = arg, .arg64 = id };
	gs_live_feed(l, &r, payload, plen);
}

/* Wait sites (top): each wait's time to the first stack sampled during it, the innermost Python
 * frame named; the longest since the mark wins, the wait in progress counted so far; a wait no
 * sample fell in goes nowhere; the mark starts over. */
static void test_wait_sites(void **state)
{
	static const char f1[] = "work_a\0/srv/app/a.py", f2[] = "outer\0/srv/app/b.py", f3[] = "PyEval\0python";
	uint32_t s1[] = { 3, 1, 2 }, s2[] = { 2 }; /* innermost first: a native frame, then work_a */
	struct gs_live *l = gs_live_new();
	struct gs_live_snap s;
	const struct gs_live_thread *t;
	static const char kv[] = "python.version\0"
				 "3.11.7";
	struct gs_rec meta = { .type = GS_REC_META, .pid = 100, .time = START };
	(void)state;
	gs_live_wait_sites(l, 1);
	gs_live_start(l, START);
	gs_live_feed(l, &meta, kv, sizeof(kv));
	define(l, GS_REC_PYFRAME, 1, 12, f1, sizeof(f1));
	define(l, GS_REC_PYFRAME, 2, 40, f2, sizeof(f2));
	define(l, GS_REC_NATFRAME, 3, 0, f3, sizeof(f3));
	define(l, GS_REC_STACK, 1, 3, s1, sizeof(s1));
	define(l, GS_REC_STACK, 2, 1, s2, sizeof(s2));
	feed(l, GS_REC_SWITCH_IN, 100, T(0), 0, 0);
	feed(l, GS_REC_FORK, 101, T(0), 100, 100);
	feed(l, GS_REC_SWITCH_IN, 101, T(0), 0, 0);
	feed(l, GS_REC_GIL_WRITE, 100, T(0), 1, 0);
	feed(l, GS_REC_GIL_WAIT, 101, T(10), 0, 0); /* waits 10..110 in stack 1 */
	feed(l, GS_REC_SAMPLE, 101, T(20), 0, 1);
	feed(l, GS_REC_SAMPLE, 101, T(30), 0, 2); /* not the first sample of this wait */
	feed(l, GS_REC_GIL_WRITE, 100, T(110), 0, 0);
	feed(l, GS_REC_GIL_WRITE, 101, T(110), 1, 0);
	feed(l, GS_REC_GIL_WAIT, 100, T(120), 0, 0); /* main waits 120..500 unsampled */
	feed(l, GS_REC_GIL_WRITE, 101, T(500), 0, 0);
	feed(l, GS_REC_GIL_WRITE, 100, T(500), 1, 0);
	feed(l, GS_REC_GIL_WAIT, 101, T(510), 0, 0); /* waits from 510 in stack 2, in progress */
	feed(l, GS_REC_SAMPLE, 101, T(520), 0, 2);
	feed(l, GS_REC_SWITCH_IN, 102, T(580), 0, 0);
	gs_live_snapshot(l, &s, 1);
	t = row(&s, 101, NULL);
	assert_string_equal(t->wait_site, "work_a a.py:12"); /* 100 us against 70 so far */
	assert_int_equal(t->wait_site_ns, 100 * US);
	assert_string_equal(row(&s, 100, NULL)->wait_site, "");
	gs_live_snap_free(&s);
	feed(l, GS_REC_SWITCH_IN, 102, T(1000), 0, 0);
	gs_live_snapshot(l, &s, 1);
	t = row(&s, 101, NULL);
	assert_string_equal(t->wait_site, "outer b.py:40"); /* the mark forgot stack 1; 490 us so far */
	assert_int_equal(t->wait_site_ns, 490 * US);
	gs_live_snap_free(&s);
	gs_live_free(l);
}

/* No snapshot for 200,000 waits, each in a stack of its own (top paused): the wait sites are
 * hashed and capped (GS_LIVE_SITES), so feeding stays linear (a linear search per wait took
 * 9 s of CPU), and the longest wait's site is still named at the next snapshot. */
static void test_wait_sites_without_snapshots(void **state)
{
	static const char f1[] = "slow\0/srv/app/a.py";
	uint32_t s1[] = { 1 };
	struct gs_live *l = gs_live_new();
	struct gs_live_snap s;
	static const char kv[] = "python.version\0"
				 "3.11.7";
	struct gs_rec meta = { .type = GS_REC_META, .pid = 100, .time = START };
	uint64_t t = 10;
	clock_t c0;
	(void)state;
	gs_live_wait_sites(l, 1);
	gs_live_start(l, START);
	gs_live_feed(l, &meta, kv, sizeof(kv));
	define(l, GS_REC_PYFRAME, 1, 7, f1, sizeof(f1));
	define(l, GS_REC_STACK, 1, 1, s1, sizeof(s1));
	feed(l, GS_REC_SWITCH_IN, 100, T(0), 0, 0);
	feed(l, GS_REC_FORK, 101, T(0), 100, 100);
	feed(l, GS_REC_SWITCH_IN, 101, T(0), 0, 0);
	feed(l, GS_REC_GIL_WRITE, 100, T(0), 1, 0);
	c0 = clock();
	for (uint64_t k = 1; k <= 200000; k++) {
		uint64_t d = k == 1 ? 5000 : 2; /* the first wait (stack 1) the longest */
		feed(l, GS_REC_GIL_WAIT, 101, T(t), 0, 0);
		feed(l, GS_REC_SAMPLE, 101, T(t + 1), 0, k);
		feed(l, GS_REC_GIL_WRITE, 100, T(t + d), 0, 0);
		feed(l, GS_REC_GIL_WRITE, 101, T(t + d), 1, 0);
		feed(l, GS_REC_GIL_WRITE, 101, T(t + d + 1), 0, 0);
		feed(l, GS_REC_GIL_WRITE, 100, T(t + d + 1), 1, 0);
		t += d + 2;
	}
	assert_true(clock() - c0 < 3 * CLOCKS_PER_SEC); /* hashed: 0.05 s of CPU; the linear search: 9 s */
	gs_live_snapshot(l, &s, 1);
	assert_string_equal(row(&s, 101, NULL)->wait_site, "slow a.py:7");
	assert_int_equal(row(&s, 101, NULL)->wait_site_ns, 5000 * US);
	gs_live_snap_free(&s);
	gs_live_free(l);
}

static void feedp(struct gs_live *l, uint16_t type, uint32_t pid, uint32_t tid, uint64_t time, int32_t arg,
		  uint64_t arg64, const char *payload, size_t plen)
{
	struct gs_rec r = { .type = type, .pid = pid, .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_live_feed(l, &r, payload, plen);
}

/* Process pid (main thread pid, a second one pid + 1) from at on: a CPython, a contended hold, the
 * end of both threads and of the process (its PROC_EXIT) by at + 9 us. */
static void short_process(struct gs_live *l, uint32_t pid, uint64_t at)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	feedp(l, GS_REC_FORK, pid, pid, at, 1, 1, NULL, 0);
	feedp(l, GS_REC_META, pid, 0, at, 0, 0, kv, sizeof(kv));
	feedp(l, GS_REC_COMM, pid, pid, at, 0, 0, "python3.11", 11);
	feedp(l, GS_REC_SWITCH_IN, pid, pid, at, 0, 0, NULL, 0);
	feedp(l, GS_REC_FORK, pid, pid + 1, at + 1 * US, (int32_t)pid, pid, NULL, 0);
	feedp(l, GS_REC_SWITCH_IN, pid, pid + 1, at + 1 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, pid, pid, at + 2 * US, 1, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WAIT, pid, pid + 1, at + 3 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, pid, pid, at + 5 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, pid, pid + 1, at + 5 * US, 1, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, pid, pid + 1, at + 6 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_EXIT, pid, pid + 1, at + 7 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_EXIT, pid, pid, at + 8 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_PROC_EXIT, pid, 0, at + 9 * US, 0, 0, NULL, 0);
}

/* The long-lived process 100 (threads 100, 101), started at round 5: a contended hold per round,
 * 101 holding the GIL from one round to the next (across the snapshots and the forgetting). */
static void long_process(struct gs_live *l, int round, uint64_t at)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	if (round == 5) {
		feedp(l, GS_REC_META, 100, 0, at, 0, 0, kv, sizeof(kv));
		feedp(l, GS_REC_SWITCH_IN, 100, 100, at, 0, 0, NULL, 0);
		feedp(l, GS_REC_FORK, 100, 101, at, 100, 100, NULL, 0);
		feedp(l, GS_REC_SWITCH_IN, 100, 101, at, 0, 0, NULL, 0);
	} else {
		feedp(l, GS_REC_GIL_WRITE, 100, 101, at, 0, 0, NULL, 0); /* the last round's hold ends */
	}
	feedp(l, GS_REC_GIL_WRITE, 100, 100, at + 1 * US, 1, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WAIT, 100, 101, at + 2 * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, 100, 100, at + (uint64_t)(3 + round % 7) * US, 0, 0, NULL, 0);
	feedp(l, GS_REC_GIL_WRITE, 100, 101, at + (uint64_t)(3 + round % 7) * US, 1, 0, NULL, 0);
}

static const struct gs_live_gil *gil_of(const struct gs_live_snap *s, uint32_t pid)
{
	for (size_t i = 0; i < s->ngils; i++)
		if (s->gils[i].pid == pid)
			return &s->gils[i];
	return NULL;
}

/* serve --all-python on a host where short Python processes come and go: 3000 of them, a
 * snapshot every 10 as serve's scrapes take them. Each ended process is listed by GS_LIVE_SHOWN
 * snapshots, then forgotten with its GIL: the processes, GILs and rows listed (the analysis's own
 * counts: a snapshot lists all it holds) stay bounded, and the long-lived process 100, whose GIL
 * moves down in the analysis's table as those before it go, has the figures a live analysis fed
 * its records alone gives. */
static void test_ended_processes_forgotten(void **state)
{
	struct gs_live *l = gs_live_new(), *ref = gs_live_new();
	struct gs_live_snap s, rs;
	const struct gs_live_gil *g, *rg;
	size_t max_procs = 0;
	(void)state;
	gs_live_start(l, START);
	gs_live_start(ref, START);
	for (int i = 0; i < 3000; i++) {
		uint64_t at = T((uint64_t)i * 100);
		short_process(l, 200000 + 2 * (uint32_t)i, at);
		if (i >= 5) {
			long_process(l, i, at + 50 * US);
			long_process(ref, i, at + 50 * US);
		}
		if (i % 10 != 9)
			continue;
		gs_live_snapshot(l, &s, 1);
		gs_live_snapshot(ref, &rs, 1);
		if (s.nprocs > max_procs)
			max_procs = s.nprocs;
		assert_true(s.nprocs <= 1 + 10 * (GS_LIVE_SHOWN + 1));
		assert_true(s.ngils <= 1 + 10 * (GS_LIVE_SHOWN + 1));
		assert_true(s.nthreads <= 2 + 2 * 10 * (GS_LIVE_SHOWN + 1));
		gs_live_snap_free(&s);
		gs_live_snap_free(&rs);
	}
	for (int k = 0; k < GS_LIVE_SHOWN + 1; k++) { /* no new process: the last ones go too */
		gs_live_snapshot(l, &s, 0);
		gs_live_snap_free(&s);
	}
	gs_live_snapshot(l, &s, 0);
	gs_live_snapshot(ref, &rs, 0);
	assert_true(max_procs > 10);
	assert_int_equal(s.nprocs, 1);
	assert_int_equal(s.procs[0].pid, 100);
	assert_int_equal(s.ngils, 1);
	assert_int_equal(s.nthreads, 2);
	g = gil_of(&s, 100);
	rg = gil_of(&rs, 100);
	assert_non_null(g);
	assert_non_null(rg);
	assert_int_equal(g->number, 1);
	assert_int_equal(g->held_ns, rg->held_ns);
	assert_int_equal(g->contended_ns, rg->contended_ns);
	assert_int_equal(g->acquisitions, rg->acquisitions);
	assert_int_equal(g->acquisitions, 2 * 2995);
	assert_int_equal(g->waits, 2995);
	assert_int_equal(g->wait_sum_ns, rg->wait_sum_ns);
	assert_memory_equal(g->hist, rg->hist, sizeof(g->hist));
	for (uint32_t tid = 100; tid <= 101; tid++) {
		const struct gs_live_thread *t = row(&s, tid, NULL), *rt = row(&rs, tid, NULL);
		assert_non_null(t);
		assert_non_null(rt);
		assert_int_equal(t->held_ns, rt->held_ns);
		assert_int_equal(t->wait_ns, rt->wait_ns);
		assert_int_equal(t->nogil_ns, rt->nogil_ns);
		assert_int_equal(t->acquisitions, rt->acquisitions);
		assert_int_equal(t->gil, 1);
	}
	gs_live_snap_free(&s);
	gs_live_snap_free(&rs);
	gs_live_free(l);
	gs_live_free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_progress_and_histogram),
		cmocka_unit_test(test_exited_threads_retired),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_wait_sites),
		cmocka_unit_test(test_wait_sites_without_snapshots),
		cmocka_unit_test(test_ended_processes_forgotten),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
