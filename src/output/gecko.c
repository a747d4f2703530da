/* gecko.c - the Firefox Profiler's processed format (gecko.h). The samples and GIL states stream
 * in through the analysis hooks and are kept per thread; the stack table is built at the end,
 * from the stacks the samples name, as a prefix tree keyed by (frame, prefix). */
#define _GNU_SOURCE
#include "output/gecko.h"
#include "analysis/analysis.h"
#include "output/states.h"
#include "base/escape.h"
#include "base/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
	CAT_OTHER,
	CAT_PYTHON,
	CAT_NATIVE,
	CAT_GIL
};

struct sample {
	uint64_t time, stack;
};
struct marker {
	uint64_t start, end;
	int kind;
};

struct gthread {
	struct sample *s;
	size_t ns, caps;
	struct marker *m;
	size_t nm, capm;
};

/* One node of the stack prefix tree. */
struct gstack {
	uint32_t frame; /* gilscope frame id */
	int64_t prefix; /* index, -1: outermost */
};

struct gecko {
	const struct gs_analysis *a;
	struct gthread *t; /* by thread index */
	size_t cap;
	struct gstack *st;
	size_t nst, capst;
	int64_t *slot; /* open addressing on (frame, prefix): index + 1 */
	size_t capslot;
	int64_t *of_stack; /* gilscope stack id - 1 -> gecko stack index, -1 none, -2 not built yet */
};

static struct gthread *thread_of(struct gecko *g, const struct gs_thread *t)
{
	size_t i = (size_t)(t - g->a->threads);
	if (i >= g->cap) {
		size_t ncap = g->cap ? g->cap : 64;
		while (ncap <= i)
			ncap *= 2;
		g->t = gs_realloc_array(g->t, ncap, sizeof(*g->t));
		memset(g->t + g->cap, 0, (ncap - g->cap) * sizeof(*g->t));
		g->cap = ncap;
	}
	return &g->t[i];
}

static void on_slice(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct gthread *gt;
	struct marker *last;
	if (!gs_state_style(kind)->gil || end <= start)
		return;
	gt = thread_of(ctx, t);
	last = gt->nm ? &gt->m[gt->nm - 1] : NULL;
	if (last && last->kind == (int)kind && last->end == start) {
		last->end = end;
		return;
	}
	if (gt->nm == gt->capm) {
		gt->capm = gt->capm ? gt->capm * 2 : 256;
		gt->m = gs_realloc_array(gt->m, gt->capm, sizeof(*gt->m));
	}
	gt->m[gt->nm++] = (struct marker){ start, end, (int)kind };
}

static void on_sample(void *ctx, const struct gs_thread *t, uint64_t time, uint64_t stack, int what)
{
	struct gthread *gt = thread_of(ctx, t);
	(void)what;
	if (gt->ns == gt->caps) {
		gt->caps = gt->caps ? gt->caps * 2 : 256;
		gt->s = gs_realloc_array(gt->s, gt->caps, sizeof(*gt->s));
	}
	gt->s[gt->ns++] = (struct sample){ time, stack };
}

static size_t slot_hash(uint32_t frame, int64_t prefix, size_t cap)
{
	return (size_t)(((uint64_t)frame * 2654435761u) ^ ((uint64_t)(prefix + 1) * 40503u)) & (cap - 1);
}

static int64_t stack_node(struct gecko *g, uint32_t frame, int64_t prefix)
{
	size_t h;
	if ((g->nst + 1) * 2 > g->capslot) {
		size_t ncap = g->capslot ? g->capslot * 2 : 1024;
		free(g->slot);
		g->slot = gs_calloc(ncap, sizeof(*g->slot));
		g->capslot = ncap;
		for (size_t i = 0; i < g->nst; i++) {
			h = slot_hash(g->st[i].frame, g->st[i].prefix, ncap);
			while (g->slot[h])
				h = (h + 1) & (ncap - 1);
			g->slot[h] = (int64_t)i + 1;
		}
	}
	h = slot_hash(frame, prefix, g->capslot);
	while (g->slot[h]) {
		const struct gstack *s = &g->st[g->slot[h] - 1];
		if (s->frame == frame && s->prefix == prefix)
			return g->slot[h] - 1;
		h = (h + 1) & (g->capslot - 1);
	}
	if (g->nst == g->capst) {
		g->capst = g->capst ? g->capst * 2 : 1024;
		g->st = gs_realloc_array(g->st, g->capst, sizeof(*g->st));
	}
	g->st[g->nst] = (struct gstack){ frame, prefix };
	g->slot[h] = (int64_t)++g->nst;
	return (int64_t)g->nst - 1;
}

