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

/* stdio and printf cost most of an export: events are formatted by hand into one big buffer
 * (`out` below is the buffer, flushed to the FILE when nearly full). */
#define OBUF (1u << 20)
static char obuf[OBUF + 512];
static size_t olen;
static FILE *ofile;

static void oflush(void)
{
	if (olen)
		fwrite(obuf, 1, olen, ofile);
	olen = 0;
}

static void put_n(const char *s, size_t n)
{
	if (olen + n > OBUF) {
		oflush();
		if (n > OBUF) {
			fwrite(s, 1, n, ofile);
			return;
		}
	}
	memcpy(obuf + olen, s, n);
	olen += n;
}

static void put_s(FILE *out, const char *s)
{
	(void)out;
	put_n(s, strlen(s));
}

static void put_u64(FILE *out, uint64_t v)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				    "8081828384858687888990919293949596979899";
	char b[24];
	int i = 24;
	(void)out;
	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);
		v /= 100;
		b[--i] = pairs[2 * r + 1];
		b[--i] = pairs[2 * r];
	}
	if (v >= 10) {
		b[--i] = pairs[2 * v + 1];
		b[--i] = pairs[2 * v];
	} else {
		b[--i] = (char)('0' + v);
	}
	put_n(b + i, (size_t)(24 - i));
}

static void ts(FILE *out, const char *key, uint64_t ns)
{
	char frac[4];
	put_s(out, ",\"");
	put_s(out, key);
	put_s(out, "\":");
	put_u64(out, ns / 1000);
	frac[0] = '.';
	frac[1] = (char)('0' + ns % 1000 / 100);
	frac[2] = (char)('0' + ns % 100 / 10);
	frac[3] = (char)('0' + ns % 10);
	put_n(frac, 4);
}

static void begin_event(struct trace *tr) { put_s(tr->out, tr->events++ ? ",\n" : "\n"); }

