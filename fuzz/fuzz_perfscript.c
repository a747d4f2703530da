/* fuzz_perfscript.c - the `perf script` text reader (perfscript.c): every line through
 * gs_perfline_parse (and, as perf map text, gs_perfmap_parse_line), then the whole text through gs_perf2trace in the mode the first byte picks
 * ("gil" or "sched"), its records both written to a recording, read back by the analysis, and fed
 * straight into a second analysis (gs_perf2trace_feed, what `perf2trace` does): the two must agree. */
#include "fuzz.h"

#include "analysis/analysis.h"
#include "cpython/native.h"
#include "import/perfscript.h"
#include "base/recfile.h"
#include "base/util.h"

static char outpath[64];

/* The two ways of the records: a recording, and an analysis fed directly (started at the first
 * record: perfscript starts before any record but those of lines timed 0). */
struct both {
	struct gs_recwriter *w;
	struct gs_analysis a;
	int started;
};

static void both_start(void *ctx, uint64_t start_ns)
{
	struct both *b = ctx;
	gs_recwriter_set_start(b->w, start_ns);
	if (!b->started) {
		gs_analysis_init(&b->a, start_ns);
		b->started = 1;
	} else {
		b->a.start_ns = start_ns;
		if (b->a.last_ns < start_ns)
			b->a.last_ns = start_ns;
	}
}

static int both_add(void *ctx, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct both *b = ctx;
	if (!b->started) {
		gs_analysis_init(&b->a, 0);
		b->started = 1;
	}
	gs_perf2trace_feed(&b->a, r, payload, plen);
	(void)gs_recwriter_add(b->w, r, payload, plen); /* its errors are sticky: seen at close */
	return 0;
}

/* The figures of the two analyses are the same. */
static void same(const struct gs_analysis *x, const struct gs_analysis *y)
{
	if (x->records != y->records || x->gil_events != y->gil_events || x->sched_events != y->sched_events ||
	    x->start_ns != y->start_ns || x->last_ns != y->last_ns || x->nthreads != y->nthreads ||
	    x->nprocs != y->nprocs || x->ngils != y->ngils || x->complete != y->complete)
		abort();
	for (size_t i = 0; i < x->nthreads; i++) {
		const struct gs_thread *s = &x->threads[i], *t = &y->threads[i];
		if (s->tid != t->tid || s->pid != t->pid || s->held_ns != t->held_ns || s->wait_ns != t->wait_ns ||
		    s->run_nogil_ns != t->run_nogil_ns || s->sleeping_ns != t->sleeping_ns ||
		    s->acquisitions != t->acquisitions || s->end_ns != t->end_ns || strcmp(s->name, t->name) != 0)
			abort();
	}
}

static void cleanup(void)
{
	if (outpath[0])
		unlink(outpath);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_perf2trace_stats st;
	static struct both b;
	struct gs_analysis a;
	char why[512], *text;
	const char *mode;
	FILE *in;

	gs_verbose = 0;
	if (!outpath[0]) {
		int fd;
		snprintf(outpath, sizeof(outpath), "/tmp/gilscope-fuzz-perfscript.XXXXXX");
		fd = mkstemp(outpath);
		if (fd < 0)
			abort();
		close(fd);
		atexit(cleanup);
	}
	if (size < 1)
		return 0;
	mode = (data[0] & 1) ? "sched" : "gil";
	data++, size--;

	/* line by line */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = text, *nl; line; line = nl) {
		struct gs_perfline pl;
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (gs_perfline_parse(line, &pl) == 0) {
			/* the fields point into the line */
			if (pl.comm < line || pl.comm + pl.comm_len > line + strlen(line) || pl.event < line ||
			    pl.event + pl.event_len > line + strlen(line) || pl.rest < line ||
			    pl.rest > line + strlen(line))
				abort();
		}
		{
			/* the same text as /tmp/perf-PID.map lines (native.c) */
			uint64_t start, msize;
			const char *name;
			if (gs_perfmap_parse_line(line, &start, &msize, &name) == 0 &&
			    (name < line || name > line + strlen(line) || !msize || start + msize < start))
				abort();
		}
	}
	free(text);

	/* the conversion, and what it wrote */
	in = fmemopen((void *)data, size ? size : 1, "r");
	if (!in)
		return 0;
	if (size == 0)
		fgetc(in);
	if (gs_recwriter_open(outpath, 0, &b.w) == 0) {
		struct gs_recsink sink = { .ctx = &b, .start = both_start, .add = both_add };
		b.started = 0;
		(void)gs_perf2trace(in, mode, &sink, &st);
		gs_recwriter_close(b.w);
		if (!b.started)
			gs_analysis_init(&b.a, 0);
		gs_analysis_finish(&b.a, 0);
		if (gs_analysis_load(&a, outpath, NULL, why, sizeof(why)) == 0) {
			same(&a, &b.a);
			gs_analysis_free(&a);
		}
		gs_analysis_free(&b.a);
	}
	fclose(in);
	return 0;
}
