/* perfetto.c - a small protobuf encoder for the fields gilscope writes (field numbers from
 * Perfetto's trace_packet.proto, track_descriptor.proto, track_event.proto; the subset is in
 * tests/functional/proto/perfetto_subset.proto, and the tests decode the output with protoc). */
#define _GNU_SOURCE
#include "output/perfetto.h"
#include "base/escape.h"
#include "analysis/analysis.h"
#include "output/states.h"
#include "base/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct pb {
	uint8_t *b;
	size_t len, cap;
};

static void pb_put(struct pb *p, const void *d, size_t n)
{
	if (!n)
		return;
	if (p->len + n > p->cap) {
		p->cap = (p->len + n) * 2 + 64;
		p->b = gs_realloc_array(p->b, p->cap, 1);
	}
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void pb_varint(struct pb *p, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	do {
		b[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_put(p, b, n);
}

static void pb_uint(struct pb *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3 | 0);
	pb_varint(p, v);
}

static void pb_fixed64(struct pb *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3 | 1);
	pb_put(p, &v, 8); /* little-endian */
}

static void pb_bytes(struct pb *p, unsigned field, const void *d, size_t n)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, n);
	pb_put(p, d, n);
}

static void pb_str(struct pb *p, unsigned field, const char *s) { pb_bytes(p, field, s, strlen(s)); }

enum {
	TRACE_PACKET = 1,
	TP_TIMESTAMP = 8,
	TP_SEQ_ID = 10,
	TP_TRACK_EVENT = 11,
	TP_SEQ_FLAGS = 13,
	TP_CLOCK_ID = 58,
	TP_TRACK_DESC = 60,
	TD_UUID = 1,
	TD_NAME = 2,
	TD_PROCESS = 3,
	TD_THREAD = 4,
	TD_PARENT = 5,
	TD_COUNTER = 8,
	PD_PID = 1,
	PD_NAME = 6,
	THD_PID = 1,
	THD_TID = 2,
	THD_NAME = 5,
	TE_TYPE = 9,
	TE_TRACK = 11,
	TE_CATEGORIES = 22,
	TE_NAME = 23,
	TE_COUNTER_VALUE = 30,
	TE_FLOW = 47,
	TE_TERMINATING_FLOW = 48,
	TYPE_BEGIN = 1,
	TYPE_END = 2,
	TYPE_INSTANT = 3,
	TYPE_COUNTER = 4,
	CLOCK_MONOTONIC_ID = 3,
};

struct pf {
	FILE *out;
	const struct gs_analysis *a;
	struct pb pkt, body;
	uint64_t packets;
	struct {
		int valid;
		enum gs_slice kind;
		uint64_t start, end;
		uint32_t pid, tid;
	} * open;
	size_t cap;
	uint64_t *known; /* track uuids already described */
	size_t nknown, capknown;
	struct {
		uint32_t pid;
		int gil;
		uint32_t tid;
	} * rel;
	size_t nrel, caprel;
	uint64_t flow;
};

static void emit_packet(struct pf *f, uint64_t ts, unsigned field, const struct pb *body)
{
	struct pb *p = &f->pkt;
	p->len = 0;
	if (ts) {
		pb_uint(p, TP_TIMESTAMP, ts);
		pb_uint(p, TP_CLOCK_ID, CLOCK_MONOTONIC_ID);
	}
	pb_uint(p, TP_SEQ_ID, 1);
	if (!f->packets++)
		pb_uint(p, TP_SEQ_FLAGS, 1); /* SEQ_INCREMENTAL_STATE_CLEARED */
	pb_bytes(p, field, body->b, body->len);
	/* Trace.packet */
	{
		struct pb outer = { 0 };
		pb_bytes(&outer, TRACE_PACKET, p->b, p->len);
		fwrite(outer.b, 1, outer.len, f->out);
		free(outer.b);
	}
}

static uint64_t proc_uuid(uint32_t pid) { return (uint64_t)pid << 1 | 1; }
static uint64_t thread_uuid(uint32_t pid, uint32_t tid) { return ((uint64_t)pid << 32 | tid) << 1; }
static uint64_t counter_uuid(uint32_t pid, int gil)
{
	return ((uint64_t)pid << 32 | (uint32_t)gil) << 1 | (1ull << 63);
}

