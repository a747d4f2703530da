/* cmd/export.c - `gilscope export`: a recording into another format. Timelines (trace-json,
 * perfetto) and the HTML page stream the recording through their exporter; flame graph input
 * (folded) and flame graphs (svg) come from the whole analysis. Output to -o FILE (refusing
 * symbolic links) or standard output. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "analysis/counters.h"
#include "base/util.h"
#include "output/flame.h"
#include "output/gecko.h"
#include "output/html.h"
#include "output/perfetto.h"
#include "output/report.h"
#include "output/speedscope.h"
#include "output/trace.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

struct export_cmd {
	const char *format, *output, *combine, *input;
	int what;          /* enum gs_stack_what */
	const char *event; /* --what EVENT: the stacks of record --sample-event EVENT */
	int state;         /* --state: enum gs_ctr_state, -1: all */
	struct gs_analysis_opts aopts;
};

/* trace-json, perfetto, gecko, html: the exporter reads the recording itself. */
static int export_timeline(const struct export_cmd *o)
{
	FILE *out = stdout;
	char why[1024];
	int err;

	if (o->output && !(out = gs_fopen_output(o->output, why, sizeof(why)))) {
		gs_err("%s", why);
		return 1;
	}
	if (strcmp(o->format, "html") == 0)
		err = gs_html_report(o->input, &o->aopts, out, why, sizeof(why));
	else if (strcmp(o->format, "gecko") == 0)
		err = gs_gecko_export(o->input, &o->aopts, out, why, sizeof(why));
	else if (strcmp(o->format, "perfetto") == 0)
		err = gs_perfetto_export(o->input, out, why, sizeof(why));
	else
		err = gs_trace_json(o->input, o->combine, out, why, sizeof(why));
	if (err < 0)
		gs_err("%s", why);
	if (o->output && fclose(out) != 0 && err >= 0) {
		gs_err("writing %s: %s", o->output, strerror(errno));
		err = -EIO;
	}
	return err < 0 ? 1 : 0;
}

/* --what EVENT [--state S]: the stack-count kind of the stacks record --sample-event took at
 * EVENT's occurrences, and the flame graph's title; -1 (said) when the recording has none. */
static int64_t event_what(const struct export_cmd *o, const struct gs_analysis *a, char *title, size_t len)
{
	int n = gs_ctr_find(a, o->event, 1);
	if (n < 0) {
		gs_err("%s holds no stacks of event %s: record with --sample-event %s[/PERIOD] (--what takes hold, "
		       "wait, cpu, offcpu, blocking, offgil, or an event recorded so)",
		       o->input, o->event, o->event);
		return -1;
	}
	snprintf(title, len, "Python stacks at %.60s events%s%s (read right after each)", o->event,
		 o->state >= 0 ? ", thread in GIL state " : "", o->state >= 0 ? gs_ctr_state_names[o->state] : "");
	return gs_ctr_what(n, o->state);
}

/* folded, svg: the Python stacks sampled in one state (--what); speedscope: all of them. */
static int export_stacks(const struct export_cmd *o)
{
	static const char *const titles[GS_WHAT_N] = {
		"Python stacks holding the GIL",
		"Python stacks waiting for the GIL",
		"Python stacks running without the GIL",
		"Python stacks asleep (blocked, not waiting for the GIL)",
		"Python stacks holding the GIL while other threads waited",
		"Python stacks without the GIL (running or asleep, not waiting for it)",
	};
	struct gs_analysis a;
	FILE *out = stdout;
	char why[1024], title[160];
	int64_t what = o->what;

	if (gs_analysis_load(&a, o->input, &o->aopts, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	if (o->output && !(out = gs_fopen_output(o->output, why, sizeof(why)))) {
		gs_err("%s", why);
		gs_analysis_free(&a);
		return 1;
	}
	if (o->event)
		what = event_what(o, &a, title, sizeof(title));
	else if (!a.stack_samples && strcmp(o->format, "speedscope") != 0)
		gs_warn("%s holds no Python stack samples (recorded with --sample-rate 0, or CPython < 3.9)", o->input);
	if (what < 0) {
		/* said by event_what */
	} else if (strcmp(o->format, "speedscope") == 0) {
		gs_speedscope_write(&a, out);
	} else if (strcmp(o->format, "svg") == 0) {
		char full[1200];
		snprintf(full, sizeof(full), "%s - %.1000s", o->event ? title : titles[o->what], a.command);
		gs_flame_svg(&a, out, (enum gs_stack_what)what, full);
	} else {
		gs_report_folded(&a, out, (enum gs_stack_what)what);
	}
	if (o->output && fclose(out) != 0) {
		gs_err("writing %s: %s", o->output, strerror(errno));
		gs_analysis_free(&a);
		return 1;
	}
	gs_analysis_free(&a);
	return what < 0 ? 1 : 0;
}

/* `gilscope export --format FORMAT [--what KIND] [--combine viztracer.json] [--keep-cpython-evals]
 * FILE [-o OUT]` */
int gs_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "what", required_argument, NULL, 'w' },
		{ "state", required_argument, NULL, 's' }, /* with --what EVENT */
		{ "output", required_argument, NULL, 'o' },
		{ "combine", required_argument, NULL, 'c' },
		{ "keep-cpython-evals", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct export_cmd o = { .format = "folded", .what = GS_WHAT_HOLD, .state = -1 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:w:o:h", opts, NULL)) != -1) {
		if (c == 'f') {
			o.format = optarg;
		} else if (c == 'w') {
			o.what = -1;
			for (int i = 0; i < GS_WHAT_N; i++)
				if (strcmp(optarg, gs_what_names[i]) == 0)
					o.what = i;
			if (o.what < 0) { /* an event of record --sample-event, checked once the recording is read */
				o.what = GS_WHAT_HOLD;
				o.event = optarg;
			}
		} else if (c == 's') {
			o.state = -1;
			for (int i = 0; i < GS_CTR_NSTATES; i++)
				if (strcmp(optarg, gs_ctr_state_names[i]) == 0)
					o.state = i;
			if (o.state < 0) {
				gs_usage_error("unknown --state '%s' (held, wait, no_gil, other)", optarg);
				return 2;
			}
		} else if (c == 'o') {
			o.output = optarg;
		} else if (c == 'c') {
			o.combine = optarg;
			o.format = "trace-json";
		} else if (c == 'K') {
			o.aopts.keep_evals = 1;
		} else if (c == 'h') {
			gs_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (o.output && strcmp(o.output, "-") == 0)
		o.output = NULL; /* -o -: standard output */
	if (strcmp(o.format, "folded") != 0 && strcmp(o.format, "svg") != 0 && strcmp(o.format, "trace-json") != 0 &&
	    strcmp(o.format, "html") != 0 && strcmp(o.format, "perfetto") != 0 && strcmp(o.format, "speedscope") != 0 &&
	    strcmp(o.format, "gecko") != 0) {
		gs_usage_error("unknown --format '%s' (folded, svg, speedscope, gecko, trace-json, perfetto or html)",
			       o.format);
		return 2;
	}
	if (optind + 1 != argc) {
		gs_usage_error("%s", "export needs exactly one recording FILE");
		return 2;
	}
	o.input = argv[optind];
	if (o.state >= 0 && !o.event) {
		gs_usage_error("%s", "--state narrows --what EVENT (stacks of record --sample-event)");
		return 2;
	}
	if (strcmp(o.format, "folded") == 0 || strcmp(o.format, "svg") == 0 || strcmp(o.format, "speedscope") == 0)
		return export_stacks(&o);
	return export_timeline(&o);
}
