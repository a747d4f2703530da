/* diff.c - `gilscope diff` as a table and as JSON (diff.h). */
#include "output/diff.h"
#include "base/escape.h"
#include "base/util.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static double share(uint64_t part, uint64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

static uint64_t life(const struct gs_thread *t) { return t->end_ns > t->first_ns ? t->end_ns - t->first_ns : 0; }

static double contention(const struct gs_diff_figures *f) { return share(f->contended_ns, f->gil_ns); }

int gs_diff_worse(const struct gs_diff *d, double fail_percent)
{
	double ca = contention(&d->a), cb = contention(&d->b);
	if (fail_percent < 0)
		return 0;
	if (gs_diff_percent(d->a.threads_wait_ns, d->b.threads_wait_ns) > fail_percent)
		return 1;
	return ca > 0 ? 100.0 * (cb - ca) / ca > fail_percent : cb > 0;
}

static void fmt_change(char *buf, size_t len, uint64_t x, uint64_t y)
{
	double p = gs_diff_percent(x, y);
	if (isinf(p))
		snprintf(buf, len, "new");
	else
		snprintf(buf, len, "%+.1f%%", p);
}

static void row_dur(FILE *out, const char *what, uint64_t x, uint64_t y)
{
	char a[32], b[32], c[32];
	gs_fmt_dur(a, sizeof(a), x);
	gs_fmt_dur(b, sizeof(b), y);
	fmt_change(c, sizeof(c), x, y);
	fprintf(out, "%-26s %12s %12s %10s\n", what, a, b, c);
}

static void row_count(FILE *out, const char *what, uint64_t x, uint64_t y)
{
	char c[32];
	fmt_change(c, sizeof(c), x, y);
	fprintf(out, "%-26s %12" PRIu64 " %12" PRIu64 " %10s\n", what, x, y, c);
}

static void row_share(FILE *out, const char *what, double x, double y)
{
	fprintf(out, "%-26s %11.1f%% %11.1f%% %+7.1f pt\n", what, x, y, y - x);
}

static void heading(const struct gs_analysis *a, const char *path, const char *tag, FILE *out)
{
	char cmd[4 * sizeof(a->command)], d[32];
	gs_fmt_dur(d, sizeof(d), a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0);
	gs_esc_term_buf(cmd, sizeof(cmd), a->command[0] ? a->command : "?");
	fprintf(out, "%s: ", tag);
	gs_esc_term(out, path);
	fprintf(out, " (%s, %s)\n", cmd, d);
}

static void thread_row(const struct gs_diff_pair *p, FILE *out)
{
	char name[256], forced[32];
	const struct gs_thread *a = p->a, *b = p->b;
	char nm[GS_THREAD_PYNAME_MAX + 16];

	snprintf(nm, sizeof(nm), p->ordinal > 1 ? "%s #%u" : "%s", p->name, p->ordinal);
	gs_esc_term_cell(name, sizeof(name), nm, 24, 24, NULL);
	fprintf(out, "%s", name);
	for (int k = 0; k < 3; k++) {
		double x = a ? share(k == 0 ? a->held_ns : k == 1 ? a->wait_ns : a->run_nogil_ns, life(a)) : 0;
		double y = b ? share(k == 0 ? b->held_ns : k == 1 ? b->wait_ns : b->run_nogil_ns, life(b)) : 0;
		if (a && b)
			fprintf(out, "  %5.1f %5.1f %+6.1f", x, y, y - x);
		else if (a)
			fprintf(out, "  %5.1f %5s %6s", x, "-", "");
		else
			fprintf(out, "  %5s %5.1f %6s", "-", y, "");
	}
	snprintf(forced, sizeof(forced), "%s", "-");
	fprintf(out, "  %6s", a ? (snprintf(forced, sizeof(forced), "%" PRIu64, a->forced_drops), forced) : "-");
	fprintf(out, " %6s\n", b ? (snprintf(forced, sizeof(forced), "%" PRIu64, b->forced_drops), forced) : "-");
}

static void holds_text(const struct gs_analysis *a, const char *tag, FILE *out)
{
	fprintf(out, "  %s:", tag);
	for (int i = 0; i < a->ntop_holds && i < 3; i++) {
		const struct gs_hold *h = &a->top_holds[i];
		const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)a, h->tid);
		char d[32], nm[256];
		gs_fmt_dur(d, sizeof(d), h->ns);
		gs_esc_term_buf(nm, sizeof(nm), t ? gs_thread_name(a, t) : "?");
		fprintf(out, "%s %s (%s)", i ? "," : "", d, nm);
	}
	fprintf(out, a->ntop_holds ? "\n" : " none\n");
}

