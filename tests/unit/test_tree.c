/* Unit tests: the text report's process tree on a hand-made analysis: which non-Python helpers
 * fold into one line per parent and which stay (output/tree.h). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/analysis.h"
#include "output/tree.h"

#define START 1000000000ull
#define MS(ms) (START + (uint64_t)(ms)*1000000ull)

static void feed(struct gs_analysis *a, uint16_t type, uint32_t pid, uint64_t time, int32_t arg, const void *payload,
		 size_t plen)
{
	struct gs_rec r = { .type = type, .pid = pid, .tid = pid, .time = time, .arg = arg, .arg64 = (uint64_t)arg };
	gs_analysis_feed(a, &r, payload, plen);
}

/* Process pid, forked by ppid at from (ms), named name, a CPython when python; it exits at to
 * (ms) unless to is 0. */
static void proc(struct gs_analysis *a, uint32_t pid, uint32_t ppid, const char *name, int python, uint64_t from,
		 uint64_t to)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	feed(a, GS_REC_FORK, pid, MS(from), (int32_t)ppid, NULL, 0);
	feed(a, GS_REC_COMM, pid, MS(from), 1, name, strlen(name) + 1);
	if (python)
		feed(a, GS_REC_META, pid, MS(from), 0, kv, sizeof(kv));
	if (to) {
		feed(a, GS_REC_EXIT, pid, MS(to), 0, NULL, 0);
		feed(a, GS_REC_PROC_EXIT, pid, MS(to), 0, NULL, 0);
	}
}

/* python 100 ran 3 short helpers (cat twice, sed; one a child of another), a shell that ran a
 * python, a 1.5 s sleep and a helper still running at the end; the inner python ran one helper. */
static char *tree(int all)
{
	struct gs_analysis a;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	gs_analysis_init(&a, START);
	a.all_processes = all;
	proc(&a, 100, 0, "python3", 1, 0, 0);
	proc(&a, 101, 100, "cat", 0, 1, 2);
	proc(&a, 102, 100, "sed", 0, 3, 5);
	proc(&a, 103, 102, "cat", 0, 3, 4);
	proc(&a, 110, 100, "sh", 0, 10, 40);
	proc(&a, 111, 110, "python3", 1, 11, 39);
	proc(&a, 112, 111, "uname", 0, 12, 13);
	proc(&a, 120, 100, "sleep", 0, 20, 1520);
	proc(&a, 130, 100, "tail", 0, 30, 0);
	gs_analysis_finish(&a, MS(3000));
	gs_tree_text(&a, m);
	fclose(m);
	gs_analysis_free(&a);
	return buf;
}

static size_t lines_with(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

static void test_short_helpers_fold_per_parent(void **state)
{
	char *t = tree(0);
	(void)state;
	/* the three under 100 in one line, counted by program then name; the others stay */
	assert_non_null(strstr(t, "\n    + 3 short-lived processes, not Python: cat x2, sed\n"));
	assert_int_equal(lines_with(t, "short-lived"), 1);
	assert_null(strstr(t, " 101 "));
	assert_null(strstr(t, " 103 "));
	assert_non_null(strstr(t, "    110      sh ")); /* the path to python 111 */
	assert_non_null(strstr(t, "      111      python3 "));
	assert_non_null(strstr(t, "        112      uname ")); /* alone under its parent: as it is */
	assert_non_null(strstr(t, "    120      sleep "));     /* 1.5 s: not short */
	assert_non_null(strstr(t, "    130      tail "));      /* still running */
	assert_int_equal(lines_with(t, "\n"), 2 + 7);          /* a blank line, the title, 7 lines */
	free(t);
}

static void test_all_processes_lists_every_one(void **state)
{
	char *t = tree(1);
	(void)state;
	assert_null(strstr(t, "short-lived"));
	assert_non_null(strstr(t, "      103      cat "));
	assert_int_equal(lines_with(t, "\n"), 2 + 9);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_helpers_fold_per_parent),
		cmocka_unit_test(test_all_processes_lists_every_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
