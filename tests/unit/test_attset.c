/* test_attset.c - the attached processes' set: entries, liveness, children found through /proc. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "record/attset.h"

static void entries_and_liveness(void **state)
{
	struct gs_attset s = { 0 };
	(void)state;
	for (pid_t p = 1; p <= 40; p++)
		gs_attset_add(&s, 1000000 + p, GS_ATT_REFUSED); /* growth; refused: never live, and gone */
	gs_attset_add(&s, 1, GS_ATT_REFUSED);                   /* refused, running: kept */
	gs_attset_add(&s, getpid(), GS_ATT_STATES);
	assert_non_null(gs_attset_find(&s, 1000007));
	assert_null(gs_attset_find(&s, 999));
	assert_int_equal(gs_attset_live(&s), 1);
	assert_true(gs_attset_find(&s, getpid())->pidfd >= 0);
	assert_false(gs_attset_exe_changed(gs_attset_find(&s, getpid())));
	gs_attset_add(&s, 1000100, GS_ATT_STATES)->ended = 1;  /* gone: forgotten by a prune */
	gs_attset_add(&s, 1000101, GS_ATT_GUARDED)->ended = 1; /* the guardian's, gone: the same */
	gs_attset_prune(&s);
	assert_int_equal(s.n, 2);
	assert_null(gs_attset_find(&s, 1000100));
	assert_null(gs_attset_find(&s, 1000101));
	assert_null(gs_attset_find(&s, 1000007));
	assert_non_null(gs_attset_find(&s, 1)); /* refused: kept while it runs, said once */
	gs_attset_clear(&s);
	assert_int_equal(s.n, 0);
}

static void children_of_a_process(void **state)
{
	pid_t kids[2], found[16];
	size_t n;
	int seen = 0;
	(void)state;
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			pause();
			_exit(0);
		}
	}
	n = gs_attset_children(getpid(), found, 16);
	for (size_t i = 0; i < n; i++)
		seen += found[i] == kids[0] || found[i] == kids[1];
	for (int i = 0; i < 2; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	if (access(path, F_OK) != 0 && n == 0)
		skip(); /* a kernel without CONFIG_PROC_CHILDREN */
	assert_int_equal(seen, 2);
	assert_int_equal(gs_attset_children(-5, found, 16), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(entries_and_liveness),
					    cmocka_unit_test(children_of_a_process) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
