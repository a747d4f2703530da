/* forget.h - what a live analysis drops of the processes that ended (live.h), so that its memory
 * does not grow with the number of processes ever seen.
 *
 * Contract: gs_analysis_forget_procs removes from a->procs the processes that ended (their main
 * thread exited, or their PROC_EXIT was seen), of which no thread is left in a->threads (nor a
 * thread whose GIL is theirs), and for which forget(ctx, p) says 1 (asked of those only: the
 * callback may act on its answer); with each its images (gs_meta_free) and its GILs (their waiter
 * sets and blame logs). The remaining processes and GILs keep their order; every index into
 * a->gils (threads' gil_index, processes' main_gil) is remapped, and moved(ctx, from, to), when
 * not NULL, is called for each GIL that moves, in increasing order, so a caller's table indexed
 * like a->gils follows (entries at and past the new a->ngils are the caller's to clear). Nothing
 * else changes: threads keep their places and figures, the run's totals (records, lost events,
 * the top holds) stay. Returns the number of processes removed. A non-live analysis never calls
 * it: reports and exports keep every process.
 */
#ifndef GS_ANALYSIS_FORGET_H
#define GS_ANALYSIS_FORGET_H

#include <stddef.h>

#include "analysis/analysis.h"

size_t gs_analysis_forget_procs(struct gs_analysis *a, int (*forget)(void *ctx, const struct gs_process *p),
				void (*moved)(void *ctx, size_t from, size_t to), void *ctx);

#endif
