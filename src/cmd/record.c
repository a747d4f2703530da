/* cmd/record.c - `gilscope record`: its options, giltracer's conveniences (-m, SCRIPT.py,
 * --import) turned into a command, the recorder (record/recorder.h), then the summary and the
 * HTML page from the recording it wrote. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "base/util.h"
#include "cmd/live_sink.h"
#include "cmd/metrics_http.h"
#include "output/html.h"
#include "output/report.h"
#include "record/counters.h"
#include "record/recorder.h"
#include "record/sched.h"
#include "record/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct record_cmd {
	struct gs_record_opts rec;
	const char *output; /* the recording file */
	int json;           /* print the summary as JSON */
	int no_summary;
	const char *html;    /* write the HTML report there too */
	const char *module;  /* giltracer's -m MODULE: run python -m MODULE ARGS */
	const char *imports; /* giltracer's --import a,b: imported before the recording counts */
	struct gs_counter_spec counters[GS_COUNTERS_MAX]; /* -e, --sample-event */
	const char *metrics; /* --metrics HOST:PORT: serve /metrics while recording (cmd/metrics_http.h) */
	pid_t pids[64];      /* -p, given once or more, each PID or PID,PID,... */
};

static void summary(const struct record_cmd *o, const struct gs_record_result *res)
{
	struct gs_analysis a;
	char why[512];
	if (o->no_summary)
		return;
	if (gs_analysis_load(&a, o->output, NULL, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return;
	}
	if (o->json)
		gs_report_json(&a, stderr);
	else
		gs_report_text(&a, stderr);
	if (!o->json && res->have_python)
		fprintf(stderr,
			"\nNext: gilscope blame %s (who held the GIL while each thread waited, and where);\n"
			"      gilscope export --format html %s -o report.html (timeline and flame graphs)\n",
			o->output, o->output);
	gs_analysis_free(&a);
	if (res->corrupt || res->throttled)
		gs_warn("%lu malformed kernel records skipped, %lu throttling notices", (unsigned long)res->corrupt,
			(unsigned long)res->throttled);
}

/* record --html: the report page of the recording just made. */
static void write_html(const struct record_cmd *o)
{
	char why[512];
	FILE *h = gs_fopen_output(o->html, why, sizeof(why));
	if (!h) {
		gs_err("%s", why);
		return;
	}
	if (gs_html_report(o->output, NULL, h, why, sizeof(why)) < 0)
		gs_err("%s", why);
	if (fclose(h) != 0)
		gs_err("writing %s: %s", o->html, strerror(errno));
	else
		gs_info("HTML report: %s", o->html);
}

/* giltracer's conveniences. With --import the command becomes a small bootstrap: import the
 * modules, tell gilscope through an inherited pipe (GILSCOPE_READY_FD), then run the module or
 * script as __main__; gilscope marks that moment and the report counts from it. */
static int record_giltracer(const struct record_cmd *o, struct gs_record_result *res)
{
	struct gs_record_opts c = o->rec;
	const char *python = getenv("PYTHON");
	char **argv = NULL, *boot = NULL;
	size_t n = 0, i = 0;
	int ret, script = 0;

	if (o->rec.pid > 0)
		return gs_record(&o->rec, res);
	if (!python || !*python)
		python = "python3";
	while (o->rec.argv[n])
		n++;
	if (!o->module && n > 0) {
		size_t l = strlen(o->rec.argv[0]);
		script = l > 3 && strcmp(o->rec.argv[0] + l - 3, ".py") == 0 && access(o->rec.argv[0], X_OK) != 0;
	}
	if (!o->module && !script && !o->imports)
		return gs_record(&o->rec, res);
	if (!o->module && !script) {
		gs_err("--import needs -m MODULE or a SCRIPT.py to run after the imports");
		return 2;
	}
	argv = gs_calloc(n + 8, sizeof(char *));
	argv[i++] = (char *)python;
	if (o->imports) {
		const char *target = o->module ? o->module : o->rec.argv[0];
		size_t blen = strlen(o->imports) * 2 + strlen(target) * 2 + 1024;
		boot = gs_malloc(blen);
		snprintf(boot, blen,
			 "import os, sys, runpy\n"
			 "for _m in %c%s%c.split(','):\n"
			 "    _m = _m.strip()\n"
			 "    if _m: __import__(_m)\n"
			 "_fd = int(os.environ.pop('GILSCOPE_READY_FD', '-1'))\n"
			 "if _fd >= 0:\n"
			 "    os.write(_fd, b'!'); os.close(_fd)\n"
			 "sys.argv = sys.argv[1:]\n"
			 "%s(sys.argv[0], run_name='__main__'%s)\n",
			 '"', o->imports, '"', o->module ? "runpy.run_module" : "runpy.run_path",
			 o->module ? ", alter_sys=True" : "");
		if (strchr(o->imports, '"') || strchr(o->imports, '\\') || strchr(o->imports, '\n')) {
			gs_err("--import takes module names separated by commas");
			free(boot);
			free(argv);
			return 2;
		}
		argv[i++] = "-c";
		argv[i++] = boot;
		argv[i++] = (char *)target;
		for (size_t k = script ? 1 : 0; k < n; k++)
			argv[i++] = o->rec.argv[k];
	} else if (o->module) {
		argv[i++] = "-m";
		argv[i++] = (char *)o->module;
		for (size_t k = 0; k < n; k++)
			argv[i++] = o->rec.argv[k];
	} else {
		for (size_t k = 0; k < n; k++)
			argv[i++] = o->rec.argv[k];
	}
	c.argv = argv;
	c.imports = o->imports != NULL;
	if (o->imports) {
		char text[1024], rest[900];
		gs_argv_join(rest, sizeof(rest), o->rec.argv);
		snprintf(text, sizeof(text), "%s %s%s%s (counted after importing %s)", python, o->module ? "-m " : "",
			 o->module ? o->module : "", rest, o->imports);
		c.command_text = gs_strdup(text);
	}
	ret = gs_record(&c, res);
	free((char *)c.command_text);
	free(boot);
	free(argv);
	return ret;
}

/* record --metrics: the live figures as a second sink, served over HTTP. 0, or 1 said. */
static int metrics_start(const struct record_cmd *o, struct gs_live **live, struct gs_metrics_http **http,
			 struct gs_sink **sink)
{
	char why[512];
	sigset_t mask;
	*live = gs_live_new();
	gs_helper_signals_begin(&mask);
	*http = gs_metrics_http_start(o->metrics, *live, 0, why, sizeof(why));
	gs_helper_signals_end(&mask);
	if (!*http) {
		gs_err("%s", why);
		gs_live_free(*live);
		*live = NULL;
		return 1;
	}
	gs_info("serving the GIL metrics at %s", gs_metrics_http_url(*http));
	*sink = gs_live_sink_new(*live);
	return 0;
}

/* The recording file, and the live metrics with --metrics, as the recorder's sinks. */
static int record_to_sinks(struct record_cmd *o, struct gs_record_result *res)
{
	struct gs_sink *sinks[2] = { NULL, NULL };
	struct gs_metrics_http *http = NULL;
	struct gs_live *live = NULL;
	int ret;
	memset(res, 0, sizeof(*res));
	sinks[0] = gs_file_sink_new(o->output);
	o->rec.sinks = sinks;
	o->rec.nsinks = 1;
	if (o->metrics && (ret = metrics_start(o, &live, &http, &sinks[1])) != 0) {
		gs_file_sink_free(sinks[0]);
		return ret;
	}
	o->rec.nsinks += o->metrics != NULL;
	ret = record_giltracer(o, res);
	gs_metrics_http_stop(http);
	gs_live_sink_free(sinks[1]);
	gs_live_free(live);
	gs_file_sink_free(sinks[0]);
	return ret;
}

static const struct option record_opts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "pid", required_argument, NULL, 'p' },
	{ "duration", required_argument, NULL, 'd' },
	{ "mmap-pages", required_argument, NULL, 'M' },
	{ "module", required_argument, NULL, 'm' },
	{ "import", required_argument, NULL, 'I' },
	{ "no-gil-detect", no_argument, NULL, 'G' },
	{ "state-detect", no_argument, NULL, 'S' },
	{ "gil-detect", no_argument, NULL, 'g' },
	{ "json", no_argument, NULL, 'J' },
	{ "no-summary", no_argument, NULL, 'N' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "gil-watchpoint", no_argument, NULL, 'W' },
	{ "uprobes", no_argument, NULL, 'U' },
	{ "sample-rate", required_argument, NULL, 'r' },
	{ "html", required_argument, NULL, 'H' },
	{ "native", no_argument, NULL, 'n' },
	{ "native-stack-size", required_argument, NULL, 'k' },
	{ "sched", required_argument, NULL, 'Z' },
	{ "sync-fd", required_argument, NULL, 'Y' },
	{ "event", required_argument, NULL, 'e' },
	{ "sample-event", required_argument, NULL, 'E' },
	{ "no-children", no_argument, NULL, 'C' },
	{ "wait-children", no_argument, NULL, 'w' },
	{ "no-fork-watch", no_argument, NULL, 'F' },
	{ "no-exec-stop", no_argument, NULL, 'K' },
	{ "exec-stop", no_argument, NULL, 'L' },
	{ "fork-watch", no_argument, NULL, 'A' },
	{ "python-only", no_argument, NULL, 'P' },
	{ "metrics", required_argument, NULL, 'X' },
	{ NULL, 0, NULL, 0 },
};

