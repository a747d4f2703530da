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

/* ---- content negotiation (RFC 9110 12.5.1) ----------------------------------------------- */

/* One media range of an Accept header: type/subtype, the version parameter, the weight. */
struct range {
	const char *type, *sub;
	size_t tlen, slen;
	char version[16]; /* "" when absent */
	int q;            /* thousandths */
};

static const char *skip_ows(const char *c)
{
	while (*c == ' ' || *c == '\t')
		c++;
	return c;
}

/* An RFC 9110 token (no separator, no control character, no blank). */
static size_t token_len(const char *c)
{
	size_t n = 0;
	while (c[n] && (unsigned char)c[n] > 0x20 && (unsigned char)c[n] < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c[n]))
		n++;
	return n;
}

/* qvalue = "0" ["." 0*3DIGIT] / "1" ["." 0*3"0"], into thousandths; -1 when malformed. */
static int parse_q(const char *v, size_t len)
{
	int q, scale = 100;
	if (len == 0 || (v[0] != '0' && v[0] != '1') || (len > 1 && (v[1] != '.' || len > 5)))
		return -1;
	q = (v[0] - '0') * 1000;
	for (size_t i = 2; i < len; i++, scale /= 10) {
		if (v[i] < '0' || v[i] > '9' || (q == 1000 && v[i] != '0'))
			return -1;
		q += (v[i] - '0') * scale;
	}
	return q;
}

/* A parameter value: a token or a quoted string (backslash escapes), copied into val (truncated,
 * terminated). Returns the cursor after it, NULL when malformed. */
static const char *param_value(const char *c, char *val, size_t vallen, size_t *rawlen)
{
	size_t n = 0;
	if (*c != '"') {
		*rawlen = token_len(c);
		n = *rawlen < vallen - 1 ? *rawlen : vallen - 1;
		memcpy(val, c, n);
		val[n] = '\0';
		return *rawlen ? c + *rawlen : NULL;
	}
	for (c++; *c != '"'; c++) {
		if (!*c || (*c == '\\' && !*++c))
			return NULL;
		if (n < vallen - 1)
			val[n++] = *c;
	}
	val[n] = '\0';
	*rawlen = n;
	return c + 1;
}

/* The media range at c into r. Returns the cursor at the ',' or NUL that ends it, NULL when the
 * range is malformed (the caller skips to the next ','). */
static const char *parse_range(const char *c, struct range *r)
{
	memset(r, 0, sizeof(*r));
	r->q = 1000;
	c = skip_ows(c);
	r->type = c;
	r->tlen = *c == '*' ? 1 : token_len(c);
	c += r->tlen;
	if (!r->tlen || *c++ != '/')
		return NULL;
	r->sub = c;
	r->slen = *c == '*' ? 1 : token_len(c);
	c += r->slen;
	if (!r->slen || (r->type[0] == '*' && r->sub[0] != '*'))
		return NULL;
	for (c = skip_ows(c); *c == ';'; c = skip_ows(c)) {
		const char *name = skip_ows(c + 1);
		size_t nlen = token_len(name), rawlen;
		char val[16];
		if (!nlen) { /* RFC 9110 5.6.6: *( OWS ";" OWS [ parameter ] ), an empty one is allowed */
			c = name;
			continue;
		}
		c = skip_ows(name + nlen);
		if (*c++ != '=' || !(c = param_value(skip_ows(c), val, sizeof(val), &rawlen)))
			return NULL;
		if (nlen == 1 && (name[0] == 'q' || name[0] == 'Q')) {
			if ((r->q = parse_q(val, rawlen)) < 0)
				return NULL;
		} else if (nlen == 7 && strncasecmp(name, "version", 7) == 0) {
			memcpy(r->version, val, sizeof(val));
		}
	}
	return *c == ',' || !*c ? c : NULL;
}

static int word_is(const char *w, size_t len, const char *s) { return len == strlen(s) && strncasecmp(w, s, len) == 0; }

/* How specifically r names a format (type, subtype, versions it is written in): 0 not at all,
 * 1 * / *, 2 type / *, 3 type/subtype, 4 type/subtype;version=one of ours. */
static int match(const struct range *r, const char *type, const char *sub, const char *const *versions)
{
	if (r->type[0] == '*')
		return 1;
	if (!word_is(r->type, r->tlen, type))
		return 0;
	if (r->sub[0] == '*')
		return 2;
	if (!word_is(r->sub, r->slen, sub))
		return 0;
	if (!r->version[0])
		return 3;
	for (; *versions; versions++)
		if (strcmp(r->version, *versions) == 0)
			return 4;
	return 0;
}

struct pick {
	int spec, q;
	size_t pos;
};

/* The most specific range decides the weight; among equally specific ones the highest q. */
static void consider(struct pick *p, int spec, int q, size_t pos)
{
	if (spec > p->spec || (spec == p->spec && q > p->q)) {
		p->spec = spec;
		p->q = q;
		p->pos = pos;
	}
}

void gs_metrics_accept(const char *accept, struct gs_metrics_accept *a)
{
	static const char *const om_versions[] = { "1.0.0", "0.0.1", NULL };
	static const char *const text_versions[] = { "0.0.4", "1.0.0", NULL };
	struct pick om = { 0 }, text = { 0 };
	struct range r;
	size_t pos = 0;
	for (const char *c = accept ? accept : ""; *c; pos++) {
		const char *end = parse_range(c, &r);
		if (end) {
			consider(&om, match(&r, "application", "openmetrics-text", om_versions), r.q, pos);
			consider(&text, match(&r, "text", "plain", text_versions), r.q, pos);
			c = end;
		} else { /* malformed: skipped up to the next ',' outside a quoted string */
			for (int quoted = 0; *c && (quoted || *c != ','); c++)
				if (*c == '"')
					quoted = !quoted;
				else if (*c == '\\' && quoted && c[1])
					c++;
		}
		if (*c == ',')
			c++;
	}
	a->openmetrics_q = om.spec ? om.q : 0;
	a->text_q = text.spec ? text.q : 0;
	if (!accept || !*skip_ows(accept))
		a->text_q = 1000; /* no preference: anything goes */
	a->openmetrics = a->openmetrics_q > 0 &&
			 (a->openmetrics_q > a->text_q || (a->openmetrics_q == a->text_q && om.pos < text.pos));
}

int gs_metrics_wants_openmetrics(const char *accept)
{
	struct gs_metrics_accept a;
	gs_metrics_accept(accept, &a);
	return a.openmetrics;
}