static int known(struct pf *f, uint64_t uuid)
{
	for (size_t i = 0; i < f->nknown; i++)
		if (f->known[i] == uuid)
			return 1;
	if (f->nknown == f->capknown) {
		f->capknown = f->capknown ? f->capknown * 2 : 64;
		f->known = gs_realloc_array(f->known, f->capknown, sizeof(uint64_t));
	}
	f->known[f->nknown++] = uuid;
	return 0;
}

static void describe_process_as(struct pf *f, uint32_t pid, int force)
{
	struct pb pd = { 0 }, td = { 0 };
	char name[600];
	const struct gs_process *p = gs_analysis_process((struct gs_analysis *)f->a, pid);
	if (known(f, proc_uuid(pid)) && !force)
		return;
	if (p && p->python_version[0])
		snprintf(name, sizeof(name), "CPython %s (pid %u)", p->python_version, pid);
	else
		snprintf(name, sizeof(name), "pid %u", pid);
	pb_uint(&pd, PD_PID, pid);
	pb_str(&pd, PD_NAME, name);
	pb_uint(&td, TD_UUID, proc_uuid(pid));
	pb_bytes(&td, TD_PROCESS, pd.b, pd.len);
	emit_packet(f, 0, TP_TRACK_DESC, &td);
	free(pd.b);
	free(td.b);
}

static void describe_process(struct pf *f, uint32_t pid) { describe_process_as(f, pid, 0); }

static void describe_thread(struct pf *f, const struct gs_thread *t, int force)
{
	struct pb thd = { 0 }, td = { 0 };
	char name[80];
	if (known(f, thread_uuid(t->pid, t->tid)) && !force)
		return;
	describe_process(f, t->pid);
	snprintf(name, sizeof(name), "%s%.*s", t->is_main ? "* " : "", (int)gs_utf8_prefix(gs_thread_name(f->a, t), 40),
		 gs_thread_name(f->a, t));
	pb_uint(&thd, THD_PID, t->pid);
	pb_uint(&thd, THD_TID, t->tid);
	pb_str(&thd, THD_NAME, name);
	pb_uint(&td, TD_UUID, thread_uuid(t->pid, t->tid));
	pb_uint(&td, TD_PARENT, proc_uuid(t->pid));
	pb_bytes(&td, TD_THREAD, thd.b, thd.len);
	emit_packet(f, 0, TP_TRACK_DESC, &td);
	free(thd.b);
	free(td.b);
}

static void track_event(struct pf *f, uint64_t ts, uint64_t track, int type, const char *name, const char *cat,
			int64_t counter, uint64_t flow, uint64_t term_flow)
{
	struct pb *b = &f->body;
	b->len = 0;
	pb_uint(b, TE_TYPE, (uint64_t)type);
	pb_uint(b, TE_TRACK, track);
	if (cat)
		pb_str(b, TE_CATEGORIES, cat);
	if (name)
		pb_str(b, TE_NAME, name);
	if (type == TYPE_COUNTER)
		pb_uint(b, TE_COUNTER_VALUE, (uint64_t)counter);
	if (flow)
		pb_fixed64(b, TE_FLOW, flow);
	if (term_flow)
		pb_fixed64(b, TE_TERMINATING_FLOW, term_flow);
	emit_packet(f, ts, TP_TRACK_EVENT, b);
}

static void flush(struct pf *f, size_t i)
{
	const struct gs_thread *t = &f->a->threads[i];
	const struct gs_state_style *st = gs_state_style(f->open[i].kind);
	uint64_t track;
	if (!f->open[i].valid || !st->name || f->open[i].end <= f->open[i].start)
		return;
	describe_thread(f, t, 0);
	track = thread_uuid(f->open[i].pid, f->open[i].tid);
	track_event(f, f->open[i].start, track, TYPE_BEGIN, st->name, st->gil ? "GIL" : "state", 0, 0, 0);
	track_event(f, f->open[i].end, track, TYPE_END, NULL, NULL, 0, 0, 0);
}

static void on_slice(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct pf *f = ctx;
	size_t i = (size_t)(t - f->a->threads);
	if (i >= f->cap) {
		size_t ncap = f->cap ? f->cap : 64;
		while (ncap <= i)
			ncap *= 2;
		f->open = gs_realloc_array(f->open, ncap, sizeof(*f->open));
		memset(f->open + f->cap, 0, (ncap - f->cap) * sizeof(*f->open));
		f->cap = ncap;
	}
	if (f->open[i].valid && f->open[i].kind == kind && f->open[i].end == start) {
		f->open[i].end = end;
		return;
	}
	flush(f, i);
	f->open[i].valid = 1;
	f->open[i].kind = kind;
	f->open[i].start = start;
	f->open[i].end = end;
	f->open[i].pid = t->pid;
	f->open[i].tid = t->tid;
}

