/* Unit tests: the convoy (analysis/convoy.c) on hand-written event sequences: a thread that
 * holds the GIL briefly and then waits for spinners' forced drops is in a convoy, with its
 * figures; two spinners that force each other out are not; nothing is diagnosed where forced
 * drops are not told apart. Times in microseconds from the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/analysis.h"
#include "analysis/convoy.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)

static void feed(struct gs_analysis *a, uint16_t type, uint32_t tid, uint64_t time, int32_t arg)
{
	struct gs_rec r = { .type = type, .pid = 100, .tid = tid, .time = time, .arg = arg };
	gs_analysis_feed(a, &r, NULL, 0);
}

static void meta(struct gs_analysis *a, const char *k, const char *v)
{
	char kv[128];
	size_t kl = strlen(k), vl = strlen(v);
	struct gs_rec r = { .type = GS_REC_META, .pid = 100, .time = START };
	memcpy(kv, k, kl + 1);
	memcpy(kv + kl + 1, v, vl + 1);
	gs_analysis_feed(a, &r, kv, kl + vl + 2);
}

static void process(struct gs_analysis *a, const char *told)
{
	gs_analysis_init(a, START);
	meta(a, "python.version", "3.11.7");
	meta(a, "python.forced_drops_told_apart", told);
	meta(a, "python.switch_interval_us", "5000");
	for (uint32_t tid = 100; tid <= 103; tid++)
		feed(a, GS_REC_SWITCH_IN, tid, T(0), 0);
}

/* 40 rounds: pinger 103 holds 20 us and lets go by itself, a spinner (101 and 102 in turn) takes
 * the GIL, the pinger waits, asks for it after 5 ms and gets it when the spinner is forced out. */
static void convoy_rounds(struct gs_analysis *a)
{
	for (uint64_t k = 0, t = 0; k < 40; k++, t += 5040) {
		uint32_t spinner = k % 2 ? 102 : 101;
		if (k == 0)
			feed(a, GS_REC_GIL_WRITE, 103, T(t), 1);
		feed(a, GS_REC_GIL_WRITE, 103, T(t + 20), 0);
		feed(a, GS_REC_GIL_WRITE, spinner, T(t + 20), 1);
		feed(a, GS_REC_GIL_WAIT, 103, T(t + 30), 0);
		feed(a, GS_REC_DROPREQ, 103, T(t + 5030), 1);
		feed(a, GS_REC_GIL_WRITE, spinner, T(t + 5040), 0);
		feed(a, GS_REC_GIL_WRITE, 103, T(t + 5040), 1);
	}
	gs_analysis_finish(a, T(40 * 5040 + 100));
}

static void test_pinger_is_in_a_convoy(void **state)
{
	struct gs_analysis a;
	struct gs_convoy_verdict v;
	(void)state;
	process(&a, "1");
	convoy_rounds(&a);
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 103), &v), 1);
	assert_int_equal(v.waits, 40);
	assert_int_equal(v.forced_waits, 40);
	assert_int_equal(v.forced_wait_ns, 40 * 5010 * 1000ull);
	assert_int_equal(v.interval_us, 5000);
	assert_true(v.interval_read);
	assert_int_equal(v.nforcers, 2);
	assert_true((v.forcers[0] == 101 && v.forcers[1] == 102) || (v.forcers[0] == 102 && v.forcers[1] == 101));
	assert_int_equal(v.forcer_waits[0], 20);
	assert_true(v.median_hold_ns > 18000 && v.median_hold_ns < 22000);
	assert_true(v.median_forced_wait_ns > 4700000 && v.median_forced_wait_ns < 5300000);
	/* the spinners were forced out every time: not a convoy */
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 101), &v), 0);
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 102), &v), 0);
	gs_analysis_free(&a);
}

static void test_not_told_apart_no_convoy(void **state)
{
	struct gs_analysis a;
	struct gs_convoy_verdict v;
	(void)state;
	process(&a, "0");
	convoy_rounds(&a);
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 103), &v), 0);
	gs_analysis_free(&a);
}

static void test_two_spinners_are_not_a_convoy(void **state)
{
	struct gs_analysis a;
	struct gs_convoy_verdict v;
	(void)state;
	process(&a, "1");
	feed(&a, GS_REC_GIL_WRITE, 101, T(0), 1);
	for (uint64_t k = 0, t = 0; k < 40; k++, t += 5010) {
		uint32_t holder = k % 2 ? 102 : 101, waiter = k % 2 ? 101 : 102;
		feed(&a, GS_REC_GIL_WAIT, waiter, T(t + 1), 0);
		feed(&a, GS_REC_DROPREQ, waiter, T(t + 5001), 1);
		feed(&a, GS_REC_GIL_WRITE, holder, T(t + 5010), 0);
		feed(&a, GS_REC_GIL_WRITE, waiter, T(t + 5010), 1);
	}
	gs_analysis_finish(&a, T(41 * 5010));
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 101), &v), 0);
	assert_true(v.forced_waits >= 19); /* every wait ended by a forced drop, but its holds were long and forced */
	assert_int_equal(gs_convoy_find(&a, gs_analysis_thread(&a, 102), &v), 0);
	gs_analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pinger_is_in_a_convoy),
		cmocka_unit_test(test_not_told_apart_no_convoy),
		cmocka_unit_test(test_two_spinners_are_not_a_convoy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
