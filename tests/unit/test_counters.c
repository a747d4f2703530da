/* Unit tests: record -e's counters split by GIL state (analysis/counters.h) on hand-written
 * event sequences, the ring decoder's counter samples, and the event list parser. Times are in
 * microseconds from the recording start (T(us)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/analysis.h"
#include "analysis/counters.h"
#include "output/report.h"
#include "record/counters.h"
#include "record/ring_decode.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)

static void feed(struct gs_analysis *a, uint16_t type, uint32_t pid, uint32_t tid, uint64_t time, int32_t arg,
		 uint64_t arg64)
{
	struct gs_rec r = { .type = type, .pid = pid, .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_analysis_feed(a, &r, NULL, 0);
}

static void meta_text(struct gs_analysis *a, uint32_t pid, const char *key, const char *value)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = pid, .time = START };
	char buf[256];
	size_t kl = strlen(key) + 1, vl = strlen(value) + 1;
	memcpy(buf, key, kl);
	memcpy(buf + kl, value, vl);
	gs_analysis_feed(a, &r, buf, kl + vl);
}

static void meta_u64(struct gs_analysis *a, const char *key, uint64_t v)
{
	struct gs_rec r = { .type = GS_REC_META, .arg = GS_META_U64, .time = START };
	char buf[256];
	size_t n = gs_meta_u64_payload(buf, sizeof(buf), key, v);
	gs_analysis_feed(a, &r, buf, n);
}

#define ACQ(tid, t) feed(&a, GS_REC_GIL_WRITE, 100, tid, T(t), 1, 0)
#define REL(tid, t) feed(&a, GS_REC_GIL_WRITE, 100, tid, T(t), 0, 0)
#define WAIT(tid, t) feed(&a, GS_REC_GIL_WAIT, 100, tid, T(t), 0, 0)
#define FAULT(tid, t) feed(&a, GS_REC_CTR_SAMPLE, 100, tid, T(t), 0, 1)
#define CYCLES(tid, t, n) feed(&a, GS_REC_CTR_SAMPLE, 100, tid, T(t), 1, n)

/* Counter 0: page-faults (every one); counter 1: cycles sampled every 1000. Process 100 starts
 * as something else and becomes CPython at 50 us (its exec). */
static void setup(struct gs_analysis *a)
{
	gs_analysis_init(a, START);
	meta_text(a, 0, "counter.0.name", "page-faults");
	meta_u64(a, "counter.0.period", 1);
	meta_text(a, 0, "counter.1.name", "cycles");
	meta_u64(a, "counter.1.period", 1000);
	meta_u64(a, "counter.1.hardware", 1);
	feed(a, GS_REC_SWITCH_IN, 100, 100, T(0), 0, 0);
	feed(a, GS_REC_FORK, 100, 101, T(1), 100, 100);
	feed(a, GS_REC_SWITCH_IN, 100, 101, T(1), 0, 0);
}

static void python_from(struct gs_analysis *a, uint64_t us)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = 100, .time = T(us) };
	static const char kv[] = "python.version\0"
				 "3.11.7";
	gs_analysis_feed(a, &r, kv, sizeof(kv));
}

static void test_split_by_state(void **state)
{
	struct gs_analysis a;
	struct gs_thread *m, *w;
	(void)state;
	setup(&a);
	FAULT(100, 10); /* not Python yet: other */
	FAULT(101, 20);
	python_from(&a, 50);
	FAULT(100, 60); /* Python, no GIL event yet: no_gil */
	WAIT(100, 70);
	ACQ(100, 70);
	FAULT(100, 80); /* held */
	FAULT(100, 81);
	CYCLES(100, 82, 1000);
	WAIT(101, 90);
	FAULT(101, 95); /* waiting */
	CYCLES(101, 96, 1000);
	REL(100, 100);
	ACQ(101, 100);
	FAULT(100, 110); /* no_gil again */
	FAULT(101, 120); /* held */
	REL(101, 130);
	FAULT(101, 140); /* no_gil */
	gs_analysis_finish(&a, T(200));

	m = gs_analysis_thread(&a, 100);
	w = gs_analysis_thread(&a, 101);
	assert_non_null(a.ctr);
	assert_int_equal(gs_ctr_count(m, 0, GS_CTR_OTHER), 1);
	assert_int_equal(gs_ctr_count(m, 0, GS_CTR_NOGIL), 2);
	assert_int_equal(gs_ctr_count(m, 0, GS_CTR_HELD), 2);
	assert_int_equal(gs_ctr_count(m, 0, GS_CTR_WAIT), 0);
	assert_int_equal(gs_ctr_count(m, 0, GS_CTR_NSTATES), 5);
	assert_int_equal(gs_ctr_count(m, 1, GS_CTR_HELD), 1000);
	assert_int_equal(gs_ctr_count(w, 0, GS_CTR_OTHER), 1);
	assert_int_equal(gs_ctr_count(w, 0, GS_CTR_WAIT), 1);
	assert_int_equal(gs_ctr_count(w, 0, GS_CTR_HELD), 1);
	assert_int_equal(gs_ctr_count(w, 0, GS_CTR_NOGIL), 1);
	assert_int_equal(gs_ctr_count(w, 1, GS_CTR_WAIT), 1000);
	assert_int_equal(gs_ctr_find(&a, "cycles", 0), 1);
	assert_int_equal(gs_ctr_find(&a, "cycles", 1), -1);
	assert_true(a.ctr->defs[1].hardware);
	assert_int_equal(a.ctr->defs[1].period, 1000);
	gs_analysis_free(&a);
}

