/* cmd/report.c - `gilscope report` (the summary of a recording, as a table or JSON) and
 * `gilscope blame` (who held the GIL while each thread waited): one recording read, one view. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "base/util.h"
#include "output/report.h"

#include <getopt.h>

static int report_kind(int argc, char **argv, int blame_only)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "active", no_argument, NULL, 'A' },
		{ "keep-cpython-evals", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gs_analysis_opts aopts = { 0 };
	struct gs_analysis a;
	char why[1024];
	int c, json = 0, active = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'J') {
			json = 1;
		} else if (c == 'A') {
			active = 1;
		} else if (c == 'K') {
			aopts.keep_evals = 1;
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
	if (json)
		gs_report_json(&a, stdout);
	else if (blame_only)
		gs_report_blame(&a, stdout, 5);
	else
		gs_report_text(&a, stdout);
	gs_analysis_free(&a);
	return 0;
}

/* `gilscope report [--json] [--active] [--keep-cpython-evals] FILE` */
int gs_cmd_report(int argc, char **argv) { return report_kind(argc, argv, 0); }

/* `gilscope blame [--keep-cpython-evals] FILE` (--json, --active: as report's) */
int gs_cmd_blame(int argc, char **argv) { return report_kind(argc, argv, 1); }
