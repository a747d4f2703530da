/* html.c - the HTML report: the page's frame and its JSON data block (html.h); the style sheet
 * and the script are in html_page.c. The state slices are streamed to a temporary file while the
 * recording goes through the analysis (memory bounded by the number of threads), then copied
 * into the data as one flat array [thread, start, duration, kind, ...] that the page's script
 * splits per thread. The timeline draws only the slices in view, and at most one per pixel
 * column and thread when zoomed out (holding the GIL wins over other states in a column), so it
 * stays smooth with many threads and millions of state changes. */
#define _GNU_SOURCE
#include "output/html.h"
#include "analysis/analysis.h"
#include "analysis/counters.h"
#include "output/flame.h"
#include "output/html_page.h"
#include "output/states.h"
#include "output/verdict.h"
#include "base/sha256.h"
#include "base/escape.h"
#include "base/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct pending {
	int valid;
	enum gs_slice kind;
	uint64_t start, end;
};

/* A point of a thread's counter track (record -e): its running total at a time. */
struct ctr_point {
	uint32_t ti;   /* the thread's index */
	uint32_t ci;   /* the counter's index in names */
	uint64_t t, v; /* ns since the start, the total */
};

#define HTML_MAX_COUNTERS 8

struct html_ctx {
	FILE *tmp;
	const struct gs_analysis *a;
	struct pending *p;
	size_t cap;
	uint64_t nslices;
	struct ctr_point *pts;
	size_t npts, cap_pts;
	char names[HTML_MAX_COUNTERS][48];
	unsigned nnames;
};

static void flush_slice(struct html_ctx *h, size_t ti, const struct pending *s)
{
	uint64_t st, d;
	if (s->kind == GS_SLICE_UNKNOWN || s->end <= s->start)
		return;
	st = s->start > h->a->start_ns ? s->start - h->a->start_ns : 0;
	d = s->end - s->start;
	fprintf(h->tmp, "%s%zu,%" PRIu64 ".%03" PRIu64 ",%" PRIu64 ".%03" PRIu64 ",%d\n", h->nslices ? "," : "", ti,
		st / 1000, st % 1000, d / 1000, d % 1000, (int)s->kind);
	h->nslices++;
}

/* hooks->counter: "EVENT (TID n)", a thread's running total of a counter (at most one a ms) */
static void on_counter(void *ctx, uint32_t pid, uint32_t tid, uint64_t time, const char *name, uint64_t value)
{
	struct html_ctx *h = ctx;
	const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)h->a, tid);
	size_t len = strcspn(name, " ");
	unsigned ci;
	(void)pid;
	if (!t || len >= sizeof(h->names[0]))
		return;
	for (ci = 0; ci < h->nnames; ci++)
		if (strncmp(h->names[ci], name, len) == 0 && !h->names[ci][len])
			break;
	if (ci == h->nnames) {
		if (h->nnames == HTML_MAX_COUNTERS)
			return;
		memcpy(h->names[h->nnames], name, len);
		h->names[h->nnames++][len] = '\0';
	}
	if (h->npts == h->cap_pts) {
		h->cap_pts = h->cap_pts ? 2 * h->cap_pts : 1024;
		h->pts = gs_realloc_array(h->pts, h->cap_pts, sizeof(*h->pts));
	}
	h->pts[h->npts++] = (struct ctr_point){ (uint32_t)(t - h->a->threads), ci,
						time > h->a->start_ns ? time - h->a->start_ns : 0, value };
}

static void jstr(FILE *out, const char *s, size_t max);

/* "counters": {"names": [...], "points": [thread, counter, us, total, ...]} */
static void json_counters(FILE *out, const struct html_ctx *h)
{
	fputs(",\n\"counters\":{\"names\":[", out);
	for (unsigned i = 0; i < h->nnames; i++) {
		fputs(i ? "," : "", out);
		jstr(out, h->names[i], sizeof(h->names[i]));
	}
	fputs("],\"points\":[", out);
	for (size_t i = 0; i < h->npts; i++)
		fprintf(out, "%s%u,%u,%" PRIu64 ".%03" PRIu64 ",%" PRIu64, i ? (i % 8 ? "," : ",\n") : "", h->pts[i].ti,
			h->pts[i].ci, h->pts[i].t / 1000, h->pts[i].t % 1000, h->pts[i].v);
	fputs("]}", out);
}

