/* sched.c - scheduler events from tracepoints per followed task (see sched.h). */
#define _GNU_SOURCE
#include "record/sched.h"
#include "base/util.h"
#include "probe/perf_event.h"
#include "probe/tracefs.h"
#include "record/ring_decode.h"
#include "record/sched_bpf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TP_SAMPLE (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW)

struct perf_source {
	struct gs_sched_source src; /* first: the interface */
	struct gs_evlist *el;
	unsigned wakeup_bytes;
	long tp_wakeup;
};

static int perf_follow(struct gs_sched_source *src, pid_t tid, char *why, size_t whylen)
{
	struct perf_source *s = (struct perf_source *)src;
	struct perf_event_attr a;
	int err;
	gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)src->tp_switch, TP_SAMPLE);
	a.context_switch = 1;
	a.comm = 1;
	a.comm_exec = 1;
	a.task = 1;
	a.wakeup_watermark = s->wakeup_bytes;
	if ((err = gs_evlist_open(s->el, &a, tid, GS_PK_SWITCH, "the sched:sched_switch tracepoint", why, whylen)) < 0)
		return err;
	gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)s->tp_wakeup, TP_SAMPLE);
	return gs_evlist_open(s->el, &a, tid, GS_PK_WAKEUP, "the sched:sched_wakeup tracepoint", why, whylen);
}

static void perf_free(struct gs_sched_source *src) { free(src); }

/* Reads the tracepoints' ids and raw layouts. 0, or -errno with why. */
static int read_tracepoints(struct perf_source *s, const char *tracefs, char *why, size_t whylen)
{
	struct gs_sched_source *src = &s->src;
	src->tp_switch = gs_tracefs_event_id(tracefs, "sched", "sched_switch");
	s->tp_wakeup = gs_tracefs_event_id(tracefs, "sched", "sched_wakeup");
	if (src->tp_switch < 0 || s->tp_wakeup < 0) {
		snprintf(why, whylen, "cannot read the sched tracepoints' ids under %s/events/sched: %s", tracefs,
			 strerror((int)-(src->tp_switch < 0 ? src->tp_switch : s->tp_wakeup)));
		return -ENOENT;
	}
	if (gs_tracefs_field(tracefs, "sched", "sched_switch", "prev_state", &src->prev_state_off,
			     &src->prev_state_size) < 0 ||
	    gs_tracefs_field(tracefs, "sched", "sched_wakeup", "pid", &src->wake_pid_off, &src->wake_pid_size) < 0) {
		snprintf(why, whylen, "cannot parse the sched tracepoints' formats under %s/events/sched", tracefs);
		return -EINVAL;
	}
	return 0;
}

struct gs_sched_source *gs_sched_perf_new(const char *tracefs, struct gs_evlist *el, unsigned wakeup_bytes, char *why,
					  size_t whylen)
{
	struct perf_source *s = gs_calloc(1, sizeof(*s));
	struct perf_event_attr a;
	int fd;

	s->src.name = "perf tracepoints";
	s->src.fd = -1;
	s->src.follow = perf_follow;
	s->src.free = perf_free;
	s->el = el;
	s->wakeup_bytes = wakeup_bytes;
	if (read_tracepoints(s, tracefs, why, whylen) < 0)
		goto fail;
	gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)s->src.tp_switch, TP_SAMPLE);
	a.inherit = 0;
	fd = gs_perf_open(&a, 0, -1, -1, 0);
	if (fd < 0) {
		gs_perf_strerror(fd, "scheduler tracepoints", why, whylen);
		goto fail;
	}
	gs_evlist_keep(el, fd); /* open until the end (see sched.h) */
	return &s->src;
fail:
	free(s);
	return NULL;
}

struct gs_sched_source *gs_sched_new(enum gs_sched_choice choice, const char *tracefs, struct gs_evlist *el,
				     unsigned wakeup_bytes, size_t bpf_ring_bytes, char *why, size_t whylen)
{
	struct gs_sched_source *s;
	char bwhy[1024];
	if (choice == GS_SCHED_PERF)
		return gs_sched_perf_new(tracefs, el, wakeup_bytes, why, whylen);
	s = gs_sched_bpf_new(tracefs, bpf_ring_bytes, wakeup_bytes, bwhy, sizeof(bwhy));
	if (s)
		return s;
	if (choice == GS_SCHED_BPF) {
		snprintf(why, whylen, "--sched=bpf: %s", bwhy);
		return NULL;
	}
	gs_info("scheduler events from perf tracepoints (slower when threads are created often): %s", bwhy);
	return gs_sched_perf_new(tracefs, el, wakeup_bytes, why, whylen);
}
