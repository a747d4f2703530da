/* stacks.h - the stacks of a recording: frame and stack definitions, and sample counts.
 *
 * Contract: frame (PYFRAME, NATFRAME) and stack (PYSTACK) records define ids, numbered from 1;
 * an id far beyond those defined so far is ignored as corrupt, so a small record cannot make
 * the tables indexed by id grow without bound. With keep_evals off, the evaluation loop's
 * frames and perf trampolines are left out of stacks when they are defined. A sample (PYSAMPLE)
 * is classified by its thread's state at that instant (the thread state machine in analysis.c
 * is up to date at the sample's time) and counted in an open-addressing table keyed by
 * (kind, tid, stack, peer): per kind for all threads (tid 0) and per thread, the holder's
 * stacks per waiting thread (GS_WHAT_HELD_FOR), and each wait's time by its first sampled stack
 * (gs_stacks_wait_done). Nothing here changes a thread's state.
 */
#ifndef GS_ANALYSIS_STACKS_H
#define GS_ANALYSIS_STACKS_H

#include "analysis/analysis.h"

void gs_stacks_on_frame(struct gs_analysis *a, const struct gs_rec *r, const char *payload, size_t plen);
void gs_stacks_on_stack(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen);
void gs_stacks_on_sample(struct gs_analysis *a, const struct gs_rec *r);
/* Adds amount to the count of stack under (what, tid) (counters.c: the counters' stacks). */
void gs_stacks_count(struct gs_analysis *a, uint32_t what, uint32_t tid, uint64_t stack, uint64_t amount);
/* A wait of d ns ends: its time goes to the stack sampled first during it. */
void gs_stacks_wait_done(struct gs_analysis *a, struct gs_thread *t, uint64_t d);

#endif
