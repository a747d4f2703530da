/* live_sink.c - a gs_live fed as a recorder sink (live_sink.h). */
#define _GNU_SOURCE
#include "cmd/live_sink.h"
#include "base/util.h"

#include <stdlib.h>

static int live_start(void *ctx, uint64_t start_ns, char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	gs_live_start(ctx, start_ns);
	return 0;
}

static int live_event(void *ctx, const struct gs_rec *r, const void *payload, size_t plen)
{
	gs_live_feed(ctx, r, payload, plen);
	return 0;
}

static int live_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static int live_close(void *ctx)
{
	gs_live_close(ctx);
	return 0;
}

struct gs_sink *gs_live_sink_new(struct gs_live *l)
{
	struct gs_sink *s = gs_calloc(1, sizeof(*s));
	s->start = live_start;
	s->event = live_event;
	s->flush = live_flush;
	s->close = live_close;
	s->ctx = l;
	return s;
}

void gs_live_sink_free(struct gs_sink *s) { free(s); }
