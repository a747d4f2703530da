/* targets.h - which processes `serve` and `top` record: the ones given with -p (again for
 * more, or a comma-separated list), every CPython of the host with --all-python (narrowed by
 * --match REGEX and --user NAME: record/discover.h), or a COMMAND they run.
 *
 * Contract: gs_targets_option takes the options 'p', 'A' (--all-python), 'm' (--match) and 'u'
 * (--user) of the command's getopt table (GS_TARGETS_LONGOPTS): 1 taken, 0 not one of them, 2 a
 * usage error (said). gs_targets_apply checks the combination (exactly one of -p, --all-python
 * or a COMMAND; --match and --user only with --all-python), starts the discovery, and sets the
 * recorder's fields: pids and npids (pid: the first), or discover, discover_ctx and keep_running;
 * 0, or the exit code (2 usage, 1 failure; said). gs_targets_free ends the discovery (after the
 * recording).
 */
#ifndef GS_CMD_TARGETS_H
#define GS_CMD_TARGETS_H

#include <getopt.h>
#include <sys/types.h>

#include "record/discover.h"
#include "record/recorder.h"

#define GS_TARGETS_MAX 256

#define GS_TARGETS_LONGOPTS                                                                \
	{ "pid", required_argument, NULL, 'p' }, { "all-python", no_argument, NULL, 'A' }, \
		{ "match", required_argument, NULL, 'm' },                                 \
	{                                                                                  \
		"user", required_argument, NULL, 'u'                                       \
	}

struct gs_targets {
	pid_t pids[GS_TARGETS_MAX];
	int npids;
	int all_python;
	const char *match, *user;
	struct gs_discover *discover;
};

int gs_targets_option(struct gs_targets *t, int opt, const char *arg);
int gs_targets_apply(struct gs_targets *t, struct gs_record_opts *o, int have_command, const char *cmd);
/* --all-python: the processes running now, as the recorder's pids (the discovery then gives it
 * the later ones), waiting for a first one when there is none (a poll a second); 0, or 1 when a
 * SIGINT, SIGTERM or SIGHUP came first (nothing to record: the command ends with 0). Without
 * --all-python: 0 at once. */
int gs_targets_first(struct gs_targets *t, struct gs_record_opts *o);
void gs_targets_free(struct gs_targets *t);

#endif