static void on_slice(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct html_ctx *h = ctx;
	size_t i = (size_t)(t - h->a->threads);
	struct pending *s;
	if (i >= h->cap) {
		size_t ncap = h->cap ? h->cap : 64;
		while (ncap <= i)
			ncap *= 2;
		h->p = gs_realloc_array(h->p, ncap, sizeof(*h->p));
		memset(h->p + h->cap, 0, (ncap - h->cap) * sizeof(*h->p));
		h->cap = ncap;
	}
	s = &h->p[i];
	if (s->valid && s->kind == kind && s->end == start) {
		s->end = end;
		return;
	}
	if (s->valid)
		flush_slice(h, i, s);
	s->valid = 1;
	s->kind = kind;
	s->start = start;
	s->end = end;
}

/* A string from the traced program as the page shows it: controls and bidi overrides made
 * visible as in the terminal, then JSON for a <script> element (no "<" can close it). */
static void jstr(FILE *out, const char *s, size_t max)
{
	char buf[1024];
	gs_esc_term_buf(buf, max < sizeof(buf) ? max : sizeof(buf), s);
	gs_esc_json_script(out, buf);
}

static int thread_index(const struct gs_analysis *a, uint32_t tid)
{
	const struct gs_thread *t = tid ? gs_analysis_thread((struct gs_analysis *)a, tid) : NULL;
	return t ? (int)(t - a->threads) : -1;
}

/* [id, ...] of a stack, innermost first, at most 16 frames. */
static void json_frames(FILE *out, const struct gs_analysis *a, uint64_t stack)
{
	int n = 0;
	const uint32_t *f = gs_analysis_stack(a, stack, &n);
	fputc('[', out);
	for (int k = 0; f && k < n && k < 16; k++)
		fprintf(out, "%s%u", k ? "," : "", f[k]);
	fputc(']', out);
}

static void json_threads(FILE *out, const struct gs_analysis *a)
{
	fputs(",\n\"procs\":[", out);
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct gs_process *p = &a->procs[i];
		fprintf(out, "%s{\"pid\":%u,\"python\":", i ? "," : "", p->pid);
		jstr(out, p->python_version, 64);
		fputs(",\"path\":", out);
		jstr(out, p->python_path, 600);
		fputc('}', out);
	}
	fputs("],\n\"threads\":[", out);
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = &a->threads[i];
		uint64_t held = t->held_ns - (t->held_offcpu_ns < t->held_ns ? t->held_offcpu_ns : t->held_ns);
		uint64_t sleep = t->sleeping_ns - (t->uninterruptible_ns < t->sleeping_ns ? t->uninterruptible_ns : 0);
		fprintf(out, "%s\n{\"tid\":%u,\"pid\":%u,\"main\":%d,\"name\":", i ? "," : "", t->tid, t->pid,
			!!t->is_main);
		jstr(out, gs_thread_name(a, t), 200);
		fprintf(out,
			",\"st\":[%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "],\"acq\":%" PRIu64 ",\"forced\":%" PRIu64
			",\"maxh\":%" PRIu64 ",\"maxw\":%" PRIu64 "}",
			held, t->held_offcpu_ns, t->wait_sleep_ns, t->wait_runnable_ns, t->wait_oncpu_ns,
			t->run_nogil_ns, sleep, t->uninterruptible_ns, t->runnable_ns, t->unknown_ns, t->acquisitions,
			t->forced_drops, t->longest_hold_ns, t->longest_wait_ns);
	}
	fputs("]", out);
}

static int cmp_blame(const void *x, const void *y)
{
	const struct gs_blame *p = x, *q = y;
	return p->ns < q->ns ? 1 : p->ns > q->ns ? -1 : (p->holder > q->holder) - (p->holder < q->holder);
}

static int cmp_wait(const void *x, const void *y)
{
	const struct gs_thread *p = *(const struct gs_thread *const *)x, *q = *(const struct gs_thread *const *)y;
	return p->wait_ns < q->wait_ns ? 1 : p->wait_ns > q->wait_ns ? -1 : (p->tid > q->tid) - (p->tid < q->tid);
}

/* The holder's three stacks most sampled while waiter waited: [[samples, [frames]], ...]. */
static void json_held_for(FILE *out, const struct gs_analysis *a, uint32_t waiter, uint32_t holder)
{
	const struct gs_stack_count *top[3] = { 0 };
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (!c->amount || c->what != GS_WHAT_HELD_FOR || c->tid != waiter || c->peer != holder)
			continue;
		for (int k = 0; k < 3; k++)
			if (!top[k] || c->amount > top[k]->amount) {
				memmove(top + k + 1, top + k, (size_t)(2 - k) * sizeof(top[0]));
				top[k] = c;
				break;
			}
	}
	fputc('[', out);
	for (int k = 0; k < 3 && top[k]; k++) {
		fprintf(out, "%s[%" PRIu64 ",", k ? "," : "", top[k]->amount);
		json_frames(out, a, top[k]->stack);
		fputc(']', out);
	}
	fputc(']', out);
}