/* The discover hook's test double (recorder.h): with GILSCOPE_TEST_DISCOVER=FILE set, the pids
 * FILE lists (blank-separated) at each call. Tests only; the discovery itself is serve's. */
static size_t test_discover(void *ctx, pid_t *out, size_t max)
{
	char buf[1024], *p = buf;
	long n = gs_read_file(ctx, buf, sizeof(buf) - 1);
	size_t k = 0;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	while (*p && k < max) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 0 && v <= 0x7fffffff)
			out[k++] = (pid_t)v;
		p = end;
	}
	return k;
}

/* -p PID or -p PID,PID,...: added to o->pids (o->rec.pid stays the first). 0, or 2 after a usage
 * error said. */
static int parse_pids(struct record_cmd *o, const char *arg)
{
	char one[32];
	const char *p = arg;
	while (*p) {
		size_t len = strcspn(p, ",");
		uint64_t v;
		int dup = 0;
		snprintf(one, sizeof(one), "%.*s", (int)(len < sizeof(one) - 1 ? len : sizeof(one) - 1), p);
		if (len >= sizeof(one) || gs_parse_u64(one, &v) < 0 || v == 0 || v > 0x7fffffff) {
			gs_usage_error("invalid process id '%s'", arg);
			return 2;
		}
		for (int i = 0; i < o->rec.npids; i++)
			dup |= o->pids[i] == (pid_t)v;
		if (!dup && o->rec.npids >= (int)GS_ARRAY_SIZE(o->pids)) {
			gs_usage_error("too many processes given with -p (%s at most)", "64");
			return 2;
		}
		if (!dup)
			o->pids[o->rec.npids++] = (pid_t)v;
		p += len;
		if (*p == ',')
			p++;
	}
	if (!o->rec.npids) {
		gs_usage_error("invalid process id '%s'", arg);
		return 2;
	}
	o->rec.pids = o->pids;
	o->rec.pid = o->pids[0];
	return 0;
}

