/* trace.c - Trace Event JSON export.
 *
 * Per thread, one track of complete events ("ph":"X") that partition its life: holding the GIL
 * (on or off CPU), waiting for it (S(GIL): asleep, R(GIL): runnable, or on CPU), running without
 * it, sleeping (S, D), runnable (R). Slices of a track never overlap (they come from the
 * analysis' partition), so they nest trivially. Flow arrows go from each releasing thread to
 * the thread that takes the GIL next; instant events mark switch requests; a counter track per
 * GIL shows how many threads wait. Timestamps are CLOCK_MONOTONIC in microseconds with
 * nanosecond decimals (the clock viztracer uses on Linux, so `viztracer --combine` lines them
 * up); pids and tids are integers; viztracer_metadata lets viztracer read the file.
 */
#define _GNU_SOURCE
#include "output/trace.h"
#include "analysis/analysis.h"
#include "output/states.h"
#include "base/escape.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

struct open_slice {
	int valid;
	enum gs_slice kind;
	uint64_t start, end;
	uint32_t pid, tid;
};

struct last_release {
	uint32_t pid;
	int gil;
	uint32_t tid;
	uint64_t time;
};

struct trace {
	FILE *out;
	const struct gs_analysis *a;
	struct open_slice *open;
	size_t cap;
	struct last_release *rel;
	size_t nrel, caprel;
	uint64_t flow;
	uint64_t events;
};

/* stdio and printf cost most of an export: events are formatted by hand into one big buffer,
 * written to the FILE when it holds OBUF bytes or more. Every event is shorter than OSLACK, so
 * room is made once per event (begin_event) and the appends below never check it: they write
 * at `op` and may store up to 64 bytes past what they keep (fixed-size copies compile to a few
 * moves, where copies of strlen bytes call memcpy). */
#define OBUF (1u << 20)
#define OSLACK 1024u
static char obuf[OBUF + OSLACK];
static char *op = obuf;
static FILE *ofile;

static void oflush(void)
{
	if (op > obuf)
		fwrite(obuf, 1, (size_t)(op - obuf), ofile);
	op = obuf;
}

/* a string literal, its length known at compile time */
#define PUT_LIT(lit) (memcpy(op, lit, sizeof(lit) - 1), op += sizeof(lit) - 1)

static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
			    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
			    "8081828384858687888990919293949596979899";

static unsigned ndigits(uint64_t v)
{
	unsigned n = 1;
	while (v >= 10000) {
		v /= 10000;
		n += 4;
	}
	return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

/* v in exactly width digits (zero-padded; width >= the digits of v) at b */
static void digits_at(char *b, unsigned width, uint64_t v)
{
	char *p = b + width;
	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);
		v /= 100;
		p -= 2;
		memcpy(p, pairs + 2 * r, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, pairs + 2 * v, 2);
	} else if (p > b) {
		*--p = (char)('0' + v);
	}
	while (p > b)
		*--p = '0';
}

size_t gs_trace_fmt_u64(char *b, uint64_t v)
{
	unsigned n = ndigits(v);
	digits_at(b, n, v);
	return n;
}

/* ns as microseconds with three decimals: the seconds' digits (kept from the last call, as
 * consecutive timestamps share them) then six digits of microseconds; no seconds: the
 * microseconds without leading zeros. "%" PRIu64 ".%03u" of ns / 1000 and ns % 1000. */
size_t gs_trace_fmt_us(char *b, uint64_t ns)
{
	static uint64_t sec_cached = UINT64_MAX;
	static char sec_digits[24];
	static unsigned sec_len;
	uint64_t sec = ns / 1000000000u;
	uint32_t sub = (uint32_t)(ns % 1000000000u), us = sub / 1000, frac = sub % 1000;
	size_t n;

	if (sec) {
		if (sec != sec_cached) {
			sec_len = (unsigned)gs_trace_fmt_u64(sec_digits, sec);
			sec_cached = sec;
		}
		memcpy(b, sec_digits, sizeof(sec_digits));
		n = sec_len;
		digits_at(b + n, 6, us);
		n += 6;
	} else {
		n = gs_trace_fmt_u64(b, us);
	}
	b[n] = '.';
	digits_at(b + n + 1, 3, frac);
	return n + 4;
}

