/* Unit tests: the Prometheus and OpenMetrics texts (output/metrics.h) and top's screen
 * (output/top.h) of hand-made snapshots: families and suffixes, grouped and per-tid series,
 * label escaping, cumulative buckets, the Accept header, shares over an interval, line widths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "output/metrics.h"
#include "output/top.h"

#define S 1000000000ull

static struct gs_live_thread threads[4];
static struct gs_live_gil gils[1];
static struct gs_live_proc procs[1];

static void thread(int i, uint32_t tid, const char *name, const char *group, uint64_t held)
{
	memset(&threads[i], 0, sizeof(threads[i]));
	threads[i].pid = 100;
	threads[i].tid = tid;
	threads[i].gil = 1;
	snprintf(threads[i].name, sizeof(threads[i].name), "%s", name);
	snprintf(threads[i].group, sizeof(threads[i].group), "%s", group);
	threads[i].held_ns = held;
	threads[i].wait_ns = held / 2;
	threads[i].acquisitions = 10;
}

static struct gs_live_snap snap(void)
{
	struct gs_live_snap s = { .threads = threads,
				  .nthreads = 4,
				  .gils = gils,
				  .ngils = 1,
				  .procs = procs,
				  .nprocs = 1,
				  .start_ns = 1 * S,
				  .last_ns = 3 * S,
				  .lost_events = 7 };
	thread(0, 100, "MainThread", "MainThread", 1 * S);
	thread(1, 101, "Thread-1 (h)", "Thread-* (h)", S / 4);
	thread(2, 102, "Thread-2 (h)", "Thread-* (h)", S / 4);
	thread(3, 0, "Thread-* (h)", "Thread-* (h)", S / 2); /* retired */
	memset(gils, 0, sizeof(gils));
	gils[0].pid = 100;
	gils[0].number = 1;
	gils[0].held_ns = 2 * S;
	gils[0].hist[0] = 1;
	gils[0].hist[3] = 2;
	gils[0].hist[GS_LIVE_BUCKETS] = 1;
	gils[0].waits = 4;
	memset(procs, 0, sizeof(procs));
	procs[0].pid = 100;
	procs[0].is_python = 1;
	snprintf(procs[0].name, sizeof(procs[0].name), "python3 a\"b\\c.py");
	procs[0].wall_ns = 2 * S;
	return s;
}

