/* test_argv.c - the recording's argv encoding (META argv: LEN:ARG for each argument) as
 * analysis/meta.h reads it: blanks, colons and digits inside arguments, empty arguments, and
 * malformed input that stops the reading instead of overrunning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "analysis/meta.h"

static void reads_every_argument(void **state)
{
	const char *cur = "2:sh2:-c13:echo 1:2; x y0:3:end", *a;
	const char *want[] = { "sh", "-c", "echo 1:2; x y", "", "end" };
	size_t len, n = 0;
	(void)state;
	while ((a = gs_argv_next(&cur, &len)) != NULL) {
		assert_true(n < 5);
		assert_int_equal(len, strlen(want[n]));
		assert_memory_equal(a, want[n], len);
		n++;
	}
	assert_int_equal(n, 5);
}

static void malformed_stops(void **state)
{
	const char *bad[] = { "5:abc", "x:abc", "3abc", "99999999999999999999:a", "" };
	size_t len;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *cur = bad[i];
		assert_null(gs_argv_next(&cur, &len));
	}
	{
		const char *cur = NULL;
		assert_null(gs_argv_next(&cur, &len));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(reads_every_argument), cmocka_unit_test(malformed_stops) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
