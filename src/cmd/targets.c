/* targets.c - -p, --all-python, --match, --user of serve and top (targets.h). */
#define _GNU_SOURCE
#include "cmd/targets.h"
#include "base/util.h"
#include "cmd/cmd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* One -p value: PID or PID,PID,... 0, or 2 said. */
static int add_pids(struct gs_targets *t, const char *arg)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf)) {
		gs_usage_error("invalid process id list '%s' (too long)", arg);
		return 2;
	}
	for (char *tok = buf, *next; tok; tok = next) {
		uint64_t v;
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (gs_parse_u64(tok, &v) < 0 || v == 0 || v > 0x7fffffff) {
			gs_usage_error("invalid process id '%s' (-p PID, again or PID,PID for more)", arg);
			return 2;
		}
		if (t->npids == GS_TARGETS_MAX) {
			gs_usage_error("too many processes at '%s' (at most 256 with -p; --all-python for more)", arg);
			return 2;
		}
		t->pids[t->npids++] = (pid_t)v;
	}
	return 0;
}

int gs_targets_option(struct gs_targets *t, int opt, const char *arg)
{
	switch (opt) {
	case 'p':
		return add_pids(t, arg) ? 2 : 1;
	case 'A':
		t->all_python = 1;
		return 1;
	case 'm':
		t->match = arg;
		return 1;
	case 'u':
		t->user = arg;
		return 1;
	default:
		return 0;
	}
}

int gs_targets_apply(struct gs_targets *t, struct gs_record_opts *o, int have_command, const char *cmd)
{
	char why[512], msg[128];
	if ((t->match || t->user) && !t->all_python) {
		gs_usage_error("%s", "--match and --user narrow --all-python: give --all-python too");
		return 2;
	}
	if ((t->npids > 0) + t->all_python + have_command != 1) {
		snprintf(msg, sizeof(msg), "%s needs one of -p PID, --all-python or a COMMAND to run (after --)", cmd);
		gs_usage_error("%s", msg);
		return 2;
	}
	if (t->npids > 0) {
		o->pid = t->pids[0];
		o->pids = t->pids;
		o->npids = t->npids;
	}
	if (t->all_python) {
		if (gs_discover_new(t->match, t->user, &t->discover, why, sizeof(why)) < 0) {
			gs_usage_error("%s", why);
			return 2;
		}
		o->discover = gs_discover_cb;
		o->discover_ctx = t->discover;
		o->keep_running = 1;
	}
	return 0;
}

void gs_targets_free(struct gs_targets *t)
{
	gs_discover_free(t->discover);
	t->discover = NULL;
}

int gs_targets_first(struct gs_targets *t, struct gs_record_opts *o)
{
	struct timespec second = { .tv_sec = 1 };
	sigset_t set, old;
	size_t n;
	int said = 0, sig = 0;
	if (!t->discover)
		return 0;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	while ((n = gs_discover_poll(t->discover, t->pids, GS_TARGETS_MAX)) == 0) {
		if (!said++)
			gs_info("no CPython process%s%s%s%s%s yet: waiting for one (Ctrl-C to stop)",
				t->match ? " matching '" : "", t->match ? t->match : "", t->match ? "'" : "",
				t->user ? " of user " : "", t->user ? t->user : "");
		sig = sigtimedwait(&set, NULL, &second);
		if (sig > 0)
			break;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
		sig = 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (n == 0)
		return 1;
	t->npids = (int)n;
	o->pid = t->pids[0];
	o->pids = t->pids;
	o->npids = t->npids;
	return 0;
}
