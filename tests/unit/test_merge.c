/* Unit tests: the recorder's time-ordered merge (record/merge.c) and frame/stack numbering
 * (record/intern.c), pure modules fed by hand. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "record/intern.h"
#include "record/merge.h"

struct out {
	struct gs_rec r[256];
	char payload[256][32];
	size_t plen[256];
	size_t n;
};

static void collect(const struct gs_rec *r, const void *payload, size_t plen, void *arg)
{
	struct out *o = arg;
	assert_true(o->n < 256);
	o->r[o->n] = *r;
	o->plen[o->n] = plen;
	if (plen) {
		assert_true(plen <= 32);
		memcpy(o->payload[o->n], payload, plen);
	}
	o->n++;
}

static void add(struct gs_merge *m, int q, uint64_t t, uint32_t tag)
{
	struct gs_rec r = { .type = GS_REC_SWITCH_IN, .tid = tag, .time = t };
	gs_merge_add(m, q, &r, NULL, 0);
}

/* Two CPUs' rings and the metadata stream, each in order: one time-ordered output. */
static void test_merges_queues_in_time_order(void **state)
{
	struct gs_merge *m = gs_merge_new(3);
	struct out o = { .n = 0 };
	static const uint64_t want[] = { 5, 10, 15, 20, 25, 30, 35 };
	(void)state;
	add(m, 0, 10, 1);
	add(m, 0, 20, 2);
	add(m, 0, 30, 3);
	add(m, 1, 5, 4);
	add(m, 1, 25, 5);
	add(m, 2, 15, 6);
	add(m, 2, 35, 7);
	assert_int_equal(gs_merge_pending(m), 7);
	assert_int_equal(gs_merge_flush(m, 0, 1, collect, &o), 7);
	assert_int_equal(o.n, 7);
	for (size_t i = 0; i < o.n; i++)
		assert_int_equal(o.r[i].time, want[i]);
	assert_int_equal(gs_merge_pending(m), 0);
	gs_merge_free(m);
}

/* The watermark: only what is older goes out; the rest waits for the next flush. */
static void test_watermark_holds_back_newer_records(void **state)
{
	struct gs_merge *m = gs_merge_new(2);
	struct out o = { .n = 0 };
	(void)state;
	add(m, 0, 10, 1);
	add(m, 1, 20, 2);
	add(m, 0, 30, 3);
	assert_int_equal(gs_merge_flush(m, 20, 0, collect, &o), 1); /* time < 20 only */
	assert_int_equal(o.r[0].time, 10);
	add(m, 1, 25, 4);
	assert_int_equal(gs_merge_flush(m, 31, 0, collect, &o), 3);
	assert_int_equal(o.r[1].time, 20);
	assert_int_equal(o.r[2].time, 25);
	assert_int_equal(o.r[3].time, 30);
	assert_int_equal(gs_merge_flush(m, 100, 0, collect, &o), 0);
	gs_merge_free(m);
}

/* A ring the kernel wrote out of order (a rare reordering): sorted before merging. Equal times
 * keep the order added, across queues too. */
static void test_out_of_order_queue_and_ties(void **state)
{
	struct gs_merge *m = gs_merge_new(2);
	struct out o = { .n = 0 };
	static const uint32_t want_tags[] = { 1, 2, 6, 3, 4, 5 };
	(void)state;
	add(m, 0, 10, 1);
	add(m, 0, 40, 3);
	add(m, 0, 20, 2); /* older than the 40 before it */
	add(m, 1, 40, 4);
	add(m, 1, 50, 5);
	add(m, 0, 20, 6); /* a tie with tag 2, added later */
	assert_int_equal(gs_merge_flush(m, 0, 1, collect, &o), 6);
	for (size_t i = 0; i < o.n; i++)
		assert_int_equal(o.r[i].tid, want_tags[i]);
	gs_merge_free(m);
}

/* Payloads are copied in and handed over whole; an out-of-range queue is the last one. */
static void test_payloads_and_queue_bounds(void **state)
{
	struct gs_merge *m = gs_merge_new(2);
	struct out o = { .n = 0 };
	struct gs_rec r = { .type = GS_REC_COMM, .tid = 9, .time = 7 };
	char name[16] = "worker-1";
	(void)state;
	gs_merge_add(m, 5, &r, name, strlen(name) + 1);
	memset(name, 'X', sizeof(name)); /* the merge kept its own copy */
	r.time = 3;
	gs_merge_add(m, -1, &r, NULL, 0);
	assert_int_equal(gs_merge_flush(m, 0, 1, collect, &o), 2);
	assert_int_equal(o.r[0].time, 3);
	assert_int_equal(o.plen[0], 0);
	assert_int_equal(o.plen[1], 9);
	assert_string_equal(o.payload[1], "worker-1");
	gs_merge_free(m);
	gs_merge_free(NULL);
}

