/* cmd/diff.c - `gilscope diff A B [--json] [--fail-if-worse PERCENT]`: what changed between two
 * recordings of the same program (analysis/diff.h, output/diff.h). Exit status 0; 1 when
 * --fail-if-worse is given and B is worse by more than PERCENT (or a recording cannot be read);
 * 2 for a usage error. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "analysis/diff.h"
#include "base/util.h"
#include "output/diff.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

static int load(struct gs_analysis *a, const char *path)
{
	char why[1024];
	if (gs_analysis_load(a, path, NULL, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return -1;
	}
	if (a->records == 0) {
		gs_err("%s holds no events", path);
		gs_analysis_free(a);
		return -1;
	}
	if (a->truncated)
		gs_warn("%s ends in the middle of a record; comparing the complete part", path);
	return 0;
}

int gs_cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "fail-if-worse", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gs_analysis a, b;
	struct gs_diff d;
	struct gs_diff_view v = { .fail_percent = -1 };
	int c, json = 0, rc = 1;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'J') {
			json = 1;
		} else if (c == 'F') {
			errno = 0;
			v.fail_percent = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(v.fail_percent) || v.fail_percent < 0) {
				gs_usage_error(
					"--fail-if-worse takes a percentage, 0 or more (for example 10), not '%s'",
					optarg);
				return 2;
			}
		} else if (c == 'h') {
			gs_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (optind + 2 != argc) {
		gs_usage_error("%s needs two recordings: A (before) and B (after)", argv[0]);
		return 2;
	}
	v.path_a = argv[optind];
	v.path_b = argv[optind + 1];
	if (load(&a, v.path_a) < 0)
		return 1;
	if (load(&b, v.path_b) < 0)
		goto out_a;
	v.a = &a;
	v.b = &b;
	if (gs_diff_build(&d, &a, &b) < 0) {
		gs_err("out of memory comparing %s and %s", v.path_a, v.path_b);
		goto out_b;
	}
	if (json)
		gs_diff_json(&d, &v, stdout);
	else
		gs_diff_text(&d, &v, stdout);
	rc = gs_diff_worse(&d, v.fail_percent);
	gs_diff_free(&d);
out_b:
	gs_analysis_free(&b);
out_a:
	gs_analysis_free(&a);
	return rc;
}
