/* natsample.c - native stack samples of the traced threads (see natsample.h). */
#define _GNU_SOURCE
#include "record/natsample.h"
#include "probe/evlist.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define NAT_SAMPLE_TYPE \
	(PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER)
#define NAT_RING_PAGES 512u /* 2 MiB per CPU: ~100 stacks between two reads */

struct copy {
	uint64_t time; /* 0: none */
	uint64_t regs[GS_NATIVE_NREGS];
	uint8_t *stack;
	size_t len;
};

struct natthr {
	uint32_t tid;         /* 0: empty slot; UINT32_MAX: deleted */
	uint64_t in_time;     /* last switch-in */
	struct copy out, cpu; /* the stack at its last switch-out, and its newest on-CPU sample */
	/* the last unwinding: of which copy (its time), result */
	uint64_t unwound_time;
	int unwound_kind; /* 0 none, 1 out, 2 cpu */
	uint64_t *pcs, *sps;
	int npcs, complete;
};

struct gs_natsampler {
	pid_t pid;
	int ncpu;
	size_t stack_size;
	struct gs_evlist *el; /* the two events per CPU, one ring per CPU */
	struct natthr *thr;   /* open addressing by tid */
	size_t cap, used;
	struct gs_native *native;
	struct gs_natsampler_stats st;
};

/* ---- decoding ---------------------------------------------------------------------------- */

int gs_natrec_decode(const struct perf_event_header *h, struct gs_natrec *out)
{
	const uint8_t *p = (const uint8_t *)(h + 1), *end = (const uint8_t *)h + h->size;
	uint64_t abi, size;

	memset(out, 0, sizeof(*out));
	if (h->size < sizeof(*h))
		return -EINVAL;
	switch (h->type) {
	case PERF_RECORD_SAMPLE:
		if (end - p < 32)
			return -EINVAL;
		memcpy(&out->id, p, 8);
		memcpy(&out->pid, p + 8, 4);
		memcpy(&out->tid, p + 12, 4);
		memcpy(&out->time, p + 16, 8);
		memcpy(&abi, p + 24, 8);
		p += 32;
		if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
			if ((size_t)(end - p) < GS_NATIVE_NREGS * 8)
				return -EINVAL;
			out->regs = (const uint64_t *)(const void *)p;
			p += GS_NATIVE_NREGS * 8;
		}
		if (end - p < 8)
			return -EINVAL;
		memcpy(&size, p, 8);
		p += 8;
		if (size) {
			uint64_t dyn;
			if (size > (uint64_t)(end - p) || (uint64_t)(end - p) - size < 8)
				return -EINVAL;
			memcpy(&dyn, p + size, 8);
			out->stack = p;
			out->stack_len = dyn < size ? (size_t)dyn : (size_t)size;
		}
		out->kind = GS_NATREC_SAMPLE;
		return 0;
	case PERF_RECORD_SWITCH:
	case PERF_RECORD_EXIT:
		/* sample_id_all trailer: pid, tid, time, identifier */
		if (end - p < 24 + (h->type == PERF_RECORD_EXIT ? 24 : 0))
			return -EINVAL;
		memcpy(&out->pid, end - 24, 4);
		memcpy(&out->tid, end - 20, 4);
		memcpy(&out->time, end - 16, 8);
		memcpy(&out->id, end - 8, 8);
		if (h->type == PERF_RECORD_EXIT) {
			memcpy(&out->tid, p + 8, 4); /* the exiting task */
			out->kind = GS_NATREC_EXIT;
			return 0;
		}
		out->kind = (h->misc & PERF_RECORD_MISC_SWITCH_OUT) ? GS_NATREC_SWITCH_OUT : GS_NATREC_SWITCH_IN;
		return 0;
	case PERF_RECORD_LOST:
		if (end - p < 16)
			return -EINVAL;
		memcpy(&out->id, p, 8);
		memcpy(&out->time, p + 8, 8); /* the count, here */
		out->kind = GS_NATREC_LOST;
		return 0;
	default:
		out->kind = GS_NATREC_OTHER;
		return 0;
	}
}

/* ---- threads ----------------------------------------------------------------------------- */

static size_t thr_hash(uint32_t tid, size_t cap) { return (size_t)(tid * 2654435761u) & (cap - 1); }