/* Many flushes over a long stream: storage is reused, nothing lost or repeated. */
static void test_long_stream(void **state)
{
	struct gs_merge *m = gs_merge_new(3);
	uint64_t last = 0, seen = 0;
	(void)state;
	for (uint64_t t = 1; t <= 100000; t++) {
		struct out o = { .n = 0 };
		add(m, (int)(t % 3), t, (uint32_t)t);
		if (t % 100 == 0) {
			gs_merge_flush(m, t - 50, 0, collect, &o);
			for (size_t i = 0; i < o.n; i++) {
				assert_true(o.r[i].time > last);
				last = o.r[i].time;
			}
			seen += o.n;
		}
	}
	{
		struct out o = { .n = 0 };
		assert_true(gs_merge_pending(m) <= 256);
		gs_merge_flush(m, 0, 1, collect, &o);
		seen += o.n;
	}
	assert_int_equal(seen, 100000);
	gs_merge_free(m);
}

/* Runs of one queue between the others' records, many ties across queues, flushes at watermarks
 * inside runs: the output is the records sorted by (time, order added), as a plain sort gives. */
static void test_runs_and_ties_match_a_sort(void **state)
{
	struct gs_merge *m = gs_merge_new(4);
	uint64_t want[200];
	uint32_t rng = 12345, n = 0, tag = 0;
	struct out o = { .n = 0 };
	(void)state;
	for (int round = 0; round < 4; round++) {
		uint64_t t[4] = { 0, 0, 0, 0 };
		for (int k = 0; k < 50; k++) {
			int q;
			rng = rng * 1103515245u + 12345u;
			q = (rng >> 16) % 8 < 5 ? 0
						: (int)((rng >> 20) % 4); /* queue 0 busy, the others now and then */
			t[q] += (rng >> 24) % 3;                          /* steps of 0: ties, within and across */
			add(m, q, 1000 * (uint64_t)round + t[q], tag);
			want[n++] = ((1000 * (uint64_t)round + t[q]) << 16) | tag++;
		}
		gs_merge_flush(m, 1000 * (uint64_t)round + 20, 0, collect, &o); /* a watermark inside the runs */
	}
	gs_merge_flush(m, 0, 1, collect, &o);
	for (uint32_t i = 1; i < n; i++) /* insertion sort by (time, tag): tags grow in order added */
		for (uint32_t j = i; j > 0 && want[j - 1] > want[j]; j--) {
			uint64_t x = want[j];
			want[j] = want[j - 1];
			want[j - 1] = x;
		}
	assert_int_equal(o.n, n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(o.r[i].time, want[i] >> 16);
		assert_int_equal(o.r[i].tid, want[i] & 0xffff);
	}
	gs_merge_free(m);
}

/* Records written in place (gs_merge_next) merge as added ones do: zeroed but for their time,
 * ties in the order queued, an older one after a newer one sorted. */
static void test_next_in_place(void **state)
{
	struct gs_merge *m = gs_merge_new(2);
	struct out o = { .n = 0 };
	struct gs_rec *r;
	(void)state;
	add(m, 0, 10, 1);
	r = gs_merge_next(m, 1, 10);
	assert_int_equal(r->time, 10);
	assert_int_equal(r->pid, 0);
	assert_int_equal(r->arg64, 0);
	r->tid = 2;
	r->type = GS_REC_GIL_WRITE;
	r->arg64 = 0x4000;
	gs_merge_next(m, 1, 5)->tid = 3; /* older than the one before: the queue is sorted */
	assert_int_equal(gs_merge_flush(m, 0, 1, collect, &o), 3);
	assert_int_equal(o.r[0].tid, 3);
	assert_int_equal(o.r[1].tid, 1);
	assert_int_equal(o.r[2].tid, 2);
	assert_int_equal(o.r[2].type, GS_REC_GIL_WRITE);
	assert_int_equal(o.r[2].arg64, 0x4000);
	assert_int_equal(o.plen[2], 0);
	gs_merge_free(m);
}