static void put_u64(uint64_t v) { op += gs_trace_fmt_u64(op, v); }

static void ts(uint64_t ns) { op += gs_trace_fmt_us(op, ns); }

static void begin_event(struct trace *tr)
{
	if (op >= obuf + OBUF)
		oflush();
	if (tr->events++)
		*op++ = ',';
	*op++ = '\n';
}

/* Per slice kind, the text of its complete event before the start time and after the thread id,
 * padded for fixed-size copies. */
struct slice_text {
	char head[128], tail[64];
	size_t head_len, tail_len;
};

static struct slice_text slice_texts[GS_SLICE_N];

static void slice_texts_init(void)
{
	for (int k = 0; k < GS_SLICE_N; k++) {
		const struct gs_state_style *st = gs_state_style((enum gs_slice)k);
		struct slice_text *x = &slice_texts[k];
		int h = 0, t = 0;
		memset(x, 0, sizeof(*x));
		if (st->name) {
			h = snprintf(x->head, sizeof(x->head),
				     "{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":", st->name,
				     st->gil ? "GIL" : "process state");
			t = snprintf(x->tail, sizeof(x->tail), ",\"cname\":\"%s\"}", st->cname);
		}
		x->head_len = h > 0 && (size_t)h < sizeof(x->head) ? (size_t)h : 0;
		x->tail_len = t > 0 && (size_t)t < sizeof(x->tail) ? (size_t)t : 0;
	}
}

static void emit_slice(struct trace *tr, const struct open_slice *s)
{
	const struct slice_text *x;
	if ((unsigned)s->kind >= GS_SLICE_N || s->end <= s->start)
		return;
	x = &slice_texts[s->kind];
	if (!x->head_len || !x->tail_len)
		return;
	begin_event(tr);
	memcpy(op, x->head, sizeof(x->head));
	op += x->head_len;
	ts(s->start);
	PUT_LIT(",\"dur\":");
	ts(s->end - s->start);
	PUT_LIT(",\"pid\":");
	put_u64(s->pid);
	PUT_LIT(",\"tid\":");
	put_u64(s->tid);
	memcpy(op, x->tail, sizeof(x->tail));
	op += x->tail_len;
}

static void on_slice(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct trace *tr = ctx;
	size_t i = (size_t)(t - tr->a->threads);
	struct open_slice *s;
	if (i >= tr->cap) {
		size_t ncap = tr->cap ? tr->cap : 64;
		while (ncap <= i)
			ncap *= 2;
		tr->open = gs_realloc_array(tr->open, ncap, sizeof(*tr->open));
		memset(tr->open + tr->cap, 0, (ncap - tr->cap) * sizeof(*tr->open));
		tr->cap = ncap;
	}
	s = &tr->open[i];
	if (s->valid && s->kind == kind && s->end == start && s->tid == t->tid) {
		s->end = end; /* the same state goes on */
		return;
	}
	if (s->valid)
		emit_slice(tr, s);
	s->valid = 1;
	s->kind = kind;
	s->start = start;
	s->end = end;
	s->pid = t->pid;
	s->tid = t->tid;
}

static struct last_release *release_of(struct trace *tr, const struct gs_gilstat *g)
{
	for (size_t i = 0; i < tr->nrel; i++)
		if (tr->rel[i].pid == g->pid && tr->rel[i].gil == g->number)
			return &tr->rel[i];
	if (tr->nrel == tr->caprel) {
		tr->caprel = tr->caprel ? tr->caprel * 2 : 8;
		tr->rel = gs_realloc_array(tr->rel, tr->caprel, sizeof(*tr->rel));
	}
	memset(&tr->rel[tr->nrel], 0, sizeof(tr->rel[0]));
	tr->rel[tr->nrel].pid = g->pid;
	tr->rel[tr->nrel].gil = g->number;
	return &tr->rel[tr->nrel++];
}

