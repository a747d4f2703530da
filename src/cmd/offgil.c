/* cmd/offgil.c - `gilscope offgil`: per4m's offgil, folded stacks of the time threads spent
 * waiting for the GIL, in microseconds, for flamegraph.pl. From `perf script` text with call
 * chains (standard input, --input-perf FILE or FILE; import/offgil.h), or from a gilscope
 * recording FILE (told by its magic): its Python stacks sampled while waiting, each sample
 * weighing one sampling period. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "base/recfile.h"
#include "base/util.h"
#include "import/offgil.h"
#include "output/report.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

/* A gilscope recording: the stacks sampled while waiting (GS_WHAT_WAIT), in microseconds. */
static int offgil_recording(const char *input, const char *output, const struct gs_offgil_opts *o)
{
	struct gs_analysis_opts aopts = { .keep_evals = o->keep_evals };
	struct gs_analysis a;
	FILE *out = stdout;
	char why[512];

	if (gs_analysis_load(&a, input, &aopts, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
		gs_err("%s", why);
		gs_analysis_free(&a);
		return 1;
	}
	gs_report_folded_scaled(&a, out, GS_WHAT_WAIT, a.stack_rate_hz ? 1000000 / a.stack_rate_hz : 1000);
	gs_analysis_free(&a);
	if (!output) {
		if (fflush(stdout) == 0)
			return 0;
		gs_err("writing the output: %s", strerror(errno));
		return 1;
	}
	if (fclose(out) != 0) {
		gs_err("writing %s: %s", output, strerror(errno));
		return 1;
	}
	return 0;
}

/* `perf script` text from in (closed here unless stdin). */
static int offgil_perf(FILE *in, const char *output, const struct gs_offgil_opts *o)
{
	FILE *out = stdout;
	char why[512];
	long n;

	if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
		gs_err("%s", why);
		if (in != stdin)
			fclose(in);
		return 1;
	}
	n = gs_offgil_perf(in, out, o, why, sizeof(why));
	if (in != stdin)
		fclose(in);
	if (output && fclose(out) != 0)
		n = -1;
	if (n < 0) {
		gs_err("%s", why);
		return 1;
	}
	return 0;
}

/* `gilscope offgil [per4m's options] [-o OUT] [FILE]` */
int gs_cmd_offgil(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "strip-take-gil", no_argument, NULL, 't' },
		{ "no-strip-take-gil", no_argument, NULL, 'T' },
		{ "keep-cpython-evals", no_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },
		{ "allow-mismatch", no_argument, NULL, 1 },
		{ "pedantic", no_argument, NULL, 1 },
		{ "input-perf", required_argument, NULL, 'i' },
		{ "input-viztracer", required_argument, NULL, 1 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gs_offgil_opts o = { .strip_take_gil = 1 };
	const char *output = NULL, *input = NULL;
	FILE *in = stdin;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strcmp(optarg, "S(GIL)") == 0)
				o.all_sleep = 0;
			else if (strcmp(optarg, "S") == 0)
				o.all_sleep = 1;
			else {
				gs_usage_error("unknown --state '%s' (S(GIL) or S)", optarg);
				return 2;
			}
			break;
		case 't':
			o.strip_take_gil = 1;
			break;
		case 'T':
			o.strip_take_gil = 0;
			break;
		case 'k':
			o.keep_evals = 1;
			break;
		case 'o':
			output = optarg;
			break;
		case 'i':
			input = optarg;
			break;
		case 1:
			break; /* per4m's options that change nothing here */
		case 'h':
			gs_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (optind < argc)
		input = argv[optind];
	if (output && strcmp(output, "-") == 0)
		output = NULL; /* -o -: standard output */
	if (input) {
		char magic[8] = "";
		in = fopen(input, "re");
		if (!in) {
			gs_err("cannot open %s: %s", input, strerror(errno));
			return 1;
		}
		if (fread(magic, 1, 8, in) == 8 && memcmp(magic, GS_REC_MAGIC, 8) == 0) {
			fclose(in);
			return offgil_recording(input, output, &o);
		}
		rewind(in);
	}
	return offgil_perf(in, output, &o);
}
