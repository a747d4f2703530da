/* cmd/perf2trace.c - `gilscope perf2trace {gil,sched}`: per4m's perf2trace. `perf script` text on
 * standard input becomes gilscope records (import/perfscript.h) fed straight into the analysis
 * that drives the trace JSON exporter (output/trace.h), in one pass with no temporary file, as if
 * a recording of them had been written and read back; OUT.json (default perf.json) is created at
 * the first event, so an input without any leaves no file. Then the summary table of that
 * analysis is printed, as for a recording of gilscope's own. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "base/recfile.h"
#include "base/util.h"
#include "import/perfscript.h"
#include "output/report.h"
#include "output/trace.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct conversion {
	const char *mode, *output, *viz;
	struct gs_analysis a;
	int started;            /* a is initialised */
	FILE *out;              /* opened at the first event */
	struct gs_trace *trace; /* the export to out */
	int failed;             /* out or viz could not be opened (said): the conversion stopped */
	struct gs_recsink sink; /* conv_start and conv_add on this */
};

/* The analysis starts at the first timestamp, with the run's one fact (as the recording held it).
 * Records of lines timed 0 may have come first (conv_add started it at 0): a recording's start
 * is set when it is known, so the analysis' start moves to it now, as if it had been there from
 * the beginning (those records were at 0: nothing was clamped to it or went past it). */
static void conv_start(void *ctx, uint64_t start_ns)
{
	struct conversion *cv = ctx;
	if (cv->started) {
		cv->a.start_ns = start_ns;
		if (cv->a.last_ns < start_ns)
			cv->a.last_ns = start_ns;
		return;
	}
	gs_analysis_init(&cv->a, start_ns);
	cv->started = 1;
	gs_recsink_meta(&cv->sink, 0, "command",
			cv->mode[0] == 'g' ? "perf script (GIL probes)" : "perf script (scheduler)");
}

static int conv_add(void *ctx, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct conversion *cv = ctx;
	char why[1024];
	if (!cv->started)
		conv_start(cv, 0); /* records before any nonzero timestamp */
	if (!cv->out && r->type != GS_REC_META && r->type != GS_REC_END) {
		cv->out = gs_fopen_output(cv->output, why, sizeof(why));
		if (cv->out)
			cv->trace = gs_trace_begin(cv->out, cv->viz, &cv->a, why, sizeof(why));
		if (!cv->trace) {
			gs_err("%s", why);
			cv->failed = 1;
			return -EINVAL;
		}
		cv->a.hooks = gs_trace_hooks(cv->trace);
	}
	gs_perf2trace_feed(&cv->a, r, payload, plen);
	return 0;
}

/* Converts stdin and exports it to cv->output. 0, or 1 with the error printed. */
static int convert(struct conversion *cv, struct gs_perf2trace_stats *st)
{
	int err;

	cv->sink = (struct gs_recsink){ .ctx = cv, .start = conv_start, .add = conv_add };
	err = gs_perf2trace(stdin, cv->mode, &cv->sink, st);
	if (cv->failed)
		return 1;
	if (err < 0) {
		gs_err("reading perf script text failed: %s", strerror(-err));
		return 1;
	}
	if (!st->events) {
		gs_err("no %s events in the input (%llu lines, %llu unreadable): is it `perf script` output of %s?",
		       cv->mode, (unsigned long long)st->lines, (unsigned long long)st->skipped,
		       cv->mode[0] == 'g' ? "the python:take_gil/drop_gil probes" : "sched tracepoints");
		return 1;
	}
	gs_analysis_finish(&cv->a, 0);
	gs_trace_end(cv->trace);
	cv->trace = NULL;
	cv->a.hooks = NULL;
	err = fclose(cv->out);
	cv->out = NULL;
	if (err != 0) {
		gs_err("cannot write %s: %s", cv->output, strerror(errno));
		return 1;
	}
	return 0;
}

/* `gilscope perf2trace {gil,sched} [per4m's options] [-o OUT.json] [-i viztracer.json] < perf-script.txt` */
int gs_cmd_perf2trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' }, { "input", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },        { "verbose", no_argument, NULL, 'v' },
		{ "running", no_argument, NULL, 1 },        { "no-running", no_argument, NULL, 1 },
		{ "sleeping", no_argument, NULL, 1 },       { "no-sleeping", no_argument, NULL, 1 },
		{ "as-async", no_argument, NULL, 1 },       { "no-as-async", no_argument, NULL, 1 },
		{ "only-lock", no_argument, NULL, 1 },      { "all-tracepoints", no_argument, NULL, 1 },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct conversion cv = { .output = "perf.json" };
	struct gs_perf2trace_stats st;
	int c, quiet = 0, ret = 1;
	uint64_t t0 = gs_now_ns();

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:i:qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			cv.output = optarg;
			break;
		case 'i':
			cv.viz = optarg;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			gs_verbose = 2;
			break;
		case 1:
			break; /* per4m's drawing options: gilscope always draws every state */
		case 'h':
			gs_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "gil") != 0 && strcmp(argv[optind], "sched") != 0)) {
		gs_usage_error("%s", "perf2trace needs the kind of input: gil or sched (perf script text on stdin)");
		return 2;
	}
	cv.mode = argv[optind];
	if (convert(&cv, &st) != 0)
		goto cleanup;
	if (!quiet)
		gs_report_text(&cv.a, stdout);
	if (!quiet || st.skipped)
		fprintf(stderr,
			"gilscope: %llu events from %llu lines (%.1f MB) in %.2f s; %llu lines skipped; wrote %s\n",
			(unsigned long long)st.events, (unsigned long long)st.lines, (double)st.bytes / 1e6,
			(double)(gs_now_ns() - t0) / 1e9, (unsigned long long)st.skipped, cv.output);
	ret = 0;
cleanup:
	gs_trace_free(cv.trace);
	if (cv.out)
		fclose(cv.out);
	if (cv.started)
		gs_analysis_free(&cv.a);
	return ret;
}
