/* sched.h - where the recorder's scheduler events come from.
 *
 * A scheduler source delivers, for the tasks it follows and every task they create later, the
 * switches off a CPU (with the state left in), the switches onto one, wake-ups, forks, exits
 * and names (comm, exec), as records the ring decoder (record/ring_decode.h) reads with the
 * source's layout. The recorder asks it to follow the launched command, or every thread of an
 * attached process, and does not know how the events are obtained.
 *
 * Today's source, gs_sched_perf_new(): the sched:sched_switch and sched:sched_wakeup
 * tracepoints opened per followed task and per CPU with inherit=1, plus PERF_RECORD_SWITCH,
 * COMM, FORK and EXIT, into the event list's per-CPU rings. Its creation checks that the kernel
 * allows them (one tracepoint opened for gilscope itself, kept open: closing the last user of a
 * tracepoint waits for an RCU grace period, tens of milliseconds, which would delay the
 * command's start). The attach issue brings a second kind of source.
 */
#ifndef GS_SCHED_H
#define GS_SCHED_H

#include <stddef.h>
#include <sys/types.h>

#include "probe/evlist.h"

struct gs_sched_source {
	/* Start delivering tid's events (and those of the tasks it creates). 0 or -errno + why. */
	int (*follow)(struct gs_sched_source *src, pid_t tid, char *why, size_t whylen);
	void (*free)(struct gs_sched_source *src);
	/* where the tracepoints' fields sit in their raw data (for the decoder) */
	unsigned prev_state_off, prev_state_size, wake_pid_off, wake_pid_size;
	long tp_switch; /* the sched:sched_switch tracepoint's id (the native sampler uses it too) */
};

/* The tracepoint source on tracefs (mounted at tracefs) into el's rings; wakeup_bytes: how
 * much a ring holds before the poller is woken. NULL with why when the kernel refuses. */
struct gs_sched_source *gs_sched_perf_new(const char *tracefs, struct gs_evlist *el, unsigned wakeup_bytes, char *why,
					  size_t whylen);

static inline int gs_sched_follow(struct gs_sched_source *s, pid_t tid, char *why, size_t whylen)
{
	return s->follow(s, tid, why, whylen);
}

static inline void gs_sched_free(struct gs_sched_source *s)
{
	if (s)
		s->free(s);
}

#endif
