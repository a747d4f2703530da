/* sink.h - where the recorder delivers its events: in time order, to every sink the command
 * layer registered (the recording file today; live metrics later).
 *
 * start() is called once, when the recording begins (after every check that may refuse to
 * record, so a refusal leaves nothing behind), with the CLOCK_MONOTONIC start time; event() for
 * each record in timestamp order with its payload (NULL when none; valid during the call only);
 * flush() after each batch (at least every 50 ms while recording); close() once at the end. A
 * sink that fails says so itself (one sentence on stderr, naming what failed and what still
 * goes on) and returns -errno: it then receives nothing more, and the recording goes on for the
 * other sinks and for the traced program, which is never disturbed.
 */
#ifndef GS_SINK_H
#define GS_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "base/recfile.h"

struct gs_sink {
	int (*start)(void *ctx, uint64_t start_ns, char *why, size_t whylen); /* -errno + why: nothing recorded */
	int (*event)(void *ctx, const struct gs_rec *r, const void *payload, size_t plen);
	int (*flush)(void *ctx);
	int (*close)(void *ctx); /* -errno when the sink's data is incomplete */
	void *ctx;
	int failed; /* set by the recorder after a sink's first failure */
};

/* The recording file at path (gs_open_output's rules: no symbolic link followed). The returned
 * sink is freed by gs_file_sink_free after its close. */
struct gs_sink *gs_file_sink_new(const char *path);
void gs_file_sink_free(struct gs_sink *s);

#endif