static void on_gil(void *ctx, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *t,
		   uint64_t time)
{
	struct trace *tr = ctx;
	struct last_release *r = release_of(tr, g);
	switch (ev) {
	case GS_GE_RELEASE:
		r->tid = t->tid;
		r->time = time;
		break;
	case GS_GE_ACQUIRE:
		if (r->tid && r->tid != t->tid) {
			tr->flow++;
			begin_event(tr);
			PUT_LIT("{\"name\": \"GIL handover\", \"cat\": \"GIL\", \"ph\": \"s\", \"id\": ");
			put_u64(tr->flow);
			PUT_LIT(",\"ts\":");
			ts(r->time);
			PUT_LIT(", \"pid\": ");
			put_u64(g->pid);
			PUT_LIT(", \"tid\": ");
			put_u64(r->tid);
			PUT_LIT("}");
			begin_event(tr);
			PUT_LIT("{\"name\": \"GIL handover\", \"cat\": \"GIL\", \"ph\": \"f\", \"bp\": \"e\", "
				"\"id\": ");
			put_u64(tr->flow);
			PUT_LIT(",\"ts\":");
			ts(time);
			PUT_LIT(", \"pid\": ");
			put_u64(g->pid);
			PUT_LIT(", \"tid\": ");
			put_u64(t->tid);
			PUT_LIT("}");
		}
		r->tid = 0;
		break;
	case GS_GE_REQUEST:
		begin_event(tr);
		PUT_LIT("{\"name\": \"switch request\", \"cat\": \"GIL\", \"ph\": \"i\", \"s\": \"t\"");
		PUT_LIT(",\"ts\":");
		ts(time);
		PUT_LIT(", \"pid\": ");
		put_u64(g->pid);
		PUT_LIT(", \"tid\": ");
		put_u64(t->tid);
		PUT_LIT("}");
		break;
	case GS_GE_WAITERS:
		begin_event(tr);
		PUT_LIT("{\"name\": \"GIL ");
		put_u64((uint64_t)g->number);
		PUT_LIT(" waiters\", \"cat\": \"GIL\", \"ph\": \"C\"");
		PUT_LIT(",\"ts\":");
		ts(time);
		PUT_LIT(", \"pid\": ");
		put_u64(g->pid);
		PUT_LIT(", \"args\": {\"waiting\": ");
		put_u64((uint64_t)(g->nwaiters > 0 ? g->nwaiters : 0));
		PUT_LIT("}}");
		break;
	}
}

/* The events of a viztracer (or other Trace Event JSON) file, validated. */
static json_t *load_combine(const char *path, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *ev;
	if (!root) {
		snprintf(why, whylen, "%s is not valid JSON (line %d: %s)", path, jerr.line, jerr.text);
		return NULL;
	}
	ev = json_is_object(root) ? json_object_get(root, "traceEvents") : root;
	if (!json_is_array(ev)) {
		snprintf(why, whylen, "%s has no traceEvents array: not a viztracer or Trace Event file", path);
		json_decref(root);
		return NULL;
	}
	json_incref(ev);
	json_decref(root);
	return ev;
}

/* Hardware or software counter samples from perf script text: numeric values (per4m wrote
 * strings, which viewers do not plot). */
static void on_counter(void *ctx, uint32_t pid, uint32_t tid, uint64_t time, const char *name, uint64_t value)
{
	struct trace *tr = ctx;
	(void)tid;
	begin_event(tr);
	oflush();
	fputs("{\"name\": ", tr->out);
	gs_esc_json(tr->out, name);
	fputs(", \"cat\": \"counters\", \"ph\": \"C\"", tr->out);
	fprintf(tr->out, ", \"ts\": %" PRIu64 ".%03" PRIu64 ", \"pid\": %u, \"args\": {", time / 1000, time % 1000,
		pid);
	gs_esc_json(tr->out, name);
	fprintf(tr->out, ": %" PRIu64 "}}", value);
}

struct gs_trace {
	struct trace tr;
	struct gs_hooks hooks;
	json_t *extra;
};

struct gs_trace *gs_trace_begin(FILE *out, const char *combine, struct gs_analysis *a, char *why, size_t whylen)
{
	struct gs_trace *t;
	json_t *extra = NULL;

