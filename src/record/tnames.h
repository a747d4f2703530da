/* tnames.h - `record`'s Python thread names and switch interval, read alongside the stack samples.
 *
 * At a thread's stack sample, when its name was last read 100 ms ago or more (10 ms when the last
 * try found no _bootstrap_inner frame or failed), the Thread object
 * is found through the stack's Thread._bootstrap_inner frame and its `_name` read (cpython/
 * pyname.h); a PYNAME record is emitted when the name is new or changed (a rename is seen within
 * 100 ms of samples); the main thread's (its tid is the pid) is read through the threading
 * module's globals of such a frame. Threads with no Thread object (started by C code or by
 * _thread.start_new_thread) get no record. The main interpreter's switch interval is read on the
 * same 100 ms clock and emitted as the process's python.switch_interval_us fact when it changes.
 * One per CPython process; gs_tnames_counts() adds its threads named and its reads that failed
 * (torn, or the thread gone) to the caller's sums (names.read, names.failed). Costs one hash
 * lookup per sampled thread between reads, and memory per thread ever sampled (a name and a
 * time); gs_tnames_free(NULL) does nothing.
 */
#ifndef GS_TNAMES_H
#define GS_TNAMES_H

#include <stdint.h>

#include "cpython/pystack.h"
#include "record/emit.h"

#define GS_TNAMES_PERIOD_NS 100000000ull /* a thread's name, and the interval, read at most this often */
#define GS_TNAMES_RETRY_NS 10000000ull   /* a thread with no name read yet: tried again this often */

struct gs_tnames;

/* For the CPython in py (which must outlive it), walked by ps. */
struct gs_tnames *gs_tnames_new(const struct gs_python *py, const struct gs_emit *emit);
/* One thread's sample (frames innermost first, from gs_pystacks_sample), at time now. */
void gs_tnames_sample(struct gs_tnames *tn, struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint32_t tid,
		      const struct gs_pyframe *f, int n, uint64_t now);
/* Once per round of samples: the switch interval, when due. */
void gs_tnames_tick(struct gs_tnames *tn, gs_mem_reader read, void *ctx, uint64_t now);
/* Thread tid exited: a thread that gets its id later is named afresh (its name is emitted even
 * when it equals the one before). */
void gs_tnames_forget(struct gs_tnames *tn, uint32_t tid);
void gs_tnames_counts(const struct gs_tnames *tn, uint64_t *named, uint64_t *failed);
void gs_tnames_free(struct gs_tnames *tn);

#endif
