/* metrics.c - the Prometheus and OpenMetrics text of a live snapshot (metrics.h). */
#define _GNU_SOURCE
#include "output/metrics.h"
#include "base/escape.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <strings.h>

/* One series of the per-thread families: the rows of one key summed. */
struct series {
	uint32_t pid, tid;
	int gil;
	const char *group;
	uint64_t held_ns, wait_ns, acquisitions, forced_drops;
};

struct out {
	FILE *f;
	int om; /* OpenMetrics */
	const struct gs_live_snap *s;
};

/* A label value: the terminal form (no control character, well-formed UTF-8), then \ " newline. */
static void label_value(FILE *f, const char *v)
{
	char buf[4 * GS_LIVE_NAME_MAX + 16];
	gs_esc_term_buf(buf, sizeof(buf), v);
	for (const char *c = buf; *c; c++) {
		if (*c == '\\' || *c == '"')
			fputc('\\', f);
		fputc(*c, f);
	}
}

static const struct gs_live_proc *proc_of(const struct gs_live_snap *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return &s->procs[i];
	return NULL;
}

static void labels_proc(const struct out *o, uint32_t pid)
{
	const struct gs_live_proc *p = proc_of(o->s, pid);
	fprintf(o->f, "pid=\"%u\",process=\"", pid);
	label_value(o->f, p ? p->name : "?");
	fputc('"', o->f);
}

/* "# HELP/# TYPE" of a family; a counter's samples end in _total (its family name does not in
 * OpenMetrics). */