/* The gecko stack of gilscope stack id, -1 when it has no known frame. */
static int64_t gecko_stack(struct gecko *g, uint64_t id)
{
	const struct gs_analysis *a = g->a;
	int64_t prefix = -1;
	const uint32_t *f;
	int n = 0;
	if (!id || id > a->nstacks)
		return -1;
	if (g->of_stack[id - 1] != -2)
		return g->of_stack[id - 1];
	f = gs_analysis_stack(a, id, &n);
	for (int k = n - 1; f && k >= 0; k--)
		if (f[k] && f[k] <= a->nframes)
			prefix = stack_node(g, f[k], prefix);
	g->of_stack[id - 1] = prefix;
	return prefix;
}

static int frame_category(const struct gs_analysis *a, uint32_t id)
{
	return gs_analysis_frame_native(a, id) ? CAT_NATIVE : CAT_PYTHON;
}

static void ms(FILE *out, uint64_t ns, uint64_t base)
{
	uint64_t d = ns > base ? ns - base : 0;
	fprintf(out, "%" PRIu64 ".%06" PRIu64, d / 1000000, d % 1000000);
}

static void meta(const struct gecko *g, FILE *out)
{
	uint64_t sample_ns = gs_analysis_sample_ns(g->a);
	fprintf(out,
		"{\"meta\":{\"interval\":%" PRIu64 ".%06" PRIu64 ",\"startTime\":%" PRIu64 ".%06" PRIu64
		",\"abi\":\"x86_64\",\"misc\":\"gilscope\",\"oscpu\":\"x86_64\",\"platform\":\"Linux\","
		"\"processType\":0,\"categories\":[{\"name\":\"Other\",\"color\":\"grey\",\"subcategories\":[\"Other\"]"
		"},"
		"{\"name\":\"Python\",\"color\":\"yellow\",\"subcategories\":[\"Other\"]},"
		"{\"name\":\"Native\",\"color\":\"blue\",\"subcategories\":[\"Other\"]},"
		"{\"name\":\"GIL\",\"color\":\"green\",\"subcategories\":[\"Other\"]}],"
		"\"stackwalk\":0,\"toolkit\":\"\",\"version\":32,\"preprocessedProfileVersion\":57,\"appBuildID\":\"\","
		"\"product\":\"gilscope\",\"symbolicated\":true,\"importedFrom\":\"gilscope\","
		"\"markerSchema\":[{\"name\":\"GIL\",\"display\":[\"marker-chart\",\"marker-table\",\"timeline-"
		"overview\"],"
		"\"tooltipLabel\":\"{marker.data.state}\",\"tableLabel\":\"{marker.data.state}\","
		"\"chartLabel\":\"{marker.data.state}\",\"fields\":[{\"key\":\"state\",\"label\":\"State\","
		"\"format\":\"string\"}]}],"
		"\"extensions\":{\"id\":[],\"name\":[],\"baseURL\":[],\"length\":0}},\n\"libs\":[],\n",
		sample_ns / 1000000, sample_ns % 1000000, g->a->start_ns / 1000000, g->a->start_ns % 1000000);
}

/* The stack, frame, function, resource and native symbol tables (the same for every thread).
 * Strings: frame id i's name is string i - 1, its file nframes + i - 1. */