/* Frames: ids from 1 in order of first sight, the same id for the same keys. */
static void test_intern_frames(void **state)
{
	struct gs_intern *t = gs_intern_new();
	int fresh;
	(void)state;
	assert_int_equal(gs_intern_frame(t, 0x1000, 12, &fresh), 1);
	assert_true(fresh);
	assert_int_equal(gs_intern_frame(t, 0x1000, 13, &fresh), 2);
	assert_true(fresh);
	assert_int_equal(gs_intern_frame(t, 0x1000, 12, &fresh), 1);
	assert_false(fresh);
	for (uint64_t i = 0; i < 5000; i++) /* through several growths */
		assert_int_equal(gs_intern_frame(t, 0x2000 + i * 64, ~0ull, &fresh), 3 + i);
	for (uint64_t i = 0; i < 5000; i++) {
		assert_int_equal(gs_intern_frame(t, 0x2000 + i * 64, ~0ull, &fresh), 3 + i);
		assert_false(fresh);
	}
	assert_int_equal(gs_intern_frames(t), 5002);
	gs_intern_free(t);
	gs_intern_free(NULL);
}

/* Stacks: equal frame lists share an id; a prefix or a reordering is another stack. */
static void test_intern_stacks(void **state)
{
	struct gs_intern *t = gs_intern_new();
	const uint32_t a[] = { 1, 2, 3 }, b[] = { 1, 2 }, c[] = { 3, 2, 1 };
	uint32_t copy[3] = { 1, 2, 3 };
	int fresh;
	(void)state;
	assert_int_equal(gs_intern_stack(t, a, 3, &fresh), 1);
	assert_true(fresh);
	assert_int_equal(gs_intern_stack(t, b, 2, &fresh), 2);
	assert_int_equal(gs_intern_stack(t, c, 3, &fresh), 3);
	assert_int_equal(gs_intern_stack(t, copy, 3, &fresh), 1);
	assert_false(fresh);
	copy[0] = 99; /* the table kept its own copy */
	assert_int_equal(gs_intern_stack(t, a, 3, &fresh), 1);
	assert_false(fresh);
	assert_int_equal(gs_intern_stacks(t), 3);
	assert_int_equal(gs_intern_frames(t), 0);
	gs_intern_free(t);
}

/* A process's frames (its key in key1's top 16 bits) forgotten with the stacks using them: the
 * tables hold what is left, the others keep their ids, and no id is given twice. 2000 processes
 * of 3 frames and 2 stacks each, each forgotten as the next comes: the tables stay small. */
static void test_intern_forget(void **state)
{
	struct gs_intern *t = gs_intern_new();
	uint32_t keep, ids[3], last = 0, st;
	int fresh;
	(void)state;
	keep = gs_intern_frame(t, 0x1000, 12, &fresh); /* key 0: a process that stays */
	st = gs_intern_stack(t, &keep, 1, &fresh);
	for (uint64_t p = 1; p <= 2000; p++) {
		uint64_t key = (p & 0xffff) << 48;
		for (int k = 0; k < 3; k++) {
			ids[k] = gs_intern_frame(t, key ^ (0x2000 + (uint64_t)k * 64), 7, &fresh);
			assert_true(fresh);
			assert_true(ids[k] > last); /* never given before */
			last = ids[k];
		}
		assert_true(gs_intern_stack(t, ids, 3, &fresh) > st);
		assert_true(gs_intern_stack(t, ids + 1, 2, &fresh) > st);
		gs_intern_forget(t, key);
		assert_int_equal(gs_intern_frames(t), 1);
		assert_int_equal(gs_intern_stacks(t), 1);
	}
	assert_int_equal(gs_intern_frame(t, 0x1000, 12, &fresh), keep);
	assert_false(fresh);
	assert_int_equal(gs_intern_stack(t, &keep, 1, &fresh), st);
	assert_false(fresh);
	assert_true(gs_intern_frame(t, ((uint64_t)5 << 48) ^ 0x2000, 7, &fresh) > last); /* seen again: anew */
	assert_true(fresh);
	gs_intern_forget(NULL, 0);
	gs_intern_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merges_queues_in_time_order),
		cmocka_unit_test(test_watermark_holds_back_newer_records),
		cmocka_unit_test(test_out_of_order_queue_and_ties),
		cmocka_unit_test(test_payloads_and_queue_bounds),
		cmocka_unit_test(test_long_stream),
		cmocka_unit_test(test_runs_and_ties_match_a_sort),
		cmocka_unit_test(test_next_in_place),
		cmocka_unit_test(test_intern_frames),
		cmocka_unit_test(test_intern_stacks),
		cmocka_unit_test(test_intern_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