static void family(const struct out *o, const char *name, const char *type, const char *help)
{
	int counter = strcmp(type, "counter") == 0;
	const char *suffix = counter && !o->om ? "_total" : "";
	fprintf(o->f, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
}

static void seconds(FILE *f, uint64_t ns)
{
	fprintf(f, " %llu.%09llu\n", (unsigned long long)(ns / 1000000000u), (unsigned long long)(ns % 1000000000u));
}

static struct series *group_threads(const struct gs_live_snap *s, int per_tid, size_t *n)
{
	struct series *v = gs_calloc(s->nthreads ? s->nthreads : 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; i < s->nthreads; i++) {
		const struct gs_live_thread *t = &s->threads[i];
		const struct gs_live_proc *p = proc_of(s, t->pid);
		struct series *e = NULL;
		if (!t->gil || !p || !p->is_python || (per_tid && !t->tid))
			continue;
		for (size_t k = 0; k < *n && !e; k++)
			if (v[k].pid == t->pid && v[k].gil == t->gil && strcmp(v[k].group, t->group) == 0 &&
			    (!per_tid || v[k].tid == t->tid))
				e = &v[k];
		if (!e) {
			e = &v[(*n)++];
			e->pid = t->pid;
			e->tid = per_tid ? t->tid : 0;
			e->gil = t->gil;
			e->group = t->group;
		}
		e->held_ns += t->held_ns;
		e->wait_ns += t->wait_ns;
		e->acquisitions += t->acquisitions;
		e->forced_drops += t->forced_drops;
	}
	return v;
}

static void thread_families(const struct out *o, const struct series *v, size_t n, int per_tid)
{
	static const struct {
		const char *name, *help;
		int secs;
		size_t off;
	} fams[] = {
		{ "gilscope_gil_held_seconds", "Time the threads held the GIL.", 1, offsetof(struct series, held_ns) },
		{ "gilscope_gil_wait_seconds", "Time the threads waited for the GIL.", 1,
		  offsetof(struct series, wait_ns) },
		{ "gilscope_gil_acquisitions", "GIL acquisitions.", 0, offsetof(struct series, acquisitions) },
		{ "gilscope_gil_forced_drops", "GIL releases forced by a waiter's switch request.", 0,
		  offsetof(struct series, forced_drops) },
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(o, fams[f].name, "counter", fams[f].help);
		for (size_t i = 0; i < n; i++) {
			uint64_t x;
			memcpy(&x, (const char *)&v[i] + fams[f].off, sizeof(x));
			fprintf(o->f, "%s_total{", fams[f].name);
			labels_proc(o, v[i].pid);
			fprintf(o->f, ",gil=\"%d\",thread=\"", v[i].gil);
			label_value(o->f, v[i].group);
			fputc('"', o->f);
			if (per_tid)
				fprintf(o->f, ",tid=\"%u\"", v[i].tid);
			fputc('}', o->f);
			if (fams[f].secs)
				seconds(o->f, x);
			else
				fprintf(o->f, " %llu\n", (unsigned long long)x);
		}
	}
}

static void gil_labels(const struct out *o, const struct gs_live_gil *g)
{
	labels_proc(o, g->pid);
	fprintf(o->f, ",gil=\"%d\"", g->number);
}

static void histogram(const struct out *o, const struct gs_live_gil *g)
{
	uint64_t cum = 0;
	for (int b = 0; b <= GS_LIVE_BUCKETS; b++) {
		cum += g->hist[b];
		fputs("gilscope_gil_wait_duration_seconds_bucket{", o->f);
		gil_labels(o, g);
		if (b < GS_LIVE_BUCKETS)
			fprintf(o->f, ",le=\"%g\"} %llu\n", (double)gs_live_bucket_ns[b] / 1e9,
				(unsigned long long)cum);
		else
			fprintf(o->f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	fputs("gilscope_gil_wait_duration_seconds_sum{", o->f);
	gil_labels(o, g);
	fputc('}', o->f);
	seconds(o->f, g->wait_sum_ns);
	fputs("gilscope_gil_wait_duration_seconds_count{", o->f);
	gil_labels(o, g);
	fprintf(o->f, "} %llu\n", (unsigned long long)g->waits);
}

static void gil_families(const struct out *o)
{
	const struct gs_live_snap *s = o->s;
	family(o, "gilscope_gil_contended_seconds", "counter", "Time at least one thread waited for the GIL.");
	for (size_t i = 0; i < s->ngils; i++) {
		fputs("gilscope_gil_contended_seconds_total{", o->f);
		gil_labels(o, &s->gils[i]);
		fputc('}', o->f);
		seconds(o->f, s->gils[i].contended_ns);
	}
	family(o, "gilscope_gil_waiters", "gauge", "Threads waiting for the GIL now.");
	for (size_t i = 0; i < s->ngils; i++) {
		fputs("gilscope_gil_waiters{", o->f);
		gil_labels(o, &s->gils[i]);
		fprintf(o->f, "} %d\n", s->gils[i].waiters);
	}
	family(o, "gilscope_gil_wait_duration_seconds", "histogram", "Durations of the finished GIL waits.");
	for (size_t i = 0; i < s->ngils; i++)
		histogram(o, &s->gils[i]);
}

char *gs_metrics_render(const struct gs_live_snap *s, int openmetrics, int per_tid, size_t *len)
{
	char *text = NULL;
	size_t n;
	struct series *v;
	struct out o = { .om = openmetrics, .s = s };
	o.f = open_memstream(&text, len);
	if (!o.f)
		return NULL;
	v = group_threads(s, per_tid, &n);
	thread_families(&o, v, n, per_tid);
	free(v);
	gil_families(&o);
	family(&o, "gilscope_wall_seconds", "counter", "Time each Python process was watched.");
	for (size_t i = 0; i < s->nprocs; i++) {
		if (!s->procs[i].is_python)
			continue;
		fputs("gilscope_wall_seconds_total{", o.f);
		labels_proc(&o, s->procs[i].pid);
		fputc('}', o.f);
		seconds(o.f, s->procs[i].wall_ns);
	}
	family(&o, "gilscope_lost_events", "counter", "Events the kernel or the probes lost.");
	fprintf(o.f, "gilscope_lost_events_total %llu\n", (unsigned long long)s->lost_events);
	if (openmetrics)
		fputs("# EOF\n", o.f);
	if (fclose(o.f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

int gs_metrics_wants_openmetrics(const char *accept)
{
	const char *m;
	if (!accept || !(m = strcasestr(accept, "application/openmetrics-text")))
		return 0;
	/* its parameters, up to the next media range: q=0 refuses it */
	for (const char *c = m; *c && *c != ','; c++)
		if ((c[0] == ';' || c[0] == ' ') && c[1] == 'q' && c[2] == '=')
			return strtod(c + 3, NULL) > 0;
	return 1;
}
