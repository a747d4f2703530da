/* blame.h - who held the GIL while each thread waited, and the set of waiting threads.
 *
 * Contract: each GIL (struct gs_gilstat) keeps its waiting threads in an unordered set (add and
 * remove in O(1): each thread knows its position in it) and a log of its contended time: one
 * segment per change of holder while at least one thread waited, on a clock that runs only while
 * someone waits. A GIL step costs O(1) here, whatever the number of waiters. A waiter's share is
 * settled when its wait ends (or at gs_blame_settle): the segments overlapping its wait are added
 * to its blame list (struct gs_thread.blame) in time order, one lookup per segment (a hash when
 * the list is long), so a thread's blame list is the same, entry for entry and in the same order,
 * as if every waiter were charged at every step. Segments no waiter can still need are dropped:
 * the log is as long as the longest wait in progress, not the recording. Call gs_blame_advance
 * before any change of holder or of the waiter set, at the time of that change.
 */
#ifndef GS_ANALYSIS_BLAME_H
#define GS_ANALYSIS_BLAME_H

#include "analysis/analysis.h"

/* Accounts the GIL's time since its last step: held, contended, and the waiters' shares. */
void gs_blame_advance(struct gs_analysis *a, struct gs_gilstat *g, uint64_t now);
/* t starts waiting for g. */
void gs_blame_waiter_add(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t);
/* t stops waiting for g: its share is settled. No-op when t is not waiting for g. */
void gs_blame_waiter_remove(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t);
/* Settles the shares of g's waiters up to g's last step (they go on waiting). */
void gs_blame_settle(struct gs_analysis *a, struct gs_gilstat *g);
/* Forgets what t's wait accrued before g's last step, and t's blame list (accounting restarts). */
void gs_blame_restart(struct gs_gilstat *g, struct gs_thread *t);
/* Frees g's set and log, and the lookup table. */
void gs_blame_free_gil(struct gs_gilstat *g);
void gs_blame_free(struct gs_analysis *a);

#endif