static void emit_slice(struct trace *tr, const struct open_slice *s)
{
	const struct gs_state_style *st = gs_state_style(s->kind);
	if (!st->name || s->end <= s->start)
		return;
	begin_event(tr);
	put_s(tr->out, "{\"name\":\"");
	put_s(tr->out, st->name);
	put_s(tr->out, "\",\"cat\":\"");
	put_s(tr->out, st->gil ? "GIL" : "process state");
	put_s(tr->out, "\",\"ph\":\"X\"");
	ts(tr->out, "ts", s->start);
	ts(tr->out, "dur", s->end - s->start);
	put_s(tr->out, ",\"pid\":");
	put_u64(tr->out, s->pid);
	put_s(tr->out, ",\"tid\":");
	put_u64(tr->out, s->tid);
	put_s(tr->out, ",\"cname\":\"");
	put_s(tr->out, st->cname);
	put_s(tr->out, "\"}");
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
	FILE *out = tr->out;
	switch (ev) {
	case GS_GE_RELEASE:
		r->tid = t->tid;
		r->time = time;
		break;
	case GS_GE_ACQUIRE:
		if (r->tid && r->tid != t->tid) {
			tr->flow++;
			begin_event(tr);
			put_s(out, "{\"name\": \"GIL handover\", \"cat\": \"GIL\", \"ph\": \"s\", \"id\": ");
			put_u64(out, tr->flow);
			ts(out, "ts", r->time);
			put_s(out, ", \"pid\": ");
			put_u64(out, g->pid);
			put_s(out, ", \"tid\": ");
			put_u64(out, r->tid);
			put_s(out, "}");
			begin_event(tr);
			put_s(out,
			      "{\"name\": \"GIL handover\", \"cat\": \"GIL\", \"ph\": \"f\", \"bp\": \"e\", \"id\": ");
			put_u64(out, tr->flow);
			ts(out, "ts", time);
			put_s(out, ", \"pid\": ");
			put_u64(out, g->pid);
			put_s(out, ", \"tid\": ");
			put_u64(out, t->tid);
			put_s(out, "}");
		}
		r->tid = 0;
		break;
	case GS_GE_REQUEST:
		begin_event(tr);
		put_s(out, "{\"name\": \"switch request\", \"cat\": \"GIL\", \"ph\": \"i\", \"s\": \"t\"");
		ts(out, "ts", time);
		put_s(out, ", \"pid\": ");
		put_u64(out, g->pid);
		put_s(out, ", \"tid\": ");
		put_u64(out, t->tid);
		put_s(out, "}");
		break;
	case GS_GE_WAITERS:
		begin_event(tr);
		put_s(out, "{\"name\": \"GIL ");
		put_u64(out, (uint64_t)g->number);
		put_s(out, " waiters\", \"cat\": \"GIL\", \"ph\": \"C\"");
		ts(out, "ts", time);
		put_s(out, ", \"pid\": ");
		put_u64(out, g->pid);
		put_s(out, ", \"args\": {\"waiting\": ");
		put_u64(out, (uint64_t)(g->nwaiters > 0 ? g->nwaiters : 0));
		put_s(out, "}}");
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

int gs_trace_json(const char *path, const char *combine, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct trace tr = { .out = out, .a = &a };
	struct gs_hooks hooks = { .ctx = &tr, .slice = on_slice, .gil = on_gil, .counter = on_counter };
	json_t *extra = NULL;
	size_t merged = 0, skipped = 0;
	int err;

	if (combine && !(extra = load_combine(combine, why, whylen)))
		return -EINVAL;
	ofile = out;
	olen = 0;
	fputs("{\"displayTimeUnit\": \"ns\", \"traceEvents\": [", out);
	err = gs_analysis_load_hooked(&a, path, NULL, &hooks, why, whylen);
	oflush();
	if (err < 0) {
		free(tr.open);
		free(tr.rel);
		json_decref(extra);
		return err;
	}
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
				skipped++;
				continue;
			}
			s = json_dumps(e, JSON_COMPACT);
			if (!s) {
				skipped++;
				continue;
			}
			begin_event(&tr);
			oflush();
			fputs(s, out);
			free(s);
			merged++;
		}
		json_decref(extra);
	}
	for (size_t i = 0; i < tr.cap; i++)
		if (tr.open[i].valid)
			emit_slice(&tr, &tr.open[i]);
	oflush();
	for (size_t i = 0; i < a.nprocs; i++) {
		const struct gs_process *p = &a.procs[i];
		char name[700];
		snprintf(name, sizeof(name), "%s%s%s", p->python_version[0] ? "CPython " : "pid ",
			 p->python_version[0] ? p->python_version : "", p->python_version[0] ? "" : "");
		if (!p->python_version[0])
			snprintf(name, sizeof(name), "pid %u", p->pid);
		begin_event(&tr);
		oflush();
		fprintf(out,
			"{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %u, \"tid\": %u, \"args\": {\"name\": ",
			p->pid, p->pid);
		gs_esc_json(out, name);
		fputs("}}", out);
	}
	for (size_t i = 0; i < a.nthreads; i++) {
		const struct gs_thread *t = &a.threads[i];
		char name[64];
		snprintf(name, sizeof(name), "%s%.40s %u", t->is_main ? "* " : "", gs_thread_name(&a, t), t->tid);
		begin_event(&tr);
		oflush();
		fprintf(out,
			"{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %u, \"tid\": %u, \"args\": {\"name\": ",
			t->pid, t->tid);
		gs_esc_json(out, name);
		fputs("}}", out);
	}
	fprintf(out,
		"\n], \"viztracer_metadata\": {\"version\": \"0.16.3\", \"overflow\": false, \"producer\": \"gilscope "
		"%s\"},"
		" \"gilscope\": {\"lost_events\": %" PRIu64 ", \"complete\": %s, \"clock\": \"CLOCK_MONOTONIC\","
		" \"combined_events\": %zu, \"combined_skipped\": %zu}}\n",
		GS_VERSION, a.lost_events, a.complete ? "true" : "false", merged, skipped);
	gs_analysis_free(&a);
	free(tr.open);
	free(tr.rel);
	return 0;
}
