/* emit.h - how a part of the recorder adds a record of its own (metadata, frame and stack
 * definitions, stack samples) to the recording: through the merge (merge.h), on the stream
 * reserved for the recorder's own records, so that it is written in time order with the
 * kernel's events. A reader meets metadata at the moment it became true (a process is CPython
 * from its exec on, not before).
 */
#ifndef GS_EMIT_H
#define GS_EMIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/recfile.h"
#include "record/merge.h"

struct gs_emit {
	struct gs_merge *merge;
	int queue; /* the recorder's own stream */
};

/* r as it is (its time included), with a copy of payload. */
void gs_emit_rec(const struct gs_emit *e, const struct gs_rec *r, const void *payload, size_t plen);
/* A META record "key\0value\0" for pid (0: the run), timed now. */
void gs_emit_meta(const struct gs_emit *e, uint32_t pid, const char *key, const char *value);
/* The same for a fact that was true since asof, earlier (META's arg64: an exec's argv that gilscope
 * learned after the process had gone on, perhaps to its next exec). */
void gs_emit_meta_asof(const struct gs_emit *e, uint32_t pid, uint64_t asof, const char *key, const char *value);
/* The same for a number (GS_META_U64). */
void gs_emit_meta_u64(const struct gs_emit *e, uint32_t pid, const char *key, uint64_t value);

#endif