static void test_stacks_weighted_by_period(void **state)
{
	struct gs_analysis a;
	uint64_t held = 0, all = 0, wait = 0;
	(void)state;
	setup(&a);
	meta_text(&a, 0, "counter.2.name", "page-faults");
	meta_u64(&a, "counter.2.period", 50);
	meta_u64(&a, "counter.2.stacks", 1);
	python_from(&a, 2);
	ACQ(100, 10);
	feed(&a, GS_REC_CTR_STACK, 100, 100, T(20), 2, 7); /* stack 7 while holding */
	feed(&a, GS_REC_CTR_STACK, 100, 100, T(21), 2, 7);
	feed(&a, GS_REC_CTR_STACK, 100, 9999, T(22), 2, 7); /* a task never seen */
	WAIT(101, 30);
	feed(&a, GS_REC_CTR_STACK, 100, 101, T(40), 2, 8); /* stack 8 while waiting */
	gs_analysis_finish(&a, T(100));
	for (size_t i = 0; i < a.cap_counts; i++) {
		const struct gs_stack_count *c = &a.counts[i];
		if (c->what == gs_ctr_what(2, GS_CTR_HELD) && c->stack == 7)
			held += c->amount;
		if (c->what == gs_ctr_what(2, GS_CTR_WAIT) && c->stack == 8)
			wait += c->amount;
		if (c->what == gs_ctr_what(2, -1))
			all += c->amount;
	}
	assert_int_equal(held, 100);
	assert_int_equal(wait, 50);
	assert_int_equal(all, 150 + 50); /* the unknown task's stack is counted (no state: other) */
	assert_int_equal(gs_ctr_find(&a, "page-faults", 1), 2);
	assert_int_equal(gs_ctr_find(&a, "page-faults", 0), 0);
	gs_analysis_free(&a);
}

static void test_unavailable_and_malformed_facts(void **state)
{
	struct gs_analysis a;
	(void)state;
	gs_analysis_init(&a, START);
	meta_text(&a, 0, "counter.0.name", "cycles");
	meta_text(&a, 0, "counter.0.unavailable", "event cycles cannot be counted: no PMU");
	meta_text(&a, 0, "counter.99.name", "x");       /* beyond the table */
	meta_text(&a, 0, "counter.x.name", "y");        /* not a number */
	feed(&a, GS_REC_CTR_SAMPLE, 1, 1, T(1), 40, 1); /* an unknown counter */
	feed(&a, GS_REC_CTR_SAMPLE, 1, 1, T(1), -1, 1);
	gs_analysis_finish(&a, T(2));
	assert_non_null(a.ctr);
	assert_int_equal(a.ctr->n, 1);
	assert_int_equal(gs_ctr_find(&a, "cycles", 0), -1); /* unavailable: not counting */
	assert_string_equal(a.ctr->defs[0].unavailable, "event cycles cannot be counted: no PMU");
	gs_analysis_free(&a);
}

static void test_no_counters_no_table(void **state)
{
	struct gs_analysis a;
	(void)state;
	gs_analysis_init(&a, START);
	feed(&a, GS_REC_SWITCH_IN, 1, 1, T(0), 0, 0);
	gs_analysis_finish(&a, T(2));
	assert_null(a.ctr);
	assert_null(gs_analysis_thread(&a, 1)->ctr);
	gs_analysis_free(&a);
}

