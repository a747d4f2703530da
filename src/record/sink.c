/* sink.c - the recording file as a sink (see sink.h). */
#define _GNU_SOURCE
#include "record/sink.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct file_sink {
	struct gs_sink sink; /* first */
	const char *path;
	struct gs_recwriter *w;
	int failed; /* said once already */
};

static int file_start(void *ctx, uint64_t start_ns, char *why, size_t whylen)
{
	struct file_sink *f = ctx;
	int fd = gs_open_output(f->path, why, whylen), err;
	if (fd < 0)
		return fd;
	if ((err = gs_recwriter_open_fd(fd, start_ns, &f->w)) < 0) {
		snprintf(why, whylen, "cannot write the recording %s: %s", f->path, strerror(-err));
		return err;
	}
	return 0;
}

static int file_event(void *ctx, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct file_sink *f = ctx;
	int err = gs_recwriter_add(f->w, r, payload, plen);
	if (err < 0 && !f->failed++)
		gs_err("writing %s failed (%s): the recording stops here; the program keeps running and the summary "
		       "covers what was written",
		       f->path, strerror(-err));
	return err;
}

static int file_flush(void *ctx)
{
	struct file_sink *f = ctx;
	int err = gs_recwriter_flush(f->w);
	if (err < 0 && !f->failed++)
		gs_err("writing %s failed (%s): the recording stops here; the program keeps running", f->path,
		       strerror(-err));
	return err;
}

static int file_close(void *ctx)
{
	struct file_sink *f = ctx;
	int err = 0;
	if (f->w)
		err = gs_recwriter_close(f->w);
	if (err < 0 && !f->failed++)
		gs_err("writing %s: %s", f->path, strerror(-err));
	f->w = NULL;
	return err;
}

struct gs_sink *gs_file_sink_new(const char *path)
{
	struct file_sink *f = gs_calloc(1, sizeof(*f));
	f->path = path;
	f->sink.start = file_start;
	f->sink.event = file_event;
	f->sink.flush = file_flush;
	f->sink.close = file_close;
	f->sink.ctx = f;
	return &f->sink;
}

void gs_file_sink_free(struct gs_sink *s)
{
	if (!s)
		return;
	file_close(s->ctx);
	free(s->ctx);
}
