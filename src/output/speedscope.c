/* speedscope.c - speedscope's file format from the stack sample counts (speedscope.h). */
#define _GNU_SOURCE
#include "output/speedscope.h"
#include "analysis/analysis.h"
#include "base/escape.h"

#include <inttypes.h>
#include <stdlib.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

/* Kinds in the order profiles are written (gilscope's order on the command line). */
static const enum gs_stack_what kinds[] = { GS_WHAT_HOLD,   GS_WHAT_WAIT,   GS_WHAT_NOGIL,
					    GS_WHAT_OFFCPU, GS_WHAT_OFFGIL, GS_WHAT_BLOCKING };

struct pass {
	const struct gs_analysis *a;
	FILE *out;
	int weights; /* 0: write the stacks, 1: their weights */
	size_t n;
	uint64_t total, sample_ns;
};

static void one_count(void *ctx, uint64_t stack, uint64_t amount)
{
	struct pass *p = ctx;
	int nf = 0;
	const uint32_t *f = gs_analysis_stack(p->a, stack, &nf);

	fputs(p->n++ ? "," : "", p->out);
	if (p->weights) {
		fprintf(p->out, "%" PRIu64, amount * p->sample_ns);
		return;
	}
	fputc('[', p->out);
	if (!f || !nf) /* the entry after the recording's frames: no Python frame */
		fprintf(p->out, "%zu", p->a->nframes);
	for (int k = nf - 1; f && k >= 0; k--) /* outermost first */
		fprintf(p->out, "%s%u", k == nf - 1 ? "" : ",", f[k] && f[k] <= p->a->nframes ? f[k] - 1 : 0);
	fputc(']', p->out);
}

static void sum(void *ctx, uint64_t stack, uint64_t amount)
{
	struct pass *p = ctx;
	(void)stack;
	p->total += amount * p->sample_ns;
}

static void frames(const struct gs_analysis *a, FILE *out)
{
	fputs("\"shared\":{\"frames\":[", out);
	for (size_t i = 0; i < a->nframes; i++) {
		const struct gs_frame_def *d = &a->frames[i];
		fputs(i ? ",\n{\"name\":" : "\n{\"name\":", out);
		gs_esc_json(out, d->qualname ? d->qualname : "?");
		if (d->filename) {
			fputs(",\"file\":", out);
			gs_esc_json(out, d->filename);
		}
		if (!d->native) /* every Python frame has its line, 0 for one not known (as folded says) */
			fprintf(out, ",\"line\":%d", d->line);
		fputc('}', out);
	}
	fprintf(out, "%s{\"name\":\"[no Python frame]\"}]},\n", a->nframes ? ",\n" : "");
}

static size_t profile(const struct gs_analysis *a, FILE *out, const struct gs_thread *t, enum gs_stack_what what,
		      size_t nprofiles)
{
	struct pass p = { .a = a, .out = out, .sample_ns = gs_analysis_sample_ns(a) };
	char name[256];

	if (!gs_analysis_counts_each(a, (uint32_t)what, t->tid, sum, &p))
		return 0;
	snprintf(name, sizeof(name), " (TID %u, PID %u%s): %s", t->tid, t->pid, t->is_main ? ", main" : "",
		 gs_what_names[what]);
	fputs(nprofiles ? ",\n{\"type\":\"sampled\",\"name\":" : "\n{\"type\":\"sampled\",\"name\":", out);
	{
		/* the thread's name and the fixed suffix as one JSON string */
		char *both = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&both, &len);
		if (m) {
			fputs(gs_thread_name(a, t), m);
			fputs(name, m);
			fclose(m);
			gs_esc_json(out, both);
		}
		free(both);
	}
	fprintf(out, ",\"unit\":\"nanoseconds\",\"startValue\":0,\"endValue\":%" PRIu64 ",\"samples\":[", p.total);
	gs_analysis_counts_each(a, (uint32_t)what, t->tid, one_count, &p);
	fputs("],\"weights\":[", out);
	p.weights = 1;
	p.n = 0;
	gs_analysis_counts_each(a, (uint32_t)what, t->tid, one_count, &p);
	fputs("]}", out);
	return 1;
}

size_t gs_speedscope_write(const struct gs_analysis *a, FILE *out)
{
	size_t n = 0;

	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":\"gilscope " GS_VERSION
	      "\",\"name\":",
	      out);
	gs_esc_json(out, a->command);
	fputs(",\"activeProfileIndex\":0,\n", out);
	frames(a, out);
	fputs("\"profiles\":[", out);
	for (size_t i = 0; i < a->nthreads; i++)
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			n += profile(a, out, &a->threads[i], kinds[k], n);
	fputs("]}\n", out);
	return n;
}
