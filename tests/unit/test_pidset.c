/* test_pidset.c - the process id set: members, growth, 0 never a member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "record/pidset.h"

static void members_and_growth(void **state)
{
	struct gs_pidset *s = gs_pidset_new();
	(void)state;
	for (uint32_t p = 1; p <= 5000; p += 3)
		gs_pidset_add(s, p * 7919u);
	for (uint32_t p = 1; p <= 5000; p++)
		assert_int_equal(gs_pidset_has(s, p * 7919u), (p - 1) % 3 == 0);
	gs_pidset_add(s, 7919u); /* again: once */
	assert_int_equal(gs_pidset_count(s), 1667);
	gs_pidset_add(s, 0);
	assert_false(gs_pidset_has(s, 0));
	gs_pidset_free(s);
	gs_pidset_free(NULL);
	assert_false(gs_pidset_has(NULL, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(members_and_growth) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
