/* Unit tests: the speedscope writer on a hand-made analysis (frames, a stack, samples). */
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
#include "output/speedscope.h"

#define START 1000000000ull
#define T(us) (START + (uint64_t)(us)*1000ull)

static void feed(struct gs_analysis *a, uint16_t type, uint32_t tid, uint64_t time, int32_t arg, uint64_t arg64,
		 const void *payload, size_t plen)
{
	struct gs_rec r = { .type = type, .pid = 100, .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	gs_analysis_feed(a, &r, payload, plen);
}

static char *write_doc(const struct gs_analysis *a, size_t *profiles)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	assert_non_null(m);
	*profiles = gs_speedscope_write(a, m);
	fclose(m);
	return buf;
}

static void test_profiles_per_thread_and_kind(void **state)
{
	static const char kv[] = "python.version\0"
				 "3.11.7";
	static const char outer[] = "outer\0a.py", evil[] = "</script>\"x\0b.py";
	uint32_t stack[2] = { 2, 1 }; /* innermost first */
	struct gs_analysis a;
	size_t n;
	char *doc;
	(void)state;
	gs_analysis_init(&a, START);
	feed(&a, GS_REC_META, 0, START, 0, 0, kv, sizeof(kv));
	feed(&a, GS_REC_SWITCH_IN, 100, T(0), 0, 0, NULL, 0);
	feed(&a, GS_REC_PYFRAME, 100, T(0), 3, 1, outer, sizeof(outer));
	/* line 0: a frame whose line is not known (CPython's "__init__" shim frame) */
	feed(&a, GS_REC_PYFRAME, 100, T(0), 0, 2, evil, sizeof(evil));
	feed(&a, GS_REC_STACK, 100, T(0), 2, 1, stack, sizeof(stack));
	feed(&a, GS_REC_GIL_WAIT, 100, T(0), 0, 0, NULL, 0);
	feed(&a, GS_REC_GIL_WRITE, 100, T(0), 1, 0, NULL, 0);
	feed(&a, GS_REC_SAMPLE, 100, T(10), 0, 1, NULL, 0); /* hold */
	feed(&a, GS_REC_SAMPLE, 100, T(20), 0, 1, NULL, 0); /* hold */
	feed(&a, GS_REC_GIL_WRITE, 100, T(30), 0, 0, NULL, 0);
	feed(&a, GS_REC_SAMPLE, 100, T(40), 0, 0, NULL, 0); /* cpu, no stack */
	gs_analysis_finish(&a, T(50));

	doc = write_doc(&a, &n);
	/* hold; cpu and offgil (cpu is part of it) */
	assert_int_equal(n, 3);
	assert_non_null(strstr(doc, "{\"name\":\"outer\",\"file\":\"a.py\",\"line\":3}"));
	assert_non_null(strstr(doc, "{\"name\":\"</script>\\\"x\",\"file\":\"b.py\",\"line\":0}"));
	assert_non_null(strstr(doc, "{\"name\":\"[no Python frame]\"}]}"));
	/* two samples of one stack, outermost first, 1 ms each at the default 1000 Hz */
	assert_non_null(strstr(doc, ": hold\",\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":2000000,"
				    "\"samples\":[[0,1]],\"weights\":[2000000]}"));
	assert_non_null(strstr(doc, ": cpu\",\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":1000000,"
				    "\"samples\":[[2]],\"weights\":[1000000]}"));
	assert_non_null(strstr(doc, "(TID 100, PID 100, main): offgil"));
	assert_null(strstr(doc, ": wait"));
	free(doc);
	gs_analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_profiles_per_thread_and_kind) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