/* The options that take a value (c, with optarg arg) into o: 0, 2 after a usage error said, or
 * -1 when c is not one of them. */
static int parse_value(struct record_cmd *o, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 'p':
		return parse_pids(o, arg);
	case 'd': {
		char *end;
		errno = 0;
		o->rec.duration = strtod(arg, &end);
		if (errno || *end || !(o->rec.duration > 0) || o->rec.duration > 1e7) {
			gs_usage_error("invalid duration '%s' (seconds, > 0)", arg);
			return 2;
		}
		break;
	}
	case 'M':
		if (gs_parse_u64(arg, &v) < 0 || v < 8 || v > (1u << 20) || (v & (v - 1))) {
			gs_usage_error("invalid --mmap-pages '%s' (a power of two from 8 to 1048576)", arg);
			return 2;
		}
		o->rec.mmap_pages = (unsigned)v;
		break;
	case 'Y':
		if (gs_parse_u64(arg, &v) < 0 || v < 1 || v > 1000000 || fcntl((int)v, F_GETFD) < 0) {
			gs_usage_error("--sync-fd '%s' is not an open file descriptor (1 or more) of gilscope", arg);
			return 2;
		}
		o->rec.sync_fd = (int)v;
		fcntl(o->rec.sync_fd, F_SETFD, FD_CLOEXEC); /* gilscope's, not the command's */
		break;
	case 'k':
		if (gs_parse_u64(arg, &v) < 0 || v < 512 || v > 65000) {
			gs_usage_error("invalid --native-stack-size '%s' (bytes, 512 to 65000)", arg);
			return 2;
		}
		o->rec.native = 1;
		o->rec.native_stack = (unsigned)(v + 7) / 8 * 8 > 65000 ? 64992u : (unsigned)(v + 7) / 8 * 8;
		break;
	case 'Z':
		if (strcmp(arg, "auto") == 0) {
			o->rec.sched_choice = GS_SCHED_AUTO;
		} else if (strcmp(arg, "bpf") == 0) {
			o->rec.sched_choice = GS_SCHED_BPF;
		} else if (strcmp(arg, "perf") == 0) {
			o->rec.sched_choice = GS_SCHED_PERF;
		} else {
			gs_usage_error("invalid --sched '%s' (bpf, perf or auto)", arg);
			return 2;
		}
		break;
	case 'r':
		if (gs_parse_u64(arg, &v) < 0 || v > 10000) {
			gs_usage_error("invalid --sample-rate '%s' (samples per second, 0 to 10000)", arg);
			return 2;
		}
		o->rec.sample_hz = (unsigned)v;
		break;
	case 'e':
	case 'E': {
		char why[256];
		int n = gs_counters_parse(arg, c == 'E', o->counters, o->rec.ncounters, why, sizeof(why));
		if (n < 0) {
			gs_usage_error("%s", why);
			return 2;
		}
		o->rec.ncounters = n;
		o->rec.counters = o->counters;
		break;
	}
	default:
		return -1;
	}
	return 0;
}