void gs_diff_text(const struct gs_diff *d, const struct gs_diff_view *v, FILE *out)
{
	const struct gs_diff_figures *a = &d->a, *b = &d->b;

	fprintf(out, "gilscope diff\n");
	heading(v->a, v->path_a, "A", out);
	heading(v->b, v->path_b, "B", out);
	fprintf(out, "\n%-26s %12s %12s %10s\n", "", "A", "B", "change");
	row_dur(out, "recording length", a->wall_ns, b->wall_ns);
	row_share(out, "GIL utilisation", share(a->held_ns, a->gil_ns), share(b->held_ns, b->gil_ns));
	row_share(out, "contention", contention(a), contention(b));
	row_dur(out, "GIL wait, all threads", a->threads_wait_ns, b->threads_wait_ns);
	row_dur(out, "GIL held, all threads", a->threads_held_ns, b->threads_held_ns);
	row_count(out, "acquisitions", a->acquisitions, b->acquisitions);
	if (a->drops_told_apart && b->drops_told_apart) {
		row_count(out, "forced drops", a->forced_drops, b->forced_drops);
		row_count(out, "switch requests", a->drop_requests, b->drop_requests);
	} else
		fprintf(out, "%-26s (not told apart in %s)\n", "forced drops", a->drops_told_apart ? "B" : "A");
	row_count(out, "threads", a->nthreads, b->nthreads);

	fprintf(out, "\nThreads, matched by name and order of start (shares of each thread's life, A B change):\n");
	fprintf(out, "%-24s  %s  %s  %s  %s\n", "", "----- HELD% ------", "----- WAIT% ------", "----- NOGIL% -----",
		"-- FORCED ---");
	fprintf(out, "%-24s%s%s%s  %6s %6s\n", "NAME", "      A     B change", "      A     B change",
		"      A     B change", "A", "B");
	for (size_t i = 0; i < d->npairs; i++)
		thread_row(&d->pairs[i], out);

	fprintf(out, "\nLongest holds:\n");
	holds_text(v->a, "A", out);
	holds_text(v->b, "B", out);

	if (d->nsites) {
		fprintf(out, "\nWhere threads waited for the GIL (innermost Python function of each wait):\n");
		fprintf(out, "%12s %12s %10s  %s\n", "A", "B", "change", "SITE");
	}
	for (size_t i = 0; i < d->nsites && i < 8; i++) {
		const struct gs_diff_site *s = &d->sites[i];
		char x[32], y[32], c[32], fn[1024], file[2048];
		gs_fmt_dur(x, sizeof(x), s->a_ns);
		gs_fmt_dur(y, sizeof(y), s->b_ns);
		fmt_change(c, sizeof(c), s->a_ns, s->b_ns);
		if (!s->function[0]) {
			fprintf(out, "%12s %12s %10s  (no stack sampled during the wait)\n", x, y, c);
			continue;
		}
		gs_esc_term_buf(fn, sizeof(fn), s->function);
		gs_esc_term_buf(file, sizeof(file), s->file);
		fprintf(out, "%12s %12s %10s  %s (%s)\n", x, y, c, fn, file);
	}
	if (v->fail_percent >= 0) {
		char c[32];
		fmt_change(c, sizeof(c), a->threads_wait_ns, b->threads_wait_ns);
		fprintf(out,
			"\n%s: GIL wait of all threads %s, contention %.1f%% to %.1f%% (%+.1f%%) (--fail-if-worse "
			"%g%%)\n",
			gs_diff_worse(d, v->fail_percent) ? "WORSE" : "not worse", c, contention(a), contention(b),
			contention(a) > 0 ? 100.0 * (contention(b) - contention(a)) / contention(a) : 0.0,
			v->fail_percent);
	}
}

static void json_figures(const struct gs_diff_figures *f, FILE *out)
{
	fprintf(out,
		"{\"wall_ns\": %" PRIu64 ", \"gil_ns\": %" PRIu64 ", \"gil_held_ns\": %" PRIu64
		", \"gil_contended_ns\": %" PRIu64 ", \"utilisation\": %.4f, \"contention\": %.4f"
		", \"acquisitions\": %" PRIu64 ", \"forced_drops\": ",
		f->wall_ns, f->gil_ns, f->held_ns, f->contended_ns, share(f->held_ns, f->gil_ns) / 100.0,
		contention(f) / 100.0, f->acquisitions);
	if (f->drops_told_apart)
		fprintf(out, "%" PRIu64 ", \"drop_requests\": %" PRIu64, f->forced_drops, f->drop_requests);
	else
		fputs("null, \"drop_requests\": null", out);
	fprintf(out, ", \"threads_held_ns\": %" PRIu64 ", \"threads_wait_ns\": %" PRIu64 ", \"threads\": %zu}",
		f->threads_held_ns, f->threads_wait_ns, f->nthreads);
}

