/* counters.h - `record -e EVENT[,EVENT...]` and `--sample-event EVENT[/PERIOD]`: perf's counters
 * per thread, for the analysis to split by GIL state (analysis/counters.h).
 *
 * gs_counters_parse() reads perf's event names (cycles, instructions, cache-misses,
 * L1-dcache-load-misses, branch-misses; page-faults, minor-faults, major-faults,
 * context-switches, cpu-migrations, and perf's short aliases), each optionally with /PERIOD, into
 * specs; a malformed list is a usage error, an unknown name is not (it is said when the
 * recording starts, like any unavailable event). gs_counters_new() tries each event on gilscope
 * itself and says, in one line on stderr and in the recording (META counter.N.unavailable), why
 * one cannot be counted here (no PMU: most virtual machines; kernel.perf_event_paranoid; an
 * unknown name); the recording goes on with the others. gs_counters_follow() opens the
 * available ones for a task (inherited by the tasks it creates) into the event list's per-CPU
 * rings, with the sample id kind GS_PK_COUNTER + N, so that the ring decoder makes CTR_SAMPLE
 * records of them. Software events sample every occurrence (period 1: exact, with its
 * timestamp); hardware events one sample per period (perf's own counts between samples are not
 * read: rdpmc in the trampolines is not done). A --sample-event counter is opened apart, with
 * its period, waking the recorder at each sample (wakeup_events 1) so that the collector reads
 * the thread's Python stack right after the occurrence (gs_counters_stack_for), not at it. A
 * software event is opened once per task: --sample-event on one -e counts too takes every
 * PERIOD-th sample of the counting event (the kernel mislabels samples of two software events
 * of one kind on a task), and an event given twice is refused (said like an unavailable one).
 * Counter N is described by META counter.N.name, .period (u64), .hardware (u64), .stacks (u64).
 * gs_counters_free(NULL) does nothing.
 */
#ifndef GS_REC_COUNTERS_H
#define GS_REC_COUNTERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "probe/evlist.h"
#include "record/emit.h"

#define GS_COUNTERS_MAX 16

struct gs_counter_spec {
	char name[48];   /* as the user wrote it (without /PERIOD) */
	uint64_t period; /* 0: the event's default */
	int stacks;      /* --sample-event: Python stacks at its samples instead of counts */
};

/* Appends list's events ("a,b/1000,...") to specs (n so far, at most GS_COUNTERS_MAX); stacks
 * marks them as --sample-event ones. The new count, or -EINVAL with why (an empty name, a period
 * that is not a number from 1 to 2^40, too many events). */
int gs_counters_parse(const char *list, int stacks, struct gs_counter_spec *specs, int n, char *why, size_t whylen);

struct gs_counters;

/* Checks every spec against this kernel and machine (each unavailable one said on stderr and in
 * the recording through emit), and describes the others in the recording. NULL when n is 0. */
struct gs_counters *gs_counters_new(const struct gs_counter_spec *specs, int n, struct gs_evlist *el,
				    const struct gs_emit *emit);
/* Opens the available counters for tid into the event list (before gs_evlist_index). A counter
 * that cannot be opened for it is said once and left out for this task. Returns how many failed. */
int gs_counters_follow(struct gs_counters *c, pid_t tid);
/* The events one sample of counter n stands for (1: every occurrence is a sample). */
uint64_t gs_counters_period(const struct gs_counters *c, int n);
/* A sample of counter n was read: the counter whose stack to take for it (n itself for a
 * --sample-event counter, the one riding on n every PERIOD samples), or -1. */
int gs_counters_stack_for(struct gs_counters *c, int n);
/* Does any available counter take stacks (--sample-event)? */
int gs_counters_have_stacks(const struct gs_counters *c);
/* Does counter n take stacks (--sample-event) rather than count? */
int gs_counters_takes_stacks(const struct gs_counters *c, int n);
void gs_counters_free(struct gs_counters *c);

#endif