static void tables(const struct gecko *g, FILE *out)
{
	const struct gs_analysis *a = g->a;
	size_t nf = a->nframes;
	fputs("\"stackTable\":{\"frame\":[", out);
	for (size_t i = 0; i < g->nst; i++)
		fprintf(out, "%s%u", i ? "," : "", g->st[i].frame - 1);
	fputs("],\"category\":[", out);
	for (size_t i = 0; i < g->nst; i++)
		fprintf(out, "%s%d", i ? "," : "", frame_category(a, g->st[i].frame));
	fputs("],\"subcategory\":[", out);
	for (size_t i = 0; i < g->nst; i++)
		fputs(i ? ",0" : "0", out);
	fputs("],\"prefix\":[", out);
	for (size_t i = 0; i < g->nst; i++)
		if (g->st[i].prefix < 0)
			fputs(i ? ",null" : "null", out);
		else
			fprintf(out, "%s%" PRId64, i ? "," : "", g->st[i].prefix);
	fprintf(out, "],\"length\":%zu},\n\"frameTable\":{\"address\":[", g->nst);
	for (size_t i = 0; i < nf; i++)
		fputs(i ? ",-1" : "-1", out);
	fputs("],\"category\":[", out);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%d", i ? "," : "", frame_category(a, (uint32_t)i + 1));
	fputs("],\"subcategory\":[", out);
	for (size_t i = 0; i < nf; i++)
		fputs(i ? ",0" : "0", out);
	fputs("],\"func\":[", out);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%zu", i ? "," : "", i);
	{
		static const char *const nulls[] = { "innerWindowID", "implementation", "optimizations", "column",
						     "nativeSymbol" };
		for (size_t k = 0; k < sizeof(nulls) / sizeof(nulls[0]); k++) {
			fprintf(out, "],\"%s\":[", nulls[k]);
			for (size_t i = 0; i < nf; i++)
				fputs(i ? ",null" : "null", out);
		}
	}
	fputs("],\"inlineDepth\":[", out);
	for (size_t i = 0; i < nf; i++)
		fputs(i ? ",0" : "0", out);
	fputs("],\"line\":[", out);
	for (size_t i = 0; i < nf; i++)
		if (a->frames[i].native || a->frames[i].line <= 0)
			fputs(i ? ",null" : "null", out);
		else
			fprintf(out, "%s%d", i ? "," : "", a->frames[i].line);
	fprintf(out, "],\"length\":%zu},\n\"funcTable\":{\"name\":[", nf);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%zu", i ? "," : "", i);
	fputs("],\"isJS\":[", out);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%s", i ? "," : "", a->frames[i].native ? "false" : "true");
	fputs("],\"relevantForJS\":[", out);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%s", i ? "," : "", a->frames[i].native ? "false" : "true");
	fputs("],\"resource\":[", out);
	for (size_t i = 0; i < nf; i++)
		fputs(i ? ",-1" : "-1", out);
	fputs("],\"fileName\":[", out);
	for (size_t i = 0; i < nf; i++)
		fprintf(out, "%s%zu", i ? "," : "", nf + i);
	fputs("],\"lineNumber\":[", out);
	for (size_t i = 0; i < nf; i++)
		if (a->frames[i].native || a->frames[i].line <= 0)
			fputs(i ? ",null" : "null", out);
		else
			fprintf(out, "%s%d", i ? "," : "", a->frames[i].line);
	fputs("],\"columnNumber\":[", out);
	for (size_t i = 0; i < nf; i++)
		fputs(i ? ",null" : "null", out);
	fprintf(out,
		"],\"length\":%zu},\n\"resourceTable\":{\"lib\":[],\"name\":[],\"host\":[],\"type\":[],\"length\":0},"
		"\"nativeSymbols\":{\"libIndex\":[],\"address\":[],\"name\":[],\"functionSize\":[],\"length\":0}",
		nf);
}

static void samples(struct gecko *g, FILE *out, const struct gthread *gt)
{
	size_t n = gt ? gt->ns : 0;
	fputs("\"samples\":{\"stack\":[", out);
	for (size_t i = 0; i < n; i++) {
		int64_t s = gecko_stack(g, gt->s[i].stack);
		if (s < 0)
			fputs(i ? ",null" : "null", out);
		else
			fprintf(out, "%s%" PRId64, i ? "," : "", s);
	}
	fputs("],\"time\":[", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? "," : "", out);
		ms(out, gt->s[i].time, g->a->start_ns);
	}
	fputs("],\"eventDelay\":[", out);
	for (size_t i = 0; i < n; i++)
		fputs(i ? ",null" : "null", out);
	fprintf(out, "],\"weight\":null,\"weightType\":\"samples\",\"length\":%zu},\n", n);
}