int gs_cmd_record(int argc, char **argv)
{
	struct record_cmd o = { .output = "gilscope.rec",
				.rec = { .mmap_pages = 2048, .sample_hz = 1000, .descendants = 1 } };
	struct gs_record_result res;
	int ret;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:p:d:m:r:e:qvh", record_opts, NULL)) != -1) {
		int err = parse_value(&o, c, optarg);
		if (err > 0)
			return err;
		if (err == 0)
			continue;
		switch (c) {
		case 'o':
			o.output = optarg;
			break;
		case 'm':
			o.module = optarg;
			goto args_follow; /* like python -m: what follows are the module's arguments */
		case 'I':
			o.imports = optarg;
			break;
		case 'G':
			o.rec.no_gil = 1;
			break;
		case 'g':
			o.rec.no_gil = 0;
			break;
		case 'S':
			break; /* thread states are always recorded */
		case 'J':
			o.json = 1;
			break;
		case 'N':
			o.no_summary = 1;
			break;
		case 'W':
			o.rec.gil_watchpoint = 1;
			break;
		case 'U':
			o.rec.no_inline = 1;
			break;
		case 'C':
			o.rec.no_children = 1;
			break;
		case 'w':
			o.rec.wait_children = 1;
			break;
		case 'F':
			o.rec.no_fork_watch = 1;
			break;
		case 'K':
			o.rec.no_exec_stop = 1;
			break;
		case 'L':
			o.rec.exec_stop = 1;
			break;
		case 'A':
			o.rec.fork_watch = 1;
			break;
		case 'P':
			o.rec.python_only = 1;
			break;
		case 'H':
			o.html = optarg;
			break;
		case 'X':
			o.metrics = optarg;
			break;
		case 'n':
			o.rec.native = 1;
			break;
		case 'q':
			gs_verbose = 0;
			break;
		case 'v':
			gs_verbose = 2;
			break;
		case 'h':
			gs_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
args_follow:
	if (o.rec.pid > 0 && (optind < argc || o.module)) {
		gs_usage_error("%s", "give either -p PID or a COMMAND, not both");
		return 2;
	}
	if (o.rec.pid <= 0 && optind >= argc && !o.module) {
		gs_usage_error("%s", "record needs a COMMAND to run (after --) or -p PID");
		return 2;
	}
	if (o.rec.pid <= 0 && o.rec.duration > 0) {
		gs_usage_error("%s", "--duration applies to -p PID; a launched COMMAND is recorded until it exits");
		return 2;
	}
	if ((o.rec.exec_stop != 0) + (o.rec.fork_watch != 0) + (o.rec.no_fork_watch != 0) + (o.rec.no_exec_stop != 0) >
		    1 &&
	    o.rec.pid <= 0) {
		gs_usage_error("%s", "give one of --exec-stop (the default), --fork-watch (or --no-exec-stop) and "
				     "--no-fork-watch: each is a way to follow the launched COMMAND's tree");
		return 2;
	}
	if (o.rec.pid > 0 && (o.rec.fork_watch || o.rec.no_fork_watch)) {
		gs_usage_error("%s", "--fork-watch and --no-fork-watch apply to a launched COMMAND; with -p, new "
				     "descendants are stopped at their exec (--no-exec-stop: found by a /proc scan)");
		return 2;
	}
	if (o.rec.no_children)
		o.rec.descendants = 0; /* -p: the given processes alone */
	if (o.rec.pid > 0 && getenv("GILSCOPE_TEST_DISCOVER")) {
		o.rec.discover = test_discover;
		o.rec.discover_ctx = getenv("GILSCOPE_TEST_DISCOVER");
	}
	o.rec.argv = argv + optind;
	ret = record_to_sinks(&o, &res);
	if (res.recorded) {
		summary(&o, &res);
		if (o.html)
			write_html(&o);
	}
	return ret;
}
