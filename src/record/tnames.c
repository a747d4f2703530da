/* tnames.c - Python thread names and the switch interval while recording (see tnames.h). */
#include "record/tnames.h"
#include "base/util.h"
#include "cpython/pyname.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	uint32_t tid; /* 0: free */
	uint64_t next_ns;
	char name[GS_PYNAME_MAX]; /* as last emitted, "" none */
};

struct gs_tnames {
	const struct gs_python *py;
	struct gs_emit emit;
	struct slot *v;
	size_t cap, count;
	uint64_t interval_us, interval_next;
	uint64_t main_next; /* the main thread's name: read through another thread's _bootstrap_inner frame */
	char main_name[GS_PYNAME_MAX];
	uint64_t named, failed;
	struct gs_pyname_memo memo; /* where the threads' `_name` was found last */
};

struct gs_tnames *gs_tnames_new(const struct gs_python *py, const struct gs_emit *emit)
{
	struct gs_tnames *tn = gs_calloc(1, sizeof(*tn));
	tn->py = py;
	tn->emit = *emit;
	tn->cap = 256;
	tn->v = gs_calloc(tn->cap, sizeof(*tn->v));
	return tn;
}

void gs_tnames_free(struct gs_tnames *tn)
{
	if (!tn)
		return;
	free(tn->v);
	free(tn);
}

static size_t hash(uint32_t tid, size_t cap) { return (size_t)(tid * 2654435761u) & (cap - 1); }

static void grow(struct gs_tnames *tn)
{
	size_t ncap = tn->cap * 2;
	struct slot *nv = gs_calloc(ncap, sizeof(*nv));
	for (size_t i = 0; i < tn->cap; i++)
		if (tn->v[i].tid) {
			size_t j = hash(tn->v[i].tid, ncap);
			while (nv[j].tid)
				j = (j + 1) & (ncap - 1);
			nv[j] = tn->v[i];
		}
	free(tn->v);
	tn->v = nv;
	tn->cap = ncap;
}

static struct slot *slot_get(struct gs_tnames *tn, uint32_t tid)
{
	size_t j;
	if (2 * (tn->count + 1) > tn->cap)
		grow(tn);
	for (j = hash(tid, tn->cap); tn->v[j].tid; j = (j + 1) & (tn->cap - 1))
		if (tn->v[j].tid == tid)
			return &tn->v[j];
	tn->v[j].tid = tid;
	tn->count++;
	return &tn->v[j];
}

/* The _bootstrap_inner frame among the outermost ones, 0 when none. */
static uint64_t bootstrap_frame(struct gs_pystacks *ps, const struct gs_pyframe *f, int n)
{
	for (int i = n - 1; i >= 0 && i >= n - 4; i--) {
		const char *q, *fn;
		if (gs_pystacks_code(ps, f[i].code, &q, &fn) == 0 && gs_pyname_is_bootstrap(q, fn))
			return f[i].addr;
	}
	return 0;
}

/* Emits tid's name when it is new or changed; *last is the name emitted before. */
static void emit_name(struct gs_tnames *tn, uint32_t tid, char *last, const char *name, int len, uint64_t now)
{
	struct gs_rec r = { .type = GS_REC_PYNAME, .pid = (uint32_t)tn->py->pid, .tid = tid, .time = now };
	if (strcmp(name, last) == 0)
		return;
	if (!last[0])
		tn->named++;
	memcpy(last, name, (size_t)len + 1);
	gs_emit_rec(&tn->emit, &r, name, (size_t)len + 1);
}

/* The main thread (its tid is the pid) through the threading module that frame runs with. */
static void main_thread(struct gs_tnames *tn, struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t frame,
			uint64_t now)
{
	char name[GS_PYNAME_MAX];
	int len;
	if (now < tn->main_next)
		return;
	tn->main_next = now + GS_TNAMES_PERIOD_NS;
	len = gs_pyname_main_thread(&tn->py->img.layout.obj, gs_pystacks_layout(ps), read, ctx, frame, name,
				    sizeof(name));
	if (len > 0)
		emit_name(tn, (uint32_t)tn->py->pid, tn->main_name, name, len, now);
}

void gs_tnames_sample(struct gs_tnames *tn, struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint32_t tid,
		      const struct gs_pyframe *f, int n, uint64_t now)
{
	struct slot *s;
	char name[GS_PYNAME_MAX];
	uint64_t frame;
	int len;

	if (!tn)
		return;
	s = slot_get(tn, tid);
	if (now < s->next_ns)
		return;
	/* a thread not yet (or never) in _bootstrap_inner, or a torn read: soon again */
	s->next_ns = now + GS_TNAMES_RETRY_NS;
	frame = bootstrap_frame(ps, f, n);
	if (!frame)
		return;
	len = gs_pyname_thread_memo(&tn->py->img.layout.obj, gs_pystacks_layout(ps), read, ctx, frame, &tn->memo, name,
				    sizeof(name));
	if (len <= 0) {
		tn->failed++;
		return;
	}
	s->next_ns = now + GS_TNAMES_PERIOD_NS;
	emit_name(tn, tid, s->name, name, len, now);
	main_thread(tn, ps, read, ctx, frame, now);
}

void gs_tnames_tick(struct gs_tnames *tn, gs_mem_reader read, void *ctx, uint64_t now)
{
	uint64_t us;
	if (!tn || now < tn->interval_next)
		return;
	tn->interval_next = now + GS_TNAMES_PERIOD_NS;
	if (gs_pyname_switch_interval(&tn->py->img.layout, tn->py->runtime, read, ctx, &us) == 0 &&
	    us != tn->interval_us) {
		tn->interval_us = us;
		gs_emit_meta_u64(&tn->emit, (uint32_t)tn->py->pid, "python.switch_interval_us", us);
	}
}

void gs_tnames_forget(struct gs_tnames *tn, uint32_t tid)
{
	size_t j;
	if (!tn || !tid)
		return;
	for (j = hash(tid, tn->cap); tn->v[j].tid; j = (j + 1) & (tn->cap - 1))
		if (tn->v[j].tid == tid) { /* the slot stays (open addressing), its name and time go */
			tn->v[j].name[0] = '\0';
			tn->v[j].next_ns = 0;
			return;
		}
}

void gs_tnames_counts(const struct gs_tnames *tn, uint64_t *named, uint64_t *failed)
{
	if (!tn)
		return;
	*named += tn->named;
	*failed += tn->failed;
}