	if (combine && !(extra = load_combine(combine, why, whylen)))
		return NULL;
	t = gs_calloc(1, sizeof(*t));
	t->tr.out = out;
	t->tr.a = a;
	t->hooks = (struct gs_hooks){ .ctx = &t->tr, .slice = on_slice, .gil = on_gil, .counter = on_counter };
	t->extra = extra;
	ofile = out;
	op = obuf;
	slice_texts_init();
	fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [", out);
	return t;
}

const struct gs_hooks *gs_trace_hooks(const struct gs_trace *t) { return &t->hooks; }

void gs_trace_free(struct gs_trace *t)
{
	if (!t)
		return;
	oflush();
	free(t->tr.open);
	free(t->tr.rel);
	json_decref(t->extra);
	free(t);
}

/* The combined file's events, then the slices still open, then the names of processes and threads. */
static void trace_tail(struct trace *tr, json_t *extra, size_t *merged, size_t *skipped)
{
	const struct gs_analysis *a = tr->a;
	FILE *out = tr->out;
	oflush();
	if (extra) {
		size_t i;
		json_t *e;
		json_array_foreach(extra, i, e)
		{
			char *s;
			/* only events with integer ids and a numeric timestamp (or metadata) are kept */
			if (!json_is_object(e) || !json_is_string(json_object_get(e, "ph")) ||
			    (json_object_get(e, "pid") && !json_is_integer(json_object_get(e, "pid"))) ||
			    (json_object_get(e, "tid") && !json_is_integer(json_object_get(e, "tid"))) ||
			    (json_object_get(e, "ts") && !json_is_number(json_object_get(e, "ts")))) {
				(*skipped)++;
				continue;
			}
			s = json_dumps(e, JSON_COMPACT);
			if (!s) {
				(*skipped)++;
				continue;
			}
			begin_event(tr);
			oflush();
			fputs(s, out);
			free(s);
			(*merged)++;
		}
	}
	for (size_t i = 0; i < tr->cap; i++)
		if (tr->open[i].valid)
			emit_slice(tr, &tr->open[i]);
	oflush();
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct gs_process *p = &a->procs[i];
		char name[700];
		snprintf(name, sizeof(name), "%s%s%s", p->python_version[0] ? "CPython " : "pid ",
			 p->python_version[0] ? p->python_version : "", p->python_version[0] ? "" : "");
		if (!p->python_version[0])
			snprintf(name, sizeof(name), "pid %u", p->pid);
		begin_event(tr);
		oflush();
		fprintf(out,
			"{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %u, \"tid\": %u, \"args\": {\"name\": ",
			p->pid, p->pid);
		gs_esc_json(out, name);
		fputs("}}", out);
	}
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = &a->threads[i];
		char name[64];
		snprintf(name, sizeof(name), "%s%.*s %u", t->is_main ? "* " : "",
			 (int)gs_utf8_prefix(gs_thread_name(a, t), 40), gs_thread_name(a, t), t->tid);
		begin_event(tr);
		oflush();
		fprintf(out,
			"{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %u, \"tid\": %u, \"args\": {\"name\": ",
			t->pid, t->tid);
		gs_esc_json(out, name);
		fputs("}}", out);
	}
}

void gs_trace_end(struct gs_trace *t)
{
	size_t merged = 0, skipped = 0;
	trace_tail(&t->tr, t->extra, &merged, &skipped);
	fprintf(t->tr.out,
		"\n], \"viztracer_metadata\": {\"version\": \"0.16.3\", \"overflow\": false, \"producer\": \"gilscope "
		"%s\"},"
		" \"gilscope\": {\"lost_events\": %" PRIu64 ", \"complete\": %s, \"clock\": \"CLOCK_MONOTONIC\","
		" \"combined_events\": %zu, \"combined_skipped\": %zu}}\n",
		GS_VERSION, t->tr.a->lost_events, t->tr.a->complete ? "true" : "false", merged, skipped);
	gs_trace_free(t);
}

int gs_trace_json(const char *path, const char *combine, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct gs_trace *t = gs_trace_begin(out, combine, &a, why, whylen);
	int err;

	if (!t)
		return -EINVAL;
	err = gs_analysis_load_hooked(&a, path, NULL, &t->hooks, why, whylen);
	if (err < 0) {
		gs_trace_free(t);
		return err;
	}
	gs_trace_end(t);
	gs_analysis_free(&a);
	return 0;
}