/* report --json: per thread and process counts, and instructions per cycle held vs without the GIL */
static void test_json_counts_and_ipc(void **state)
{
	struct gs_analysis a;
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	(void)state;
	gs_analysis_init(&a, START);
	meta_text(&a, 0, "counter.0.name", "cycles");
	meta_u64(&a, "counter.0.period", 1000);
	meta_text(&a, 0, "counter.1.name", "instructions");
	meta_u64(&a, "counter.1.period", 1000);
	meta_text(&a, 0, "counter.2.name", "cache-misses");
	meta_text(&a, 0, "counter.2.unavailable", "event cache-misses cannot be counted: no PMU");
	python_from(&a, 0);
	feed(&a, GS_REC_SWITCH_IN, 100, 100, T(0), 0, 0);
	feed(&a, GS_REC_GIL_WRITE, 100, 100, T(10), 1, 0);
	feed(&a, GS_REC_CTR_SAMPLE, 100, 100, T(11), 0, 1000); /* held: 1000 cycles, 3000 instructions */
	feed(&a, GS_REC_CTR_SAMPLE, 100, 100, T(12), 1, 3000);
	feed(&a, GS_REC_GIL_WRITE, 100, 100, T(20), 0, 0);
	feed(&a, GS_REC_CTR_SAMPLE, 100, 100, T(21), 0, 2000); /* no GIL: 2000 cycles, 1000 instructions */
	feed(&a, GS_REC_CTR_SAMPLE, 100, 100, T(22), 1, 1000);
	gs_analysis_finish(&a, T(30));
	m = open_memstream(&buf, &len);
	gs_report_json(&a, m);
	fclose(m);
	assert_non_null(strstr(buf, "\"counters\": {\"cycles\": {\"total\": 3000, \"held\": 1000, \"wait\": 0, "
				    "\"no_gil\": 2000, \"other\": 0}, \"instructions\": {\"total\": 4000"));
	assert_non_null(strstr(buf, "\"ipc\": {\"held\": 3.0000, \"no_gil\": 0.5000, \"all\": 1.3333}"));
	assert_non_null(strstr(buf, "{\"name\": \"cache-misses\", \"recorded\": false, \"why_not\": \"event "
				    "cache-misses cannot be counted: no PMU\""));
	assert_null(strstr(buf, "\"cache-misses\": {")); /* not among the counts */
	free(buf);
	gs_analysis_free(&a);
}

static int kind_of(const void *ctx, uint64_t id)
{
	(void)ctx;
	return id == 7 ? GS_PK_COUNTER + 3 : 0;
}

static void test_ring_decode_counter_sample(void **state)
{
	uint8_t buf[64];
	struct perf_event_header *h = (void *)buf;
	struct gs_ringdec_layout l = { .kind_of = kind_of };
	struct gs_ringdec d;
	uint64_t id = 7, time = 123456789;
	uint32_t pid = 42, tid = 43, cpu[2] = { 1, 0 };
	(void)state;
	memset(buf, 0xff, sizeof(buf));
	h->type = PERF_RECORD_SAMPLE;
	h->misc = 0;
	h->size = 8 + 8 + 8 + 8 + 8;
	memcpy(buf + 8, &id, 8);
	memcpy(buf + 16, &pid, 4);
	memcpy(buf + 20, &tid, 4);
	memcpy(buf + 24, &time, 8);
	memcpy(buf + 32, cpu, 8);
	assert_int_equal(gs_ringdec_decode(h, &l, &d), GS_RINGDEC_EVENT);
	assert_int_equal(d.r.type, GS_REC_CTR_SAMPLE);
	assert_int_equal(d.r.arg, 3);
	assert_int_equal(d.r.arg64, 1);
	assert_int_equal(d.r.pid, 42);
	assert_int_equal(d.r.tid, 43);
	assert_int_equal(d.r.time, time);
	h->size = 8 + 8 + 16; /* cut before its CPU */
	assert_int_equal(gs_ringdec_decode(h, &l, &d), GS_RINGDEC_CORRUPT);
}

static void test_parse_event_lists(void **state)
{
	struct gs_counter_spec s[GS_COUNTERS_MAX];
	char why[256];
	int n;
	(void)state;
	n = gs_counters_parse("page-faults,cycles/5000", 0, s, 0, why, sizeof(why));
	assert_int_equal(n, 2);
	assert_string_equal(s[0].name, "page-faults");
	assert_int_equal(s[0].period, 0);
	assert_string_equal(s[1].name, "cycles");
	assert_int_equal(s[1].period, 5000);
	n = gs_counters_parse("page-faults/100", 1, s, n, why, sizeof(why));
	assert_int_equal(n, 3);
	assert_true(s[2].stacks);
	assert_int_equal(s[2].period, 100);
	static const char *const bad[] = { "", ",", "a,", "a/", "a/0", "a/x", "a/1099511627777", "/5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gs_counters_parse(bad[i], 0, s, 0, why, sizeof(why)), -22);
	assert_int_equal(gs_counters_parse("a,b", 0, s, GS_COUNTERS_MAX - 1, why, sizeof(why)), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_by_state),
		cmocka_unit_test(test_stacks_weighted_by_period),
		cmocka_unit_test(test_unavailable_and_malformed_facts),
		cmocka_unit_test(test_no_counters_no_table),
		cmocka_unit_test(test_json_counts_and_ipc),
		cmocka_unit_test(test_ring_decode_counter_sample),
		cmocka_unit_test(test_parse_event_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
