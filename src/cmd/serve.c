/* cmd/serve.c - `gilscope serve`: records a process (-p PID, or a COMMAND it runs) into live
 * figures (analysis/live.h), writes no recording file, and serves them to Prometheus at
 * /metrics (metrics_http.h) until the process exits or SIGINT/SIGTERM, then detaches. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "base/util.h"
#include "cmd/live_sink.h"
#include "cmd/metrics_http.h"
#include "record/recorder.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define GS_SERVE_DEFAULT_LISTEN "127.0.0.1:9464"
/* Python stacks are sampled only to read the threads' names (record/tnames.h): seldom. */
#define GS_SERVE_SAMPLE_HZ 10

static const struct option serve_opts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "listen", required_argument, NULL, 'l' },
	{ "per-tid", no_argument, NULL, 'T' },
	{ "all-python", no_argument, NULL, 'A' },
	{ "mmap-pages", required_argument, NULL, 'M' },
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

/* Options into o and *listen, *per_tid; 0, or the exit code (2: usage, 0: --help). */
static int serve_parse(int argc, char **argv, struct gs_record_opts *o, const char **listen, int *per_tid)
{
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:l:qvh", serve_opts, NULL)) != -1) {
		uint64_t v;
		switch (c) {
		case 'p':
			if (gs_parse_u64(optarg, &v) < 0 || v == 0 || v > 0x7fffffff) {
				gs_usage_error("invalid process id '%s'", optarg);
				return 2;
			}
			if (o->pid > 0) {
				gs_usage_error("%s", "serve takes one -p PID (run one serve per process)");
				return 2;
			}
			o->pid = (pid_t)v;
			break;
		case 'l':
			*listen = optarg;
			break;
		case 'T':
			*per_tid = 1;
			break;
		case 'A':
			gs_usage_error("%s", "--all-python is not implemented yet: give -p PID or a COMMAND");
			return 2;
		case 'M':
			if (gs_parse_u64(optarg, &v) < 0 || v < 8 || v > (1u << 20) || (v & (v - 1))) {
				gs_usage_error("invalid --mmap-pages '%s' (a power of two from 8 to 1048576)", optarg);
				return 2;
			}
			o->mmap_pages = (unsigned)v;
			break;
		case 'q':
			gs_verbose = 0;
			break;
		case 'v':
			gs_verbose = 2;
			break;
		case 'h':
			gs_usage(stdout);
			return -1;
		default:
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (o->pid > 0 && optind < argc) {
		gs_usage_error("%s", "give either -p PID or a COMMAND, not both");
		return 2;
	}
	if (o->pid <= 0 && optind >= argc) {
		gs_usage_error("%s", "serve needs -p PID or a COMMAND to run (after --)");
		return 2;
	}
	o->argv = argv + optind;
	return 0;
}

int gs_cmd_serve(int argc, char **argv)
{
	struct gs_record_opts o = { .mmap_pages = 2048, .sample_hz = GS_SERVE_SAMPLE_HZ };
	const char *listen = GS_SERVE_DEFAULT_LISTEN;
	struct gs_record_result res;
	struct gs_metrics_http *http = NULL;
	struct gs_live *live = NULL;
	struct gs_sink *sink = NULL;
	char why[512];
	sigset_t mask;
	int per_tid = 0, ret;

	ret = serve_parse(argc, argv, &o, &listen, &per_tid);
	if (ret)
		return ret < 0 ? 0 : ret;
	live = gs_live_new();
	gs_helper_signals_begin(&mask);
	http = gs_metrics_http_start(listen, live, per_tid, why, sizeof(why));
	gs_helper_signals_end(&mask);
	if (!http) {
		gs_err("%s", why);
		ret = 1;
		goto cleanup;
	}
	gs_info("serving the GIL metrics at %s", gs_metrics_http_url(http));
	sink = gs_live_sink_new(live);
	o.sinks = &sink;
	o.nsinks = 1;
	ret = gs_record(&o, &res);
cleanup:
	gs_metrics_http_stop(http);
	gs_live_sink_free(sink);
	gs_live_free(live);
	return ret;
}
