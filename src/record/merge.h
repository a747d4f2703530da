/* merge.h - the time-ordered merge of the recorder's event streams.
 *
 * The recorder reads events from several streams (one kernel ring per CPU, the inline probes'
 * ring, its own metadata and stack samples): each stream is nearly in time order by itself, the
 * streams are not with each other. Each stream has a queue here. gs_merge_flush() appends to the
 * output, in timestamp order, every queued record older than a watermark (the time before which
 * no stream can still deliver anything), or all of them at the end. Ties keep the order in which
 * the records were added, whatever their queues. A queue that received an older record after a
 * newer one (the kernel reorders rarely) is sorted before merging.
 *
 * Pure: no I/O, no clock; the caller chooses the watermark. Payloads are copied in and handed to
 * emit, which must not keep the pointers. gs_merge_free(NULL) does nothing.
 */
#ifndef GS_MERGE_H
#define GS_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/recfile.h"

struct gs_merge;

typedef void (*gs_merge_emit_fn)(const struct gs_rec *r, const void *payload, size_t plen, void *arg);

struct gs_merge *gs_merge_new(int nqueues);
void gs_merge_free(struct gs_merge *m);

/* Queues a copy of r and of its payload (plen bytes, may be 0) on queue q (0 <= q < nqueues). */
void gs_merge_add(struct gs_merge *m, int q, const struct gs_rec *r, const void *payload, size_t plen);

/* The same for a record without payload, written in place: a record of time `time` (every
 * other field 0) queued on q, for the caller to fill in before its next call on m (its time
 * stays). For a hot stream, it saves the copy of a record just built field by field (a wide
 * load of narrow stores just made stalls the CPU). */
struct gs_rec *gs_merge_next(struct gs_merge *m, int q, uint64_t time);

/* Emits and forgets every queued record with time < watermark (every record when final), in
 * time order, ties in the order added. Returns how many were emitted. */
size_t gs_merge_flush(struct gs_merge *m, uint64_t watermark, int final, gs_merge_emit_fn emit, void *arg);

/* Records queued and not yet emitted. */
size_t gs_merge_pending(const struct gs_merge *m);

#endif