static struct natthr *thr_find(struct gs_natsampler *s, uint32_t tid, int create)
{
	size_t h, del = SIZE_MAX;
	if (!tid || tid == UINT32_MAX)
		return NULL;
	if (create && (s->used + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct natthr *nt = gs_calloc(ncap, sizeof(*nt));
		size_t live = 0;
		for (size_t i = 0; i < s->cap; i++)
			if (s->thr[i].tid && s->thr[i].tid != UINT32_MAX) {
				size_t j = thr_hash(s->thr[i].tid, ncap);
				while (nt[j].tid)
					j = (j + 1) & (ncap - 1);
				nt[j] = s->thr[i];
				live++;
			}
		free(s->thr);
		s->thr = nt;
		s->cap = ncap;
		s->used = live;
	}
	if (!s->cap)
		return NULL;
	h = thr_hash(tid, s->cap);
	for (size_t probes = 0; probes < s->cap && s->thr[h].tid; probes++) {
		if (s->thr[h].tid == tid)
			return &s->thr[h];
		if (s->thr[h].tid == UINT32_MAX && del == SIZE_MAX)
			del = h;
		h = (h + 1) & (s->cap - 1);
	}
	if (!create)
		return NULL;
	if (del != SIZE_MAX)
		h = del;
	else
		s->used++;
	memset(&s->thr[h], 0, sizeof(s->thr[h]));
	s->thr[h].tid = tid;
	return &s->thr[h];
}

static void thr_free(struct natthr *t)
{
	free(t->out.stack);
	free(t->cpu.stack);
	free(t->pcs);
	free(t->sps);
	memset(t, 0, sizeof(*t));
	t->tid = UINT32_MAX;
}

static void keep_copy(struct gs_natsampler *s, struct copy *c, const struct gs_natrec *r)
{
	size_t len = r->stack_len < s->stack_size ? r->stack_len : s->stack_size;
	if (!c->stack)
		c->stack = gs_malloc(s->stack_size);
	memcpy(c->regs, r->regs, sizeof(c->regs));
	memcpy(c->stack, r->stack, len);
	c->len = len;
	c->time = r->time ? r->time : 1;
}

enum {
	NAT_KIND_SWITCH = 1,
	NAT_KIND_CLOCK
};

static int is_switch_id(const struct gs_natsampler *s, uint64_t id)
{
	return gs_evlist_kind(s->el, id) == NAT_KIND_SWITCH;
}

struct drain_arg {
	struct gs_natsampler *s;
};

static void on_record(const struct perf_event_header *h, void *arg)
{
	struct gs_natsampler *s = ((struct drain_arg *)arg)->s;
	struct gs_natrec r;
	struct natthr *t;

	if (gs_natrec_decode(h, &r) < 0) {
		s->st.malformed++;
		return;
	}
	if (r.kind == GS_NATREC_LOST) {
		s->st.lost += r.time;
		return;
	}
	if (r.kind == GS_NATREC_EXIT) {
		if ((t = thr_find(s, r.tid, 0)) != NULL)
			thr_free(t);
		return;
	}
	if (r.kind == GS_NATREC_OTHER)
		return;
	if (r.pid != (uint32_t)s->pid) /* a child process: its memory map is another one */
		return;
	if (!(t = thr_find(s, r.tid, 1)))
		return;
	if (r.kind == GS_NATREC_SWITCH_IN) {
		if (r.time > t->in_time)
			t->in_time = r.time;
		return;
	}
	if (r.kind != GS_NATREC_SAMPLE || !r.regs)
		return;
	/* the tracepoint fires as the thread leaves its CPU; the clock, while it runs */
	if (is_switch_id(s, r.id)) {
		keep_copy(s, &t->out, &r);
		s->st.switch_samples++;
	} else {
		keep_copy(s, &t->cpu, &r);
		s->st.cpu_samples++;
	}
}

void gs_natsampler_drain(struct gs_natsampler *s)
{
	struct drain_arg a = { s };
	if (!s)
		return;
	for (int c = 0; c < s->ncpu; c++)
		if (gs_evlist_drain(s->el, c, on_record, &a) < 0)
			s->st.malformed++;
}

int gs_natsampler_stack(struct gs_natsampler *s, uint32_t tid, uint64_t *pcs, uint64_t *sps, int max, int *frozen,
			int *complete)
{
	struct natthr *t = s ? thr_find(s, tid, 0) : NULL;
	const struct copy *c;
	int kind, n;

	*frozen = 0;
	*complete = 0;
	if (!t)
		return 0;
	if (t->out.time && t->out.time >= t->in_time) {
		c = &t->out; /* off its CPU since: the stack has not moved */
		kind = 1;
		*frozen = 1;
	} else if (t->cpu.time && t->cpu.time >= t->in_time) {
		c = &t->cpu;
		kind = 2;
	} else if (t->out.time) {
		c = &t->out; /* just back on a CPU, not sampled there yet: where it resumed from */
		kind = 1;
	} else {
		return 0;
	}
	if (t->unwound_kind != kind || t->unwound_time != c->time) {
		if (!t->pcs) {
			t->pcs = gs_malloc(GS_NATIVE_UNWIND_MAX_FRAMES * sizeof(uint64_t));
			t->sps = gs_malloc(GS_NATIVE_UNWIND_MAX_FRAMES * sizeof(uint64_t));
		}
		t->npcs = gs_native_unwind(s->native, tid, c->regs, c->stack, c->len, t->pcs, t->sps,
					   GS_NATIVE_UNWIND_MAX_FRAMES, &t->complete);
		t->unwound_kind = kind;
		t->unwound_time = c->time;
	}
	n = t->npcs < max ? t->npcs : max;
	memcpy(pcs, t->pcs, (size_t)n * sizeof(uint64_t));
	if (sps)
		memcpy(sps, t->sps, (size_t)n * sizeof(uint64_t));
	*complete = t->complete && n == t->npcs;
	return n;
}

/* ---- events ------------------------------------------------------------------------------ */

static void attr_init(struct perf_event_attr *a, uint32_t type, uint64_t config, uint64_t period, size_t stack)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = type;
	a->config = config;
	a->sample_period = period;
	a->sample_type = NAT_SAMPLE_TYPE;
	a->sample_regs_user = GS_NATIVE_REGS_MASK;
	a->sample_stack_user = (uint32_t)stack;
	a->sample_id_all = 1;
	a->inherit = 1;
	a->use_clockid = 1;
	a->clockid = CLOCK_MONOTONIC;
	a->watermark = 1;
	a->wakeup_watermark = NAT_RING_PAGES * 4096u / 2; /* nobody polls: read at each Python sample */
}