static void markers(const struct gecko *g, FILE *out, const struct gthread *gt)
{
	size_t n = gt ? gt->nm : 0, base = 2 * g->a->nframes;
	fputs("\"markers\":{\"data\":[", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s{\"type\":\"GIL\",\"state\":\"%s\"}", i ? "," : "",
			gs_state_style((enum gs_slice)gt->m[i].kind)->name); /* constants, nothing to escape */
	fputs("],\"name\":[", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%zu", i ? "," : "", base + (size_t)gt->m[i].kind);
	fputs("],\"startTime\":[", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? "," : "", out);
		ms(out, gt->m[i].start, g->a->start_ns);
	}
	fputs("],\"endTime\":[", out);
	for (size_t i = 0; i < n; i++) {
		fputs(i ? "," : "", out);
		ms(out, gt->m[i].end, g->a->start_ns);
	}
	fputs("],\"phase\":[", out);
	for (size_t i = 0; i < n; i++)
		fputs(i ? ",1" : "1", out);
	fputs("],\"category\":[", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%d", i ? "," : "", CAT_GIL);
	fprintf(out, "],\"length\":%zu}", n);
}

static void thread(struct gecko *g, FILE *out, size_t i, const char *tables_json)
{
	const struct gs_analysis *a = g->a;
	const struct gs_thread *t = &a->threads[i];
	const struct gthread *gt = i < g->cap ? &g->t[i] : NULL;
	char pname[64];

	fputs(i ? ",\n{\"name\":" : "\n{\"name\":", out);
	gs_esc_json(out, gs_thread_name(a, t));
	fprintf(out, ",\"isMainThread\":%s,\"processStartupTime\":0,\"processShutdownTime\":null,\"registerTime\":",
		t->is_main ? "true" : "false");
	ms(out, t->first_ns, a->start_ns);
	fputs(",\"unregisterTime\":", out);
	if (t->exited)
		ms(out, t->end_ns, a->start_ns);
	else
		fputs("null", out);
	snprintf(pname, sizeof(pname), "PID %u", t->pid);
	fprintf(out,
		",\"pausedRanges\":[],\"pid\":\"%u\",\"tid\":%u,\"processType\":\"default\",\"processName\":", t->pid,
		t->tid);
	if (t->pid == a->target_pid && a->command[0])
		gs_esc_json(out, a->command);
	else
		gs_esc_json(out, pname);
	fputs(",\n", out);
	samples(g, out, gt);
	fputs(tables_json, out);
	fputs(",\n", out);
	markers(g, out, gt);
	fputs("}", out);
}

static void strings(const struct gecko *g, FILE *out)
{
	const struct gs_analysis *a = g->a;
	fputs(",\n\"pages\":[],\"shared\":{\"stringArray\":[", out);
	for (size_t i = 0; i < a->nframes; i++) {
		fputs(i ? "," : "", out);
		gs_esc_json(out, a->frames[i].qualname ? a->frames[i].qualname : "?");
	}
	for (size_t i = 0; i < a->nframes; i++) {
		fputs(i || a->nframes ? "," : "", out);
		gs_esc_json(out, a->frames[i].filename ? a->frames[i].filename : "?");
	}
	for (int k = 0; k < GS_SLICE_N; k++)
		fprintf(out, "%s\"%s\"", k || a->nframes ? "," : "",
			gs_state_style((enum gs_slice)k)->name ? gs_state_style((enum gs_slice)k)->name : "?");
	fputs("],\"sources\":{\"length\":0,\"uuid\":[],\"filename\":[]}}}\n", out);
}

int gs_gecko_export(const char *path, const struct gs_analysis_opts *opts, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct gecko g = { .a = &a };
	struct gs_hooks hooks = { .ctx = &g, .slice = on_slice, .sample = on_sample };
	char *tab = NULL;
	size_t tablen = 0;
	FILE *m;
	int err = gs_analysis_load_hooked(&a, path, opts, &hooks, why, whylen);

	if (err < 0)
		goto out;
	g.of_stack = gs_malloc((a.nstacks + 1) * sizeof(*g.of_stack));
	for (size_t i = 0; i < a.nstacks; i++)
		g.of_stack[i] = -2;
	for (size_t i = 0; i < g.cap; i++) /* every stack named, so the tables are complete */
		for (size_t k = 0; k < g.t[i].ns; k++)
			gecko_stack(&g, g.t[i].s[k].stack);
	m = open_memstream(&tab, &tablen);
	if (!m) {
		err = -ENOMEM;
		snprintf(why, whylen, "cannot build the gecko tables: %s", strerror(ENOMEM));
		gs_analysis_free(&a);
		goto out;
	}
	tables(&g, m);
	fclose(m);
	meta(&g, out);
	fputs("\"threads\":[", out);
	for (size_t i = 0; i < a.nthreads; i++)
		thread(&g, out, i, tab);
	fputs("]", out);
	strings(&g, out);
	gs_analysis_free(&a);
out:
	for (size_t i = 0; i < g.cap; i++) {
		free(g.t[i].s);
		free(g.t[i].m);
	}
	free(g.t);
	free(g.st);
	free(g.slot);
	free(g.of_stack);
	free(tab);
	return err;
}