static void json_blame(FILE *out, const struct gs_analysis *a)
{
	const struct gs_thread **v = gs_malloc((a->nthreads + 1) * sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < a->nthreads; i++)
		if (a->threads[i].nblame)
			v[n++] = &a->threads[i];
	qsort(v, n, sizeof(*v), cmp_wait);
	fputs(",\n\"blame\":[", out);
	for (size_t i = 0; i < n; i++) {
		const struct gs_thread *t = v[i];
		struct gs_blame *b = gs_malloc(t->nblame * sizeof(*b));
		uint64_t total = 0;
		memcpy(b, t->blame, t->nblame * sizeof(*b));
		qsort(b, t->nblame, sizeof(*b), cmp_blame);
		for (size_t k = 0; k < t->nblame; k++)
			total += b[k].ns;
		fprintf(out, "%s\n{\"i\":%d,\"total\":%" PRIu64 ",\"h\":[", i ? "," : "", thread_index(a, t->tid),
			total);
		for (size_t k = 0; k < t->nblame && k < 6; k++) {
			fprintf(out, "%s{\"i\":%d,\"ns\":%" PRIu64 ",\"s\":", k ? "," : "",
				thread_index(a, b[k].holder), b[k].ns);
			json_held_for(out, a, t->tid, b[k].holder);
			fputc('}', out);
		}
		fputs("]}", out);
		free(b);
	}
	fputs("]", out);
	free(v);
}

static void json_holds(FILE *out, const struct gs_analysis *a)
{
	fputs(",\n\"holds\":[", out);
	for (int i = 0; i < a->ntop_holds; i++) {
		const struct gs_hold *h = &a->top_holds[i];
		fprintf(out,
			"%s\n{\"i\":%d,\"start\":%" PRIu64 ",\"ns\":%" PRIu64 ",\"waiters\":%d,\"waited\":%" PRIu64
			",\"open\":%d,\"stack\":",
			i ? "," : "", thread_index(a, h->tid),
			h->start_ns > a->start_ns ? h->start_ns - a->start_ns : 0, h->ns, h->max_waiters, h->waited_ns,
			!!h->open);
		json_frames(out, a, h->stack);
		fputc('}', out);
	}
	fputs("]", out);
}

static void json_flames(FILE *out, const struct gs_analysis *a)
{
	static const struct {
		enum gs_stack_what what;
		const char *title;
	} kinds[] = {
		{ GS_WHAT_BLOCKING, "holding the GIL while other threads waited" },
		{ GS_WHAT_WAIT, "waiting for the GIL" },
		{ GS_WHAT_HOLD, "holding the GIL" },
		{ GS_WHAT_NOGIL, "running without the GIL" },
		{ GS_WHAT_OFFCPU, "asleep, not waiting for the GIL" },
	};
	fputs(",\n\"frames\":[", out);
	for (size_t i = 0; i < a->nframes; i++) {
		char name[700];
		gs_analysis_frame_name(a, (uint32_t)i + 1, name, sizeof(name));
		fputs(i ? ",\n" : "", out);
		jstr(out, name, sizeof(name));
	}
	fputs("],\n\"flames\":[", out);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		fprintf(out, "%s\n{\"kind\":\"%s\",\"title\":\"%s\",\"tree\":", k ? "," : "",
			gs_what_names[kinds[k].what], kinds[k].title);
		gs_flame_json(a, out, kinds[k].what, 2000);
		fputc('}', out);
	}
	for (int n = 0; a->ctr && n < a->ctr->n; n++) { /* record --sample-event: stacks at an event */
		const struct gs_counter_def *d = &a->ctr->defs[n];
		char title[160];
		if (!d->defined || !d->stacks || !d->stack_samples)
			continue;
		snprintf(title, sizeof(title), "Python stacks at %.60s events (read right after each, one per %llu)",
			 d->name, (unsigned long long)d->period);
		fputs(",\n{\"kind\":", out);
		jstr(out, d->name, sizeof(d->name));
		fputs(",\"title\":", out);
		jstr(out, title, sizeof(title));
		fputs(",\"tree\":", out);
		gs_flame_json(a, out, (enum gs_stack_what)gs_ctr_what(n, -1), 2000);
		fputc('}', out);
	}
	fputs("]", out);
}

/* The state table as the script uses it, indexed by slice kind (constants: nothing to escape). */
static void json_states(FILE *out)
{
	static const char *const keys[4] = { "name", "desc", "col", "pri" };
	fputs(",\n\"states\":{", out);
	for (int k = 0; k < 4; k++) {
		fprintf(out, "%s\"%s\":[", k ? "," : "", keys[k]);
		for (int i = 0; gs_state_style((enum gs_slice)i)->name; i++) {
			const struct gs_state_style *st = gs_state_style((enum gs_slice)i);
			if (k == 3)
				fprintf(out, "%s%d", i ? "," : "", st->priority);
			else
				fprintf(out, "%s\"%s\"", i ? "," : "",
					k == 0   ? st->name
					: k == 1 ? st->description
						 : st->colour);
		}
		fputc(']', out);
	}
	fputc('}', out);
}

