/* cmd/serve.c - `gilscope serve`: records processes (-p PID..., --all-python, or a COMMAND it
 * runs: cmd/targets.h) into live figures (analysis/live.h) and serves them to Prometheus at
 * /metrics (metrics_http.h) until they exit (--all-python: until stopped) or SIGINT/SIGTERM,
 * then detaches. No recording file unless -o FILE: then the recording too, rotated at
 * --max-size (record/rotsink.h). */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "base/util.h"
#include "cmd/live_sink.h"
#include "cmd/metrics_http.h"
#include "cmd/targets.h"
#include "record/recorder.h"
#include "record/rotsink.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define GS_SERVE_DEFAULT_LISTEN "127.0.0.1:9464"
/* Python stacks are sampled only to read the threads' names (record/tnames.h): seldom. */
#define GS_SERVE_SAMPLE_HZ 10
#define GS_SERVE_MAX_FILES 5          /* -o: the rotated files kept besides FILE */
#define GS_SERVE_MIN_SIZE (64u << 10) /* --max-size: below, a file would be mostly its preamble */

struct serve_cmd {
	struct gs_record_opts rec;
	struct gs_targets targets;
	const char *listen;
	int per_tid;
	const char *output; /* -o: NULL, no recording file */
	uint64_t max_size;  /* 0: never rotated */
	unsigned max_files;
};

static const struct option serve_opts[] = {
	GS_TARGETS_LONGOPTS,
	{ "listen", required_argument, NULL, 'l' },
	{ "per-tid", no_argument, NULL, 'T' },
	{ "mmap-pages", required_argument, NULL, 'M' },
	{ "output", required_argument, NULL, 'o' },
	{ "max-size", required_argument, NULL, 'S' },
	{ "max-files", required_argument, NULL, 'F' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

void gs_helper_signals_begin(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void gs_helper_signals_end(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

/* SIZE: bytes, or with a K, M or G suffix (powers of 1024). 0, or -1 when malformed. */
static int parse_size(const char *arg, uint64_t *out)
{
	char num[32];
	size_t n = strlen(arg);
	unsigned shift = 0;
	uint64_t v;
	if (n == 0 || n >= sizeof(num))
		return -1;
	switch (arg[n - 1]) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	}
	memcpy(num, arg, n + 1);
	if (shift)
		num[n - 1] = '\0';
	if (gs_parse_u64(num, &v) < 0 || v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

/* One option of serve into c; 0, or the exit code (2: usage, -1: --help done). */
static int serve_option(struct serve_cmd *c, int opt)
{
	uint64_t v;
	int t = gs_targets_option(&c->targets, opt, optarg);
	if (t)
		return t == 1 ? 0 : 2;
	switch (opt) {
	case 'l':
		c->listen = optarg;
		return 0;
	case 'T':
		c->per_tid = 1;
		return 0;
	case 'M':
		if (gs_parse_u64(optarg, &v) < 0 || v < 8 || v > (1u << 20) || (v & (v - 1))) {
			gs_usage_error("invalid --mmap-pages '%s' (a power of two from 8 to 1048576)", optarg);
			return 2;
		}
		c->rec.mmap_pages = (unsigned)v;
		return 0;
	case 'o':
		c->output = optarg;
		return 0;
	case 'S':
		if (parse_size(optarg, &c->max_size) < 0 || c->max_size < GS_SERVE_MIN_SIZE) {
			gs_usage_error("invalid --max-size '%s' (bytes, or with K, M or G; at least 64K)", optarg);
			return 2;
		}
		return 0;
	case 'F':
		if (gs_parse_u64(optarg, &v) < 0 || v < 1 || v > 1000) {
			gs_usage_error("invalid --max-files '%s' (from 1 to 1000)", optarg);
			return 2;
		}
		c->max_files = (unsigned)v;
		return 0;
	case 'q':
		gs_verbose = 0;
		return 0;
	case 'v':
		gs_verbose = 2;
		return 0;
	case 'h':
		gs_usage(stdout);
		return -1;
	default:
		fprintf(stderr, "Try 'gilscope --help'.\n");
		return 2;
	}
}

/* The command line into c; 0, or the exit code (2: usage, -1: --help done). */
static int serve_parse(int argc, char **argv, struct serve_cmd *c)
{
	int opt, ret, max_files_given = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+p:l:o:qvh", serve_opts, NULL)) != -1) {
		max_files_given |= opt == 'F';
		if ((ret = serve_option(c, opt)) != 0)
			return ret;
	}
	if ((c->max_size || max_files_given) && !c->output) {
		gs_usage_error("%s", "--max-size and --max-files rotate the recording file: give -o FILE too");
		return 2;
	}
	if (max_files_given && !c->max_size) {
		gs_usage_error("%s", "--max-files keeps rotated files: give --max-size SIZE too");
		return 2;
	}
	if ((ret = gs_targets_apply(&c->targets, &c->rec, optind < argc, "serve")) != 0)
		return ret;
	c->rec.argv = argv + optind;
	return 0;
}

int gs_cmd_serve(int argc, char **argv)
{
	struct serve_cmd c = { .rec = { .mmap_pages = 2048, .sample_hz = GS_SERVE_SAMPLE_HZ },
			       .listen = GS_SERVE_DEFAULT_LISTEN,
			       .max_files = GS_SERVE_MAX_FILES };
	struct gs_record_result res;
	struct gs_metrics_http *http = NULL;
	struct gs_live *live = NULL;
	struct gs_sink *sinks[2] = { NULL, NULL };
	char why[512];
	sigset_t mask;
	int ret;

	ret = serve_parse(argc, argv, &c);
	if (ret)
		return ret < 0 ? 0 : ret;
	live = gs_live_new();
	gs_helper_signals_begin(&mask);
	http = gs_metrics_http_start(c.listen, live, c.per_tid, why, sizeof(why));
	gs_helper_signals_end(&mask);
	if (!http) {
		gs_err("%s", why);
		ret = 1;
		goto cleanup;
	}
	gs_info("serving the GIL metrics at %s", gs_metrics_http_url(http));
	sinks[0] = gs_live_sink_new(live);
	if (c.output)
		sinks[1] = gs_rotating_sink_new(c.output, c.max_size, c.max_files);
	c.rec.sinks = sinks;
	c.rec.nsinks = c.output ? 2 : 1;
	if (gs_targets_first(&c.targets, &c.rec) != 0)
		ret = 0; /* stopped before any CPython appeared */
	else
		ret = gs_record(&c.rec, &res);
cleanup:
	gs_metrics_http_stop(http);
	gs_targets_free(&c.targets);
	gs_rotating_sink_free(sinks[1]);
	gs_live_sink_free(sinks[0]);
	gs_live_free(live);
	return ret;
}
