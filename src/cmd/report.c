/* cmd/report.c - `gilscope report` (the summary of a recording, as a table or JSON) and
 * `gilscope blame` (who held the GIL while each thread waited): one recording read, one view. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "analysis/window.h"
#include "base/recfile.h"
#include "base/util.h"
#include "output/report.h"
#include "output/window.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* One end of --window: CLOCK_MONOTONIC nanoseconds (as Python's time.monotonic_ns() gives), or
 * "+SECONDS" after the recording's start. 0, or -1 when s is neither. */
static int window_end(const char *s, uint64_t start, uint64_t *out)
{
	char *end;
	errno = 0;
	if (*s == '+') {
		double sec = strtod(s + 1, &end);
		if (errno || end == s + 1 || *end || !(sec >= 0) || sec > 1e9)
			return -1;
		*out = start + (uint64_t)(sec * 1e9);
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* `report --window FROM:TO [--json] FILE`: each thread's figures within the window. */
static int report_window(const char *path, const char *spec, const struct gs_analysis_opts *aopts, int json)
{
	char why[1024], from_s[64];
	const char *colon = strchr(spec, ':');
	struct gs_recreader *rd;
	struct gs_analysis a;
	struct gs_window w;
	struct gs_hooks hooks;
	uint64_t start, from, to;

	if (!colon || (size_t)(colon - spec) >= sizeof(from_s)) {
		gs_usage_error("--window takes FROM:TO (monotonic nanoseconds, or +SECONDS from the start), not '%s'",
			       spec);
		return 2;
	}
	if (gs_recreader_open(path, &rd, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	start = gs_recreader_start(rd);
	gs_recreader_close(rd);
	snprintf(from_s, sizeof(from_s), "%.*s", (int)(colon - spec), spec);
	if (window_end(from_s, start, &from) < 0 || window_end(colon + 1, start, &to) < 0 || to <= from) {
		gs_usage_error("--window takes FROM:TO with FROM before TO (monotonic nanoseconds, or +SECONDS from "
			       "the start), not '%s'",
			       spec);
		return 2;
	}
	gs_window_init(&w, &a, from, to, &hooks);
	if (gs_analysis_load_hooked(&a, path, aopts, &hooks, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		gs_window_free(&w);
		return 1;
	}
	gs_window_finish(&w);
	if (json)
		gs_window_json(&w, stdout);
	else
		gs_window_text(&w, stdout);
	gs_window_free(&w);
	gs_analysis_free(&a);
	return 0;
}

static int report_kind(int argc, char **argv, int blame_only)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "active", no_argument, NULL, 'A' },
		{ "all-processes", no_argument, NULL, 'P' },
		{ "keep-cpython-evals", no_argument, NULL, 'K' },
		{ "window", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gs_analysis_opts aopts = { 0 };
	struct gs_analysis a;
	char why[1024];
	const char *window = NULL;
	int c, json = 0, active = 0, all_processes = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'J') {
			json = 1;
		} else if (c == 'A') {
			active = 1;
		} else if (c == 'P') {
			all_processes = 1;
		} else if (c == 'K') {
			aopts.keep_evals = 1;
		} else if (c == 'W' && !blame_only) {
			window = optarg;
		} else if (c == 'h') {
			gs_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		gs_usage_error("%s needs exactly one recording FILE", argv[0]);
		return 2;
	}
	if (window)
		return report_window(argv[optind], window, &aopts, json);
	if (gs_analysis_load(&a, argv[optind], &aopts, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	if (a.truncated)
		gs_warn("%s ends in the middle of a record (gilscope or the machine stopped mid-write); "
			"reporting the complete part",
			argv[optind]);
	if (a.records == 0) {
		gs_err("%s holds no events", argv[optind]);
		gs_analysis_free(&a);
		return 1;
	}
	a.active_only = active;
	a.all_processes = all_processes;
	if (json)
		gs_report_json(&a, stdout);
	else if (blame_only)
		gs_report_blame(&a, stdout, 5);
	else
		gs_report_text(&a, stdout);
	gs_analysis_free(&a);
	return 0;
}

/* `gilscope report [--json] [--active] [--all-processes] [--keep-cpython-evals] FILE` */
int gs_cmd_report(int argc, char **argv) { return report_kind(argc, argv, 0); }

/* `gilscope blame [--keep-cpython-evals] FILE` (--json, --active: as report's) */
int gs_cmd_blame(int argc, char **argv) { return report_kind(argc, argv, 1); }