static void test_prometheus_text(void **state)
{
	struct gs_live_snap s = snap();
	size_t len;
	char *t = gs_metrics_render(&s, 0, 0, &len);
	(void)state;
	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	assert_non_null(strstr(t, "# TYPE gilscope_gil_held_seconds_total counter\n"));
	assert_non_null(strstr(t, "gilscope_gil_held_seconds_total{pid=\"100\",process=\"python3 a\\\"b\\\\c.py\","
				  "gil=\"1\",thread=\"Thread-* (h)\"} 1.000000000\n"));
	assert_non_null(strstr(t, "thread=\"MainThread\"} 1.000000000\n"));
	assert_non_null(strstr(t, "le=\"1e-05\"} 1\n"));
	assert_non_null(strstr(t, "le=\"0.0005\"} 3\n"));
	assert_non_null(strstr(t, "le=\"1\"} 3\n"));
	assert_non_null(strstr(t, "le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(t, "gilscope_lost_events_total 7\n"));
	assert_null(strstr(t, "# EOF"));
	assert_null(strstr(t, "tid=\""));
	free(t);
}

static void test_openmetrics_and_per_tid(void **state)
{
	struct gs_live_snap s = snap();
	size_t len;
	char *t = gs_metrics_render(&s, 1, 1, &len);
	(void)state;
	assert_non_null(strstr(t, "# TYPE gilscope_gil_held_seconds counter\n"));
	assert_null(strstr(t, "# TYPE gilscope_gil_held_seconds_total"));
	assert_non_null(strstr(t, "thread=\"Thread-* (h)\",tid=\"101\"} 0.250000000\n"));
	assert_null(strstr(t, "tid=\"0\""));
	assert_int_equal(strcmp(t + len - 6, "# EOF\n"), 0);
	free(t);
}

static int om(const char *accept) { return gs_metrics_wants_openmetrics(accept); }

/* Accept headers as real scrapers send them, then the rules one by one. */
static void test_accept_real_headers(void **state)
{
	struct gs_metrics_accept a;
	(void)state;
	/* Prometheus 2.x */
	gs_metrics_accept("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
			  "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
			  &a);
	assert_true(a.openmetrics);
	assert_int_equal(a.openmetrics_q, 1000);
	assert_int_equal(a.text_q, 500);
	/* Prometheus 3.x, with UTF-8 escaping and protobuf first */
	assert_true(om("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
		       "q=0.7,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
		       "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
		       "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"));
	/* Prometheus scrape_protocols: [PrometheusText0.0.4] only */
	assert_false(om("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));
	/* curl, browsers, VictoriaMetrics' vmagent without a preference */
	assert_false(om("*/*"));
	assert_false(om("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"));
	assert_false(om(NULL));
	assert_false(om(""));
	assert_false(om("  "));
	/* an OpenMetrics-only client */
	assert_true(om("application/openmetrics-text"));
	assert_true(om("APPLICATION/OpenMetrics-Text ; Version=\"1.0.0\" ; Q=1"));
}

static void test_accept_rules(void **state)
{
	struct gs_metrics_accept a;
	(void)state;
	assert_true(om("application/openmetrics-text; version=1.0.0,text/plain;q=0.5"));
	assert_false(om("text/plain"));
	assert_false(om("application/openmetrics-text;q=0,text/plain"));
	assert_false(om("application/openmetrics-text;q=0"));
	/* equal weights: the one named first */
	assert_true(om("application/openmetrics-text,text/plain"));
	assert_false(om("text/plain,application/openmetrics-text"));
	/* the most specific range decides, whatever the order */
	assert_false(om("application/openmetrics-text;q=0.2,application/*;q=0.9,text/plain;q=0.5"));
	assert_true(om("text/*;q=0.1,application/*;q=0.3"));
	/* a version we do not write is not OpenMetrics */
	assert_false(om("application/openmetrics-text;version=2.0.0,text/plain;q=0.1"));
	gs_metrics_accept("application/openmetrics-text;version=2.0.0", &a);
	assert_int_equal(a.openmetrics_q, 0);
	/* qvalues: three decimals, 0..1 */
	gs_metrics_accept("application/openmetrics-text;q=0.125,text/plain;q=0.124", &a);
	assert_int_equal(a.openmetrics_q, 125);
	assert_int_equal(a.text_q, 124);
	assert_true(a.openmetrics);
	assert_false(om("application/openmetrics-text;q=1.5,text/plain;q=0.1")); /* malformed: ignored */
	assert_false(om("application/openmetrics-text;q=0.1234,text/plain;q=0.1"));
	assert_false(om("application/openmetrics-text;q=-1,text/plain;q=0.1"));
	assert_false(om("application/openmetrics-text;q=,text/plain;q=0.1"));
	assert_true(om("application/openmetrics-text;q=1.000,text/plain;q=0.999"));
	assert_true(om("application/openmetrics-text;q=0.,text/plain;q=0.1") == 0);
	/* garbage: skipped up to the next range */
	/* empty parameters are allowed (RFC 9110 5.6.6: *( OWS ";" OWS [ parameter ] )) */
	assert_true(om("application/openmetrics-text;;;"));
	assert_true(om("application/openmetrics-text;"));
	assert_true(om("application/openmetrics-text ; ; version=1.0.0 ;"));
	assert_false(om("application/openmetrics-text;;q=0.2;,text/plain;q=0.5"));
	assert_true(om("text/plain;q=0.5; ,application/openmetrics-text;"));
	assert_false(om("openmetrics-text,text/plain"));
	assert_false(om("text/plain;x=\"application/openmetrics-text\""));
	assert_true(om("garbage\"unterminated,x\",application/openmetrics-text"));
	assert_false(om("garbage\"unterminated,application/openmetrics-text"));
	assert_true(om(",,, ,application/openmetrics-text ,"));
	assert_false(om("*/openmetrics-text"));
	assert_false(om("\x01\xff/\x7f;q=1"));
	assert_true(om("foo/bar;p=\"a\\\",b\",application/openmetrics-text"));
}

static void test_top_screen(void **state)
{
	struct gs_live_snap cur = snap(), prev;
	static struct gs_live_thread before[4];
	struct gs_top_view v = { .sort = GS_TOP_HELD, .rows = 0, .cols = 80, .interval_s = 1 };
	char *text = NULL, *line;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	int n;
	(void)state;
	memcpy(before, threads, sizeof(before));
	prev = cur;
	prev.threads = before;
	prev.last_ns = 2 * S;
	before[0].held_ns = S / 2; /* MainThread: 50% of the last second */
	strcpy(threads[2].name, "evil\033[2Jname");
	strcpy(threads[0].wait_site, "Handler.handle_one_request_with_a_long_name server.py:1234");
	strcpy(threads[1].wait_site, "work\033]0;x\007 w.py:7");
	n = gs_top_render(m, &prev, &cur, &v);
	fclose(m);
	assert_int_equal(n, 3); /* the retired row is not listed */
	line = strstr(text, "    100 MainThread");
	assert_non_null(line);
	assert_non_null(strstr(line, " 50.0 "));
	assert_non_null(strstr(line, " Handl")); /* the site cut in the middle, its line number kept */
	assert_non_null(strstr(line, "234\n"));
	assert_non_null(strstr(text, "WAIT SITE\n"));
	assert_non_null(strstr(text, " - ") ? text : NULL);
	assert_null(strchr(text, '\033'));
	assert_null(strchr(text, '\007'));
	assert_non_null(strstr(text, "evil\\x1")); /* escaped, then cut to 12 columns */
	for (char *l = text; *l; l = strchr(l, '\n') + 1) {
		int cols = 0;
		for (char *c = l; *c != '\n'; c++)
			cols += ((unsigned char)*c & 0xc0) != 0x80; /* code points */
		assert_true(cols <= 80);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_text),     cmocka_unit_test(test_openmetrics_and_per_tid),
		cmocka_unit_test(test_accept_real_headers), cmocka_unit_test(test_accept_rules),
		cmocka_unit_test(test_top_screen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
