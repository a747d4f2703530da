/* verdict.c - the page's verdict sentences (verdict.h). */
#define _GNU_SOURCE
#include "output/verdict.h"
#include "output/convoy.h"
#include "base/escape.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static double pct(uint64_t part, uint64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

/* "4.9 ms", "1.20 s" */
static const char *dur(char *buf, size_t len, uint64_t ns)
{
	if (ns >= 1000000000ull)
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.0f us", (double)ns / 1e3);
	return buf;
}

static const char *name_of(const struct gs_analysis *a, uint32_t tid, char *buf, size_t len)
{
	const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)a, tid);
	char e[256];
	gs_esc_term_buf(e, sizeof(e), t ? gs_thread_name(a, t) : "?");
	snprintf(buf, len, "%s (TID %u)", e, tid);
	return buf;
}

/* The innermost Python frame of the stack the holder was sampled in most while tid waited. */
static int behind_code(const struct gs_analysis *a, uint32_t tid, uint32_t holder, char *buf, size_t len)
{
	const struct gs_stack_count *best = NULL;
	const uint32_t *f;
	int n = 0;
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (c->amount && c->what == GS_WHAT_HELD_FOR && c->tid == tid && c->peer == holder &&
		    (!best || c->amount > best->amount))
			best = c;
	}
	f = best ? gs_analysis_stack(a, best->stack, &n) : NULL;
	for (int k = 0; f && k < n; k++) {
		char fr[600];
		if (gs_analysis_frame_native(a, f[k]))
			continue;
		gs_analysis_frame_name(a, f[k], fr, sizeof(fr));
		gs_esc_term_buf(buf, len, fr);
		return 1;
	}
	return 0;
}

static size_t gil_sentences(const struct gs_analysis *a, FILE *out)
{
	size_t lines = 0;
	int many = 0;
	for (size_t i = 0; i < a->ngils; i++)
		many += a->gils[i].acquisitions > 0;
	for (size_t i = 0; i < a->ngils; i++) {
		const struct gs_gilstat *g = &a->gils[i];
		uint64_t w = g->end_ns > g->first_ns ? g->end_ns - g->first_ns : 0;
		char d[32];
		if (!g->acquisitions)
			continue;
		if (many > 1)
			fprintf(out, "In process %u (GIL %d), the", g->pid, g->number);
		else
			fputs("The", out);
		fprintf(out,
			" GIL was held %.0f%% of %s (utilisation) and contended %.0f%% of it (at least one thread "
			"waiting).\n",
			pct(g->held_ns, w), dur(d, sizeof(d), w), pct(g->contended_ns, w));
		lines++;
	}
	return lines;
}

static size_t waiter_sentence(const struct gs_analysis *a, FILE *out)
{
	const struct gs_thread *t = NULL;
	const struct gs_blame *top = NULL;
	char n1[300], n2[300], d1[32], d2[32], code[700];
	uint64_t life;
	for (size_t i = 0; i < a->nthreads; i++)
		if (a->threads[i].wait_ns && (!t || a->threads[i].wait_ns > t->wait_ns))
			t = &a->threads[i];
	if (!t) {
		fputs(a->ngils ? "No thread waited for the GIL.\n" : "No GIL events were recorded.\n", out);
		return 1;
	}
	life = t->end_ns > t->first_ns ? t->end_ns - t->first_ns : 0;
	fprintf(out, "%s waited longest for the GIL: %s, %.0f%% of its life", name_of(a, t->tid, n1, sizeof(n1)),
		dur(d1, sizeof(d1), t->wait_ns), pct(t->wait_ns, life));
	for (size_t k = 0; k < t->nblame; k++)
		if (!top || t->blame[k].ns > top->ns)
			top = &t->blame[k];
	if (top && top->holder)
		fprintf(out, "; most of it (%s) behind %s", dur(d2, sizeof(d2), top->ns),
			name_of(a, top->holder, n2, sizeof(n2)));
	if (top && top->holder && behind_code(a, t->tid, top->holder, code, sizeof(code)))
		fprintf(out, ", which was running %s", code);
	fputs(".\n", out);
	return 1;
}

size_t gs_verdict_text(const struct gs_analysis *a, FILE *out)
{
	size_t lines = gil_sentences(a, out) + waiter_sentence(a, out);
	char *buf = NULL, *line, *end;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return lines;
	gs_convoy_text(a, m);
	fclose(m);
	/* the first line of each thread's paragraph (two spaces in) is its convoy sentence */
	for (line = buf; line && *line; line = end ? end + 1 : NULL) {
		end = strchr(line, '\n');
		if (line[0] == ' ' && line[1] == ' ' && line[2] != ' ' && line[2] != '\n') {
			fprintf(out, "Convoy: %.*s\n", end ? (int)(end - line - 2) : (int)strlen(line + 2), line + 2);
			lines++;
		}
	}
	free(buf);
	return lines;
}