static void json_verdict(FILE *out, const struct gs_analysis *a)
{
	char *buf = NULL, *line, *end;
	size_t len = 0, n = 0;
	FILE *m = open_memstream(&buf, &len);
	fputs(",\n\"verdict\":[", out);
	if (m) {
		gs_verdict_text(a, m);
		fclose(m);
		for (line = buf; line && *line; line = end + 1) {
			end = strchr(line, '\n');
			if (!end)
				break;
			*end = '\0';
			fputs(n++ ? ",\n" : "", out);
			gs_esc_json_script(out, line); /* already terminal-escaped */
		}
	}
	fputs("]", out);
	free(buf);
}

static const char body[] =
	"<main><header><h1>gilscope report</h1><p id=\"sub\"></p><button id=\"theme\">Light / dark</button></header>\n"
	"<section id=\"verdict\"></section>\n"
	"<h2>Threads</h2><p class=\"hint\">Click a column to sort, a row to find its timeline track.</p>"
	"<table id=\"threads\"></table>\n"
	"<h2>Timeline</h2><div class=\"legend\" id=\"legend\"></div>"
	"<p class=\"hint\">Wheel: zoom, drag: pan, hover: details. <button id=\"reset\">Reset</button></p>"
	"<div><canvas id=\"tl\"></canvas></div><div id=\"tip\"></div>\n"
	"<h2>Who held the GIL while each thread waited</h2><div id=\"blame\" class=\"blame\"></div>\n"
	"<h2>Longest holds</h2><div id=\"holds\"></div>\n"
	"<h2>Flame graphs (Python stacks)</h2><p class=\"ftool\"><input id=\"fsearch\" size=\"40\" "
	"placeholder=\"Search functions (regular expression)\"><span class=\"hint\">Click a frame to zoom, the top "
	"one to zoom out.</span></p><div id=\"flames\"></div></main>\n";
int gs_html_report(const char *path, const struct gs_analysis_opts *opts, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct html_ctx h = { .a = &a };
	struct gs_hooks hooks = { .ctx = &h, .slice = on_slice, .counter = on_counter };
	char buf[65536], hash[45], css_hash[45];
	size_t n;
	int err;

	h.tmp = tmpfile();
	if (!h.tmp) {
		err = -errno;
		snprintf(why, whylen, "cannot create a temporary file: %s", strerror(-err));
		return err;
	}
	/* the start time is known once the header is read: the analysis keeps it */
	err = gs_analysis_load_hooked(&a, path, opts, &hooks, why, whylen);
	if (err < 0) {
		fclose(h.tmp);
		free(h.p);
		return err;
	}
	for (size_t i = 0; i < h.cap; i++)
		if (h.p[i].valid)
			flush_slice(&h, i, &h.p[i]);

	/* the policy allows the page's own script and style sheet by their hashes, nothing else */
	gs_sha256_base64(gs_html_js, strlen(gs_html_js), hash);
	gs_sha256_base64(gs_html_css, strlen(gs_html_css), css_hash);
	fprintf(out,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-%s'; "
		"style-src 'sha256-%s'\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<title>gilscope report</title>\n<style>%s</style></head><body>\n%s",
		hash, css_hash, gs_html_css, body);
	fprintf(out, "<script type=\"application/json\" id=\"gs-data\">{\"command\":");
	gs_esc_json_script(out, a.command);
	fprintf(out, ",\"duration_ns\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"complete\":%s,\"sample_ns\":%" PRIu64,
		a.end_ns > a.start_ns ? a.end_ns - a.start_ns : 0, a.lost_events, a.complete ? "true" : "false",
		gs_analysis_sample_ns(&a));
	json_verdict(out, &a);
	json_states(out);
	json_threads(out, &a);
	json_blame(out, &a);
	json_holds(out, &a);
	json_flames(out, &a);
	json_counters(out, &h);
	fputs(",\n\"slices\":[\n", out);
	rewind(h.tmp);
	while ((n = fread(buf, 1, sizeof(buf), h.tmp)) > 0)
		fwrite(buf, 1, n, out);
	fprintf(out, "]}</script>\n<script>%s</script>\n</body></html>\n", gs_html_js);
	fclose(h.tmp);
	free(h.p);
	free(h.pts);
	gs_analysis_free(&a);
	return 0;
}