static void on_gil(void *ctx, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *t,
		   uint64_t time)
{
	struct pf *f = ctx;
	size_t r;
	for (r = 0; r < f->nrel; r++)
		if (f->rel[r].pid == g->pid && f->rel[r].gil == g->number)
			break;
	if (r == f->nrel) {
		if (f->nrel == f->caprel) {
			f->caprel = f->caprel ? f->caprel * 2 : 8;
			f->rel = gs_realloc_array(f->rel, f->caprel, sizeof(*f->rel));
		}
		f->rel[f->nrel].pid = g->pid;
		f->rel[f->nrel].gil = g->number;
		f->rel[f->nrel].tid = 0;
		f->nrel++;
	}
	describe_thread(f, t, 0);
	switch (ev) {
	case GS_GE_RELEASE:
		f->rel[r].tid = t->tid;
		f->flow++;
		track_event(f, time, thread_uuid(t->pid, t->tid), TYPE_INSTANT, "GIL released", "GIL", 0, f->flow, 0);
		break;
	case GS_GE_ACQUIRE:
		if (f->rel[r].tid && f->rel[r].tid != t->tid)
			track_event(f, time, thread_uuid(t->pid, t->tid), TYPE_INSTANT, "GIL taken", "GIL", 0, 0,
				    f->flow);
		f->rel[r].tid = 0;
		break;
	case GS_GE_REQUEST:
		track_event(f, time, thread_uuid(t->pid, t->tid), TYPE_INSTANT, "switch request", "GIL", 0, 0, 0);
		break;
	case GS_GE_WAITERS:
		if (!known(f, counter_uuid(g->pid, g->number))) {
			struct pb td = { 0 }, cd = { 0 };
			char name[64];
			describe_process(f, g->pid);
			snprintf(name, sizeof(name), "GIL %d waiters", g->number);
			pb_uint(&td, TD_UUID, counter_uuid(g->pid, g->number));
			pb_uint(&td, TD_PARENT, proc_uuid(g->pid));
			pb_str(&td, TD_NAME, name);
			pb_bytes(&td, TD_COUNTER, cd.b, 0);
			emit_packet(f, 0, TP_TRACK_DESC, &td);
			free(td.b);
		}
		track_event(f, time, counter_uuid(g->pid, g->number), TYPE_COUNTER, NULL, NULL, g->nwaiters, 0, 0);
		break;
	}
}

/* record -e: a thread's running total of a counter, on a counter track of its own under the
 * thread's process (named "EVENT (TID n)"). */
static void on_counter(void *ctx, uint32_t pid, uint32_t tid, uint64_t time, const char *name, uint64_t value)
{
	struct pf *f = ctx;
	uint64_t uuid = (gs_fnv1a(GS_FNV1A_INIT, name) ^ ((uint64_t)pid << 32 | tid)) | (3ull << 62);
	if (!known(f, uuid)) {
		struct pb td = { 0 }, cd = { 0 };
		describe_process(f, pid);
		pb_uint(&td, TD_UUID, uuid);
		pb_uint(&td, TD_PARENT, proc_uuid(pid));
		pb_str(&td, TD_NAME, name);
		pb_bytes(&td, TD_COUNTER, cd.b, 0);
		emit_packet(f, 0, TP_TRACK_DESC, &td);
		free(td.b);
	}
	track_event(f, time, uuid, TYPE_COUNTER, NULL, NULL, (int64_t)value, 0, 0);
}

int gs_perfetto_export(const char *path, FILE *out, char *why, size_t whylen)
{
	struct gs_analysis a;
	struct pf f = { .out = out, .a = &a };
	struct gs_hooks hooks = { .ctx = &f, .slice = on_slice, .gil = on_gil, .counter = on_counter };
	int err = gs_analysis_load_hooked(&a, path, NULL, &hooks, why, whylen);
	if (err == 0) {
		for (size_t i = 0; i < f.cap; i++)
			flush(&f, i);
		for (size_t i = 0; i < a.nprocs; i++) /* final names (known at the end) */
			describe_process_as(&f, a.procs[i].pid, 1);
		for (size_t i = 0; i < a.nthreads; i++)
			describe_thread(&f, &a.threads[i], 1);
		gs_analysis_free(&a);
	}
	free(f.pkt.b);
	free(f.body.b);
	free(f.open);
	free(f.known);
	free(f.rel);
	return err;
}
