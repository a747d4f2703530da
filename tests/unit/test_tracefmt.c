/* Unit tests: the trace JSON exporter's hand-written number formatters (trace.h) against
 * snprintf, on edge values (0, every power of ten and its neighbours, UINT64_MAX), the
 * rounding-free split of nanoseconds into microseconds and three decimals (x999/x000 borders,
 * whole seconds), the cache of the seconds' digits (same, next and earlier second in a row), and
 * a pseudo-random sweep. Each output is checked with a canary after its returned length. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <cmocka.h>

#include "output/trace.h"

static void check_u64(uint64_t v)
{
	char want[32], got[64];
	size_t n;
	snprintf(want, sizeof(want), "%" PRIu64, v);
	memset(got, 0xff, sizeof(got));
	n = gs_trace_fmt_u64(got, v);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(got, want, n);
	assert_true(n <= 32);
}

static void check_us(uint64_t ns)
{
	char want[40], got[64];
	size_t n;
	snprintf(want, sizeof(want), "%" PRIu64 ".%03" PRIu64, ns / 1000, ns % 1000);
	memset(got, 0xff, sizeof(got));
	n = gs_trace_fmt_us(got, ns);
	if (n != strlen(want) || memcmp(got, want, n) != 0)
		fail_msg("ns %" PRIu64 ": want %s, got %.*s", ns, want, (int)n, got);
	assert_true(n <= 32);
}

/* v, and v - 1 and v + 1 (no wrap-around) */
static void around(void (*check)(uint64_t), uint64_t v)
{
	check(v);
	if (v > 0)
		check(v - 1);
	if (v < UINT64_MAX)
		check(v + 1);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_u64(void **state)
{
	uint64_t p = 1, s = 88172645463325252ull;
	(void)state;
	check_u64(0);
	check_u64(UINT64_MAX);
	check_u64(UINT64_MAX / 2);
	check_u64((uint64_t)INT64_MAX + 1);
	check_u64(UINT32_MAX);
	for (int i = 0; i < 20; i++, p *= 10) {
		around(check_u64, p);
		check_u64(p * 5);
	}
	for (int i = 0; i < 100000; i++) {
		uint64_t v = next_rand(&s);
		check_u64(v);
		check_u64(v >> (v & 63));
	}
}

static void test_us(void **state)
{
	uint64_t p = 1, s = 2463534242ull;
	(void)state;
	check_us(0);
	check_us(999);
	check_us(1000);
	check_us(999999999);  /* under a second: no seconds' digits */
	check_us(1000000000); /* a whole second: six zeros of microseconds */
	check_us(1000000001);
	check_us(1000001000);
	check_us(UINT64_MAX);
	check_us(UINT64_MAX - 999);
	for (int i = 0; i < 20; i++, p *= 10)
		around(check_us, p);
	/* the cached seconds: the same second, the next, back to an earlier one, zero in between */
	check_us(4975651964123ull);
	check_us(4975651964999ull);
	check_us(4975999999999ull);
	check_us(4976000000000ull);
	check_us(4975000000001ull);
	check_us(12345);
	check_us(4975000000001ull);
	check_us(14975000000001ull);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = next_rand(&s);
		check_us(v);
		check_us(v >> (v & 63));
		check_us(4975000000000ull + (v % 100000000000ull)); /* monotonic-clock-like times */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_us),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
