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
 * command's start). Its cost grows with every thread the program creates (each inherits an event
 * per CPU).
 *
 * The BPF source, gs_sched_bpf_new() (record/sched_bpf.h): one BPF program on the scheduler's
 * BTF tracepoints, for the whole machine, keeps the followed processes' events (by tgid, their
 * fork children added) and writes them into one ring buffer, which the source drains itself
 * (drain, fd); its cost does not grow with thread creation. gs_sched_new() picks one: BPF when the
 * kernel allows it, else the tracepoints, saying why in one sentence.
 */
#ifndef GS_SCHED_H
#define GS_SCHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/recfile.h"
#include "probe/evlist.h"

/* One record of a source that drains itself: name is a COMM's NUL-terminated name, else NULL. */
#define GS_SCHED_EXEC_STOPPED 1 /* a COMM's arg64: the exec stopped the process (stop_at_exec) */
#define GS_SCHED_EXEC_RUNNING 2 /* a COMM's arg64: not stopped at its exec, its parent would see it */

typedef void (*gs_sched_deliver_fn)(const struct gs_rec *r, const char *name, void *arg);

struct gs_sched_source {
	const char *name; /* as the recording names it (META sched.source): "bpf", "perf tracepoints" */
	int fd;           /* poll it for the source's own events; -1: they come in the event list's rings */
	/* Delivers the events that arrived since the last call, a LOST record (arg -1) for those the
	 * kernel dropped; NULL when the events come in the event list's rings. */
	void (*drain)(struct gs_sched_source *src, gs_sched_deliver_fn fn, void *arg);
	/* Start delivering tid's events (and those of the tasks it creates). 0 or -errno + why. */
	int (*follow)(struct gs_sched_source *src, pid_t tid, char *why, size_t whylen);
	void (*free)(struct gs_sched_source *src);
	/* Optional (NULL: the source cannot): from now on, a followed process that exec()s a program
	 * not marked plain is stopped (SIGSTOP) before its first instruction, and its exec COMM has
	 * arg64 GS_SCHED_EXEC_STOPPED; whoever handles it lets it go with exec_resume (one whose
	 * parent would see the stop is not stopped: arg64 GS_SCHED_EXEC_RUNNING). If gilscope
	 * dies first, a process of the source's (a deadman) continues every one still stopped. */
	int (*stop_at_exec)(struct gs_sched_source *src, int on);
	/* A process stopped at its exec is let go: no longer noted as stopped, and sent SIGCONT
	 * when cont (0: it stays stopped, a stop of its own came meanwhile). */
	void (*exec_resume)(struct gs_sched_source *src, pid_t pid, int cont);
	/* Optional: the program on device dev (st_dev), inode ino is not CPython: never stopped at. */
	void (*exec_plain)(struct gs_sched_source *src, uint64_t dev, uint64_t ino);
	/* where the tracepoints' fields sit in their raw data (for the decoder) */
	unsigned prev_state_off, prev_state_size, wake_pid_off, wake_pid_size;
	long tp_switch; /* the sched:sched_switch tracepoint's id (the native sampler uses it too) */
};

/* The tracepoint source on tracefs (mounted at tracefs) into el's rings; wakeup_bytes: how
 * much a ring holds before the poller is woken. NULL with why when the kernel refuses. */
struct gs_sched_source *gs_sched_perf_new(const char *tracefs, struct gs_evlist *el, unsigned wakeup_bytes, char *why,
					  size_t whylen);

enum gs_sched_choice {
	GS_SCHED_AUTO = 0, /* the default: BPF when the kernel allows it, else the tracepoints */
	GS_SCHED_BPF,
	GS_SCHED_PERF,
};

/* The source chosen: with GS_SCHED_AUTO a BPF source that cannot load is said (one sentence, on
 * stderr) and replaced by the tracepoints. bpf_ring_bytes: the BPF ring buffer's size. NULL with
 * why when none can be had. */
struct gs_sched_source *gs_sched_new(enum gs_sched_choice choice, const char *tracefs, struct gs_evlist *el,
				     unsigned wakeup_bytes, size_t bpf_ring_bytes, char *why, size_t whylen);

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
