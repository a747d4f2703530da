/* cmd/perf2trace.c - `gilscope perf2trace {gil,sched}`: per4m's perf2trace. `perf script` text on
 * standard input becomes a gilscope recording in an anonymous temporary file
 * (import/perfscript.h), which the trace JSON exporter turns into OUT.json (default perf.json);
 * then the summary table of that recording is printed, as for a recording of gilscope's own. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "base/recfile.h"
#include "base/util.h"
#include "import/perfscript.h"
#include "output/report.h"
#include "output/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Converts stdin into a recording reachable as path (/proc/self/fd/N); the descriptor in *fd
 * keeps it alive. The file is created by mkstemp (O_EXCL, mode 0600) and unlinked at once:
 * nobody else can open, replace or see it, and nothing is left behind whatever happens.
 * 0, or 1 with the error printed. */
static int convert(const char *mode, char *path, size_t pathlen, int *fd, struct gs_perf2trace_stats *st)
{
	char tmpl[64] = "/tmp/gilscope-perf2trace-XXXXXX";
	struct gs_recwriter *w;
	int wfd = -1, err;

	*fd = mkstemp(tmpl);
	if (*fd < 0) {
		gs_err("cannot create a temporary file in /tmp: %s", strerror(errno));
		return 1;
	}
	unlink(tmpl);
	fcntl(*fd, F_SETFD, FD_CLOEXEC);
	snprintf(path, pathlen, "/proc/self/fd/%d", *fd);
	if ((wfd = dup(*fd)) < 0 || (err = gs_recwriter_open_fd(wfd, 0, &w)) < 0) {
		gs_err("cannot write a temporary file in /tmp: %s", strerror(wfd < 0 ? errno : -err));
		return 1;
	}
	gs_recwriter_meta(w, 0, "command", mode[0] == 'g' ? "perf script (GIL probes)" : "perf script (scheduler)");
	err = gs_perf2trace(stdin, mode, w, st);
	if (err == 0)
		err = gs_recwriter_set_start(w, st->first_ns);
	if (gs_recwriter_close(w) < 0 || err < 0) {
		gs_err("reading perf script text failed: %s", strerror(err < 0 ? -err : EIO));
		return 1;
	}
	if (!st->events) {
		gs_err("no %s events in the input (%llu lines, %llu unreadable): is it `perf script` output of %s?",
		       mode, (unsigned long long)st->lines, (unsigned long long)st->skipped,
		       mode[0] == 'g' ? "the python:take_gil/drop_gil probes" : "sched tracepoints");
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
	const char *output = "perf.json", *viz = NULL, *mode;
	char path[64], why[1024];
	struct gs_perf2trace_stats st;
	struct gs_analysis a;
	FILE *out;
	int c, fd = -1, err, quiet = 0, ret = 1;
	uint64_t t0 = gs_now_ns();

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:i:qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'i':
			viz = optarg;
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
	mode = argv[optind];
	if (convert(mode, path, sizeof(path), &fd, &st) != 0)
		goto cleanup;
	out = gs_fopen_output(output, why, sizeof(why));
	if (!out) {
		gs_err("%s", why);
		goto cleanup;
	}
	err = gs_trace_json(path, viz, out, why, sizeof(why));
	if (fclose(out) != 0 && err == 0)
		err = -EIO;
	if (err < 0) {
		gs_err("%s", why);
		goto cleanup;
	}
	if (!quiet && gs_analysis_load(&a, path, NULL, why, sizeof(why)) == 0) {
		gs_report_text(&a, stdout);
		gs_analysis_free(&a);
	}
	if (!quiet || st.skipped)
		fprintf(stderr,
			"gilscope: %llu events from %llu lines (%.1f MB) in %.2f s; %llu lines skipped; wrote %s\n",
			(unsigned long long)st.events, (unsigned long long)st.lines, (double)st.bytes / 1e6,
			(double)(gs_now_ns() - t0) / 1e9, (unsigned long long)st.skipped, output);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	return ret;
}
