/* stacks.h - `record`'s stack sampler: every thread's Python stack at a fixed rate, merged with
 * its native stack under --native, as samples naming stacks defined once.
 *
 * gs_stacks_start() prepares the Python walker (cpython/pystack.h) for the first CPython found,
 * and under --native the native-stack sampler (record/natsample.h) for its threads;
 * gs_stacks_add() adds the walker of every later CPython process (a child of the command, another
 * -p PID), whose threads are sampled at the same rate, Python frames only, and gs_stacks_forked()
 * a fork() of a sampled one (with its parent's layout, until it execs). Each process sampled
 * has its thread names read too (record/tnames.h). gs_stacks_sample() walks every thread of every
 * process once and emits, through the emitter, a frame definition (PYFRAME or NATFRAME) the first
 * time a frame is seen (two processes' frames never share an id), a stack definition (PYSTACK)
 * the first time a stack is, and one PYSAMPLE per thread. A process that is gone is dropped
 * quietly, its counts kept. gs_stacks_finish() emits the sampler's counts, summed over the
 * processes, as metadata; gs_stacks_free(NULL) does nothing.
 */
#ifndef GS_STACKS_H
#define GS_STACKS_H

#include <stdint.h>

#include "cpython/python.h"
#include "record/emit.h"
#include "record/tidmap.h"

struct gs_stacks_opts {
	unsigned sample_hz;    /* samples per second and thread (0: no sampler) */
	int native;            /* native stacks too */
	unsigned native_stack; /* bytes of user stack copied per native sample (0: default) */
	int ncpu;
	long tp_switch;           /* the sched:sched_switch tracepoint's id (native copies at switch-out) */
	struct gs_tidmap *tidmap; /* CPython's thread ids to host ones (another PID namespace); may be NULL */
	int event_stacks;         /* stacks at counters' occurrences (record --sample-event), even at 0 Hz */
};

struct gs_stacks;

/* NULL when sampling is off or impossible (said on stderr). py must outlive the sampler. */
struct gs_stacks *gs_stacks_start(const struct gs_python *py, const struct gs_stacks_opts *o,
				  const struct gs_emit *emit);
/* Another CPython process (py must outlive the sampler); one with py's pid already sampled (it
 * exec'd) is replaced. 0, or -1 when s is NULL or its stacks cannot be walked (said with -v). */
int gs_stacks_add(struct gs_stacks *s, const struct gs_python *py);
/* Process child was fork()ed from parent: when parent is sampled and child still runs its image
 * (its auxv's AT_RANDOM is the parent's: not exec'd), child is sampled too with the parent's
 * layout, until it ends or gs_stacks_exec(child) (its exec: a CPython it exec'd is added anew). */
void gs_stacks_forked(struct gs_stacks *s, pid_t child, pid_t parent);
void gs_stacks_exec(struct gs_stacks *s, pid_t pid);
/* py is about to be freed (its process ended): the process it describes is no longer sampled, its
 * counts kept. Nothing when s is NULL or py is not sampled. */
void gs_stacks_forget(struct gs_stacks *s, const struct gs_python *py);
void gs_stacks_sample(struct gs_stacks *s);
/* Thread tid's (of process pid) Python stack, read now, as a CTR_STACK record for counter's
 * occurrence at time (record --sample-event: read from memory after the event, not at it). 0, or
 * -1 when the thread's stack could not be read (s NULL, the process gone or not sampled, not one
 * of its Python threads). */
int gs_stacks_event(struct gs_stacks *s, uint32_t pid, uint32_t tid, int counter, uint64_t time);
/* Emits stacks.samples, stacks.errors, stacks.rate_hz and, with --native, the native counts. */
/* Thread tid exited (its EXIT record): what is kept per thread starts afresh for its id. */
void gs_stacks_thread_exited(struct gs_stacks *s, uint32_t tid);
void gs_stacks_finish(struct gs_stacks *s);
void gs_stacks_free(struct gs_stacks *s);

#endif