struct gs_natsampler *gs_natsampler_open(pid_t pid, int ncpu, long tp_switch, unsigned hz, unsigned stack_size,
					 char *why, size_t whylen)
{
	struct gs_natsampler *s = gs_calloc(1, sizeof(*s));
	struct perf_event_attr sw, clk;
	int err;

	if (stack_size < 512 || stack_size > 65000 || stack_size % 8 || !hz) {
		snprintf(why, whylen, "the native stack size must be a multiple of 8 from 512 to 65000 bytes");
		free(s);
		return NULL;
	}
	s->pid = pid;
	s->ncpu = ncpu;
	s->stack_size = stack_size;
	s->el = gs_evlist_new(ncpu, NAT_RING_PAGES, "native stacks", "raise kernel.perf_event_mlock_kb");
	s->native = gs_native_new(pid, why, whylen);
	if (!s->native)
		goto fail;

	attr_init(&sw, PERF_TYPE_TRACEPOINT, (uint64_t)tp_switch, 1, stack_size);
	attr_init(&clk, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, 1000000000ull / hz, stack_size);
	clk.context_switch = 1; /* switch-ins tell when a copy stops being current */
	clk.task = 1;           /* exits free a thread's copies */
	err = gs_evlist_open(s->el, &sw, pid, NAT_KIND_SWITCH, "the sched_switch tracepoint with user stacks", why,
			     whylen);
	if (err == 0)
		err = gs_evlist_open(s->el, &clk, pid, NAT_KIND_CLOCK, "the cpu-clock sampling event", why, whylen);
	if (err < 0)
		goto fail;
	gs_evlist_index(s->el);
	return s;
fail:
	gs_natsampler_close(s);
	return NULL;
}

void gs_natsampler_close(struct gs_natsampler *s)
{
	if (!s)
		return;
	gs_evlist_free(s->el);
	for (size_t i = 0; i < s->cap; i++)
		if (s->thr[i].tid && s->thr[i].tid != UINT32_MAX)
			thr_free(&s->thr[i]);
	free(s->thr);
	gs_native_free(s->native);
	free(s);
}

struct gs_native *gs_natsampler_native(struct gs_natsampler *s) { return s ? s->native : NULL; }

void gs_natsampler_stats(const struct gs_natsampler *s, struct gs_natsampler_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!s)
		return;
	*st = s->st;
	gs_native_stats(s->native, &st->unwinds, &st->truncated, &st->unknown_symbols);
}
