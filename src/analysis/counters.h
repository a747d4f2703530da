/* counters.h (analysis) - perf's counters of a recording (record -e, --sample-event) split by
 * each thread's GIL state.
 *
 * Contract: META counter.N.* facts of the run define counter N (name, period, hardware, stacks,
 * or why it is unavailable); a CTR_SAMPLE record of thread t adds its amount (arg64: 1 for a
 * software event, the period for a hardware sample) to t's counts of counter N in the state t is
 * in at that instant, from the thread state machine (analysis.c), which is up to date at the
 * record's time: held (t holds its GIL), wait (t waits for it), no_gil (a thread of a CPython
 * process, neither), other (a process that is not, or not yet, a CPython gilscope traced). The
 * four parts sum to the total by construction. A CTR_STACK record counts its stack, weighted by
 * the counter's period, under gs_ctr_what(N, state) and gs_ctr_what(N, -1) for all threads, for
 * folded stacks and flame graphs (output/report.h). Each thread's running total of each counter
 * goes to hooks->counter (a trace JSON counter track named "EVENT (TID n)"), at most once a
 * millisecond per thread and counter. Records of counters beyond GS_CTR_MAX are
 * ignored; nothing here changes a thread's state. A recording without counters leaves a->ctr
 * NULL and every thread's ctr NULL (so no output changes).
 */
#ifndef GS_ANALYSIS_COUNTERS_H
#define GS_ANALYSIS_COUNTERS_H

#include "analysis/analysis.h"
#include "base/recfile.h"

#define GS_CTR_MAX 16

enum gs_ctr_state {
	GS_CTR_HELD = 0,
	GS_CTR_WAIT,
	GS_CTR_NOGIL,
	GS_CTR_OTHER,
	GS_CTR_NSTATES
};

/* "held", "wait", "no_gil", "other": the JSON keys and export --state's words */
extern const char *const gs_ctr_state_names[GS_CTR_NSTATES];

struct gs_counter_def {
	char name[48];
	char unavailable[512]; /* why it was not recorded ("" when it was) */
	uint64_t period;       /* events per sample (1: every occurrence) */
	int defined, hardware, stacks;
	uint64_t unattributed; /* events of tasks the recording never otherwise saw */
	uint64_t stack_samples;
};

struct gs_counter_table {
	struct gs_counter_def defs[GS_CTR_MAX];
	int n; /* one past the highest counter defined */
};

/* Is m a counter.* fact? Then it is taken (1), else 0. */
int gs_ctr_on_meta(struct gs_analysis *a, const struct gs_meta *m);
/* A CTR_SAMPLE or CTR_STACK record of thread t (of process p) at the record's time. */
void gs_ctr_on_record(struct gs_analysis *a, const struct gs_process *p, struct gs_thread *t, const struct gs_rec *r);
void gs_ctr_free(struct gs_analysis *a);

/* The state thread t (of process p, may be NULL) is in now, as the counters see it. */
enum gs_ctr_state gs_ctr_state(const struct gs_process *p, const struct gs_thread *t);
/* t's count of counter n in state s (GS_CTR_NSTATES: the total). */
uint64_t gs_ctr_count(const struct gs_thread *t, int n, int s);
/* The counter named name that counts (stacks 0) or takes stacks (stacks 1), -1 when none. */
int gs_ctr_find(const struct gs_analysis *a, const char *name, int stacks);
/* The stack-count kind (struct gs_stack_count.what) of counter n's stacks in state s (-1: all). */
uint32_t gs_ctr_what(int n, int s);

#endif