static void json_thread(const struct gs_thread *t, FILE *out)
{
	if (!t) {
		fputs("null", out);
		return;
	}
	fprintf(out,
		"{\"tid\": %u, \"pid\": %u, \"lifetime_ns\": %" PRIu64 ", \"held_ns\": %" PRIu64
		", \"wait_ns\": %" PRIu64 ", \"no_gil_ns\": %" PRIu64 ", \"acquisitions\": %" PRIu64
		", \"forced_drops\": %" PRIu64 ", \"longest_wait_ns\": %" PRIu64 "}",
		t->tid, t->pid, life(t), t->held_ns, t->wait_ns, t->run_nogil_ns, t->acquisitions, t->forced_drops,
		t->longest_wait_ns);
}

static void json_holds(const struct gs_analysis *a, FILE *out)
{
	fputc('[', out);
	for (int i = 0; i < a->ntop_holds && i < 5; i++) {
		const struct gs_hold *h = &a->top_holds[i];
		const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)a, h->tid);
		fprintf(out, "%s{\"ns\": %" PRIu64 ", \"tid\": %u, \"thread\": ", i ? ", " : "", h->ns, h->tid);
		gs_esc_json(out, t ? gs_thread_name(a, t) : "?");
		fputc('}', out);
	}
	fputc(']', out);
}

static void json_percent(FILE *out, const char *key, uint64_t x, uint64_t y)
{
	double p = gs_diff_percent(x, y);
	if (isinf(p))
		fprintf(out, ", \"%s\": null", key);
	else
		fprintf(out, ", \"%s\": %.2f", key, p);
}

void gs_diff_json(const struct gs_diff *d, const struct gs_diff_view *v, FILE *out)
{
	fputs("{\"schema\": \"gilscope.diff/1\", \"a\": {\"file\": ", out);
	gs_esc_json(out, v->path_a);
	fputs(", \"command\": ", out);
	gs_esc_json(out, v->a->command);
	fputs(", \"figures\": ", out);
	json_figures(&d->a, out);
	fputs(", \"longest_holds\": ", out);
	json_holds(v->a, out);
	fputs("}, \"b\": {\"file\": ", out);
	gs_esc_json(out, v->path_b);
	fputs(", \"command\": ", out);
	gs_esc_json(out, v->b->command);
	fputs(", \"figures\": ", out);
	json_figures(&d->b, out);
	fputs(", \"longest_holds\": ", out);
	json_holds(v->b, out);
	fprintf(out, "}, \"change\": {\"utilisation_pt\": %.2f, \"contention_pt\": %.2f",
		share(d->b.held_ns, d->b.gil_ns) - share(d->a.held_ns, d->a.gil_ns),
		contention(&d->b) - contention(&d->a));
	json_percent(out, "threads_wait_percent", d->a.threads_wait_ns, d->b.threads_wait_ns);
	json_percent(out, "acquisitions_percent", d->a.acquisitions, d->b.acquisitions);
	if (d->a.drops_told_apart && d->b.drops_told_apart)
		json_percent(out, "forced_drops_percent", d->a.forced_drops, d->b.forced_drops);
	fputs("}, \"threads\": [", out);
	for (size_t i = 0; i < d->npairs; i++) {
		fputs(i ? ", {\"name\": " : "{\"name\": ", out);
		gs_esc_json(out, d->pairs[i].name);
		fprintf(out, ", \"ordinal\": %u, \"a\": ", d->pairs[i].ordinal);
		json_thread(d->pairs[i].a, out);
		fputs(", \"b\": ", out);
		json_thread(d->pairs[i].b, out);
		fputc('}', out);
	}
	fputs("], \"wait_sites\": [", out);
	for (size_t i = 0; i < d->nsites; i++) {
		const struct gs_diff_site *s = &d->sites[i];
		fputs(i ? ", {\"function\": " : "{\"function\": ", out);
		if (s->function[0])
			gs_esc_json(out, s->function);
		else
			fputs("null", out);
		fputs(", \"file\": ", out);
		if (s->function[0])
			gs_esc_json(out, s->file);
		else
			fputs("null", out);
		fprintf(out,
			", \"a_ns\": %" PRIu64 ", \"b_ns\": %" PRIu64 ", \"a_waits\": %" PRIu64
			", \"b_waits\": %" PRIu64 "}",
			s->a_ns, s->b_ns, s->a_waits, s->b_waits);
	}
	fputs("], \"fail_if_worse_percent\": ", out);
	if (v->fail_percent >= 0)
		fprintf(out, "%g, \"worse\": %s}\n", v->fail_percent,
			gs_diff_worse(d, v->fail_percent) ? "true" : "false");
	else
		fputs("null, \"worse\": null}\n", out);
}
