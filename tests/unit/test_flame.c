/* Unit tests: folded stacks and the flame graph's tree on a hand-made analysis of two processes
 * that ran the same script (each with its own frame and stack ids) and a third that did not. */
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
#include "output/flame.h"
#include "output/report.h"
#include "cpython/native.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)

static void feed(struct gs_analysis *a, uint16_t type, uint32_t pid, uint64_t time, int32_t arg, uint64_t arg64,
		 const void *payload, size_t plen)
{
	struct gs_rec r = { .type = type, .pid = pid, .tid = pid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_analysis_feed(a, &r, payload, plen);
}

/* Process pid defines main (a.py:3) and work (a.py:9) as frames first, first + 1 and the stack
 * main -> work as stack sid, then is sampled n times in it (on a CPU, no GIL: "cpu"). */
static void process(struct gs_analysis *a, uint32_t pid, uint32_t first, uint32_t sid, int n, uint64_t t0)
{
	static const char outer[] = "main\0a.py", inner[] = "work\0a.py";
	uint32_t stack[2] = { first + 1, first }; /* innermost first */
	feed(a, GS_REC_SWITCH_IN, pid, T(t0), 0, 0, NULL, 0);
	feed(a, GS_REC_PYFRAME, pid, T(t0), 3, first, outer, sizeof(outer));
	feed(a, GS_REC_PYFRAME, pid, T(t0), 9, first + 1, inner, sizeof(inner));
	feed(a, GS_REC_STACK, pid, T(t0), 2, sid, stack, sizeof(stack));
	for (int k = 0; k < n; k++)
		feed(a, GS_REC_SAMPLE, pid, T(t0 + 1 + (uint64_t)k), 0, sid, NULL, 0);
}

/* Two processes of the same script (frames 1-2 and 3-4, stacks 1 and 2), one of another with a
 * ';' in a name (frame 5, stack 3), and samples with no Python stack in two of them. */
static void two_pools(struct gs_analysis *a)
{
	static const char other[] = "x;y\0b.py";
	uint32_t lone = 5;
	gs_analysis_init(a, START);
	process(a, 100, 1, 1, 3, 0);
	process(a, 200, 3, 2, 2, 100);
	feed(a, GS_REC_SWITCH_IN, 300, T(200), 0, 0, NULL, 0);
	feed(a, GS_REC_PYFRAME, 300, T(200), 1, 5, other, sizeof(other));
	feed(a, GS_REC_STACK, 300, T(200), 1, 3, &lone, sizeof(lone));
	feed(a, GS_REC_SAMPLE, 300, T(201), 0, 3, NULL, 0);
	feed(a, GS_REC_SAMPLE, 300, T(202), 0, 0, NULL, 0);
	feed(a, GS_REC_SAMPLE, 100, T(203), 0, 0, NULL, 0);
	gs_analysis_finish(a, T(300));
}

static char *written(const struct gs_analysis *a, int svg, size_t *ret)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	*ret = svg ? gs_flame_svg(a, m, GS_WHAT_NOGIL, "t") : gs_report_folded(a, m, GS_WHAT_NOGIL);
	fclose(m);
	return buf;
}

static size_t occurrences(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

static void test_folded_merges_the_same_stack_of_two_processes(void **state)
{
	struct gs_analysis a;
	size_t lines, pos[3];
	char *doc;
	const char *want[3] = { "main (a.py:3);work (a.py:9) 5\n", "x,y (b.py:1) 1\n", "[no Python frame] 2\n" };
	(void)state;
	two_pools(&a);
	doc = written(&a, 0, &lines);
	assert_int_equal(lines, 3);
	assert_int_equal(occurrences(doc, "\n"), 3);
	for (int k = 0; k < 3; k++) {
		const char *p = strstr(doc, want[k]);
		assert_non_null(p);
		assert_true(p == doc || p[-1] == '\n');
		pos[k] = (size_t)(p - doc);
	}
	free(doc);
	/* the order is the count table's, as before the merge: the same on every run */
	doc = written(&a, 0, &lines);
	for (int k = 0; k < 3; k++)
		assert_int_equal((size_t)(strstr(doc, want[k]) - doc), pos[k]);
	free(doc);
	gs_analysis_free(&a);
}

static void test_flame_draws_the_same_frame_of_two_processes_once(void **state)
{
	struct gs_analysis a;
	size_t samples;
	char *doc;
	(void)state;
	two_pools(&a);
	doc = written(&a, 1, &samples);
	assert_int_equal(samples, 8);
	assert_int_equal(occurrences(doc, "<title>main (a.py:3) (5 samples"), 1);
	assert_int_equal(occurrences(doc, "<title>work (a.py:9) (5 samples"), 1);
	assert_int_equal(occurrences(doc, "<title>main (a.py:3)"), 1);
	free(doc);
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		assert_non_null(m);
		assert_int_equal(gs_flame_json(&a, m, GS_WHAT_NOGIL, 0), 8);
		fclose(m);
		/* the root, then main with work above it, under frame 1's name (ids 3 and 4 merged) */
		assert_non_null(strstr(buf, "[1,5,[2,5]]"));
		assert_null(strstr(buf, "[3,"));
		free(buf);
	}
	gs_analysis_free(&a);
}

/* A stack made only of frames the analysis hides (-X perf trampolines, the evaluation loop) is
 * empty once they are gone: its samples are counted as having no Python frame, and every line
 * of the folded text is one whole stack (it once started with a stray byte, or crashed). */
static void test_folded_stack_of_hidden_frames_only(void **state)
{
	static const char tramp[] = "py::work:/a.py\0[perf-7.map]";
	uint32_t hidden = 9;
	struct gs_analysis a;
	const uint32_t *f;
	size_t lines;
	int n = -1;
	char *doc;
	(void)state;
	for (int first = 0; first < 2; first++) {
		gs_analysis_init(&a, START);
		if (!first)
			process(&a, 100, 1, 1, 3, 0);
		feed(&a, GS_REC_SWITCH_IN, 400, T(200), 0, 0, NULL, 0);
		feed(&a, GS_REC_NATFRAME, 400, T(200), GS_NATFRAME_TRAMPOLINE, 9, tramp, sizeof(tramp));
		feed(&a, GS_REC_STACK, 400, T(200), 1, 4, &hidden, sizeof(hidden));
		for (int k = 0; k < 4; k++)
			feed(&a, GS_REC_SAMPLE, 400, T(201 + (uint64_t)k), 0, 4, NULL, 0);
		gs_analysis_finish(&a, T(300));
		f = gs_analysis_stack(&a, 4, &n);
		assert_null(f);
		doc = written(&a, 0, &lines);
		assert_int_equal(lines, first ? 1 : 2);
		assert_non_null(strstr(doc, "[no Python frame] 4\n"));
		assert_true(strncmp(doc, first ? "[no Python frame] 4\n" : "main (a.py:3);work (a.py:9) 3\n", 20) == 0);
		assert_int_equal(occurrences(doc, "\n"), lines);
		free(doc);
		gs_analysis_free(&a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folded_merges_the_same_stack_of_two_processes),
		cmocka_unit_test(test_flame_draws_the_same_frame_of_two_processes_once),
		cmocka_unit_test(test_folded_stack_of_hidden_frames_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
