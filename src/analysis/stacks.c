/* stacks.c - Python and native stacks of a recording, and the sample counts (stacks.h). */
#define _GNU_SOURCE
#include "analysis/stacks.h"
#include "cpython/native.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gs_what_names[GS_WHAT_N] = { "hold", "wait", "cpu", "offcpu", "blocking", "offgil" };

/* Counts are kept in an open-addressing table keyed by (what, tid, stack). */
static size_t count_hash(uint32_t what, uint32_t tid, uint64_t stack, uint32_t peer, size_t cap)
{
	return (size_t)((((stack * 31 + tid) * 7 + what) * 131 + peer) * 2654435761u) & (cap - 1);
}

static void count_stack_add(struct gs_analysis *a, uint32_t what, uint32_t tid, uint64_t stack, uint32_t peer,
			    uint64_t amount)
{
	size_t h;
	if ((a->ncounts + 1) * 2 > a->cap_counts) {
		size_t ncap = a->cap_counts ? a->cap_counts * 2 : 1024;
		struct gs_stack_count *nt = gs_calloc(ncap, sizeof(*nt));
		for (size_t i = 0; i < a->cap_counts; i++) {
			struct gs_stack_count *c = &a->counts[i];
			size_t j;
			if (!c->amount)
				continue;
			j = count_hash(c->what, c->tid, c->stack, c->peer, ncap);
			while (nt[j].amount)
				j = (j + 1) & (ncap - 1);
			nt[j] = *c;
		}
		free(a->counts);
		a->counts = nt;
		a->cap_counts = ncap;
	}
	h = count_hash(what, tid, stack, peer, a->cap_counts);
	while (a->counts[h].amount) {
		struct gs_stack_count *c = &a->counts[h];
		if (c->what == what && c->tid == tid && c->stack == stack && c->peer == peer) {
			c->amount += amount;
			return;
		}
		h = (h + 1) & (a->cap_counts - 1);
	}
	a->counts[h].what = what;
	a->counts[h].tid = tid;
	a->counts[h].stack = stack;
	a->counts[h].peer = peer;
	a->counts[h].amount = amount;
	a->ncounts++;
}

static void count_stack_peer(struct gs_analysis *a, uint32_t what, uint32_t tid, uint64_t stack, uint32_t peer)
{
	count_stack_add(a, what, tid, stack, peer, 1);
}

void gs_stacks_count(struct gs_analysis *a, uint32_t what, uint32_t tid, uint64_t stack, uint64_t amount)
{
	if (amount)
		count_stack_add(a, what, tid, stack, 0, amount);
}

/* A wait ends: its time goes to the stack it waited in. */
void gs_stacks_wait_done(struct gs_analysis *a, struct gs_thread *t, uint64_t d)
{
	if (!d)
		return;
	count_stack_add(a, GS_WHAT_WAITED_NS, t->tid, t->wait_stack, 0, d);
	count_stack_add(a, GS_WHAT_WAITS, t->tid, t->wait_stack, 0, 1);
	t->wait_stack = 0;
}

/* Counts are kept in an open-addressing table keyed by (what, tid, stack, peer). */
static void count_stack(struct gs_analysis *a, uint32_t what, uint32_t tid, uint64_t stack)
{
	count_stack_peer(a, what, tid, stack, 0);
}

/* Frame and stack ids are numbered from 1 in the order of their definitions (record/intern.c):
 * an id far beyond the ones defined so far is corrupt, and would make a 40-byte record allocate
 * hundreds of MiB for the tables indexed by id. The slack keeps other writers free to skip a few. */
#define GS_ID_GAP 1024u

void gs_stacks_on_frame(struct gs_analysis *a, const struct gs_rec *r, const char *payload, size_t plen)
{
	const char *q = payload, *f;
	uint64_t id = r->arg64;
	if (!id || id > (1u << 24) || id > a->nframes + GS_ID_GAP || !plen)
		return;
	f = memchr(q, '\0', plen);
	if (!f || (size_t)(f - q) + 1 >= plen || !memchr(f + 1, '\0', plen - (size_t)(f - q) - 1))
		return;
	if (id > a->nframes) {
		a->frames = gs_realloc_array(a->frames, id, sizeof(*a->frames));
		memset(a->frames + a->nframes, 0, (id - a->nframes) * sizeof(*a->frames));
		a->nframes = id;
	}
	free(a->frames[id - 1].qualname);
	free(a->frames[id - 1].filename);
	a->frames[id - 1].qualname = gs_strdup(q);
	a->frames[id - 1].filename = gs_strdup(f + 1);
	a->frames[id - 1].line = r->type == GS_REC_NATFRAME ? -1 : r->arg;
	a->frames[id - 1].native = r->type == GS_REC_NATFRAME ? 1u | ((unsigned)r->arg & 3u) << 1 : 0;
	if (r->type == GS_REC_NATFRAME)
		a->have_native = 1;
}

/* The evaluation loop's frames and perf trampolines say nothing the Python frames do not. */
static int hidden_frame(const struct gs_analysis *a, uint32_t id)
{
	const struct gs_frame_def *d = id && id <= a->nframes ? &a->frames[id - 1] : NULL;
	return !a->keep_evals && d && (d->native >> 1) & (GS_NATFRAME_EVAL | GS_NATFRAME_TRAMPOLINE);
}

void gs_stacks_on_stack(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen)
{
	uint64_t id = r->arg64;
	int n = r->arg;
	uint32_t *v;
	if (!id || id > (1u << 24) || id > a->nstacks + GS_ID_GAP || n <= 0 || n > GS_RECFILE_MAX_STACK_FRAMES ||
	    plen < (size_t)n * 4)
		return;
	if (id > a->nstacks) {
		a->stacks = gs_realloc_array(a->stacks, id, sizeof(*a->stacks));
		memset(a->stacks + a->nstacks, 0, (id - a->nstacks) * sizeof(*a->stacks));
		a->nstacks = id;
	}
	v = gs_malloc(((size_t)n + 1) * 4);
	memcpy(v + 1, payload, (size_t)n * 4);
	{
		int m = 0;
		for (int i = 0; i < n; i++)
			if (!hidden_frame(a, v[1 + i]))
				v[1 + m++] = v[1 + i];
		v[0] = (uint32_t)m;
	}
	free(a->stacks[id - 1]);
	a->stacks[id - 1] = v;
}

/* A sample is classified by the thread's state at that instant. */
void gs_stacks_on_sample(struct gs_analysis *a, const struct gs_rec *r)
{
	struct gs_thread *t = gs_analysis_thread(a, r->tid);
	uint32_t what;
	if (!t || t->exited)
		return;
	a->stack_samples++;
	if (!t->entry_frame && !t->is_main && r->arg64) {
		/* the outermost frame that is not threading's bootstrap: what the thread was started for */
		int n = 0;
		const uint32_t *f = gs_analysis_stack(a, r->arg64, &n);
		for (int k = n - 1; f && k >= 0; k--) {
			const struct gs_frame_def *d = f[k] && f[k] <= a->nframes ? &a->frames[f[k] - 1] : NULL;
			size_t fl;
			if (d && d->native)
				continue; /* thread start-up code in the C library and the interpreter */
			if (!d || !d->filename)
				break;
			fl = strlen(d->filename);
			if (fl >= 12 && strcmp(d->filename + fl - 12, "threading.py") == 0)
				continue;
			t->entry_frame = f[k];
			break;
		}
	}
	if (t->gil == GS_GIL_HELD)
		what = GS_WHAT_HOLD;
	else if (t->gil == GS_GIL_WAIT)
		what = GS_WHAT_WAIT;
	else if (t->sched == GS_SCHED_ONCPU || t->sched == GS_SCHED_UNKNOWN || t->sched == GS_SCHED_RUNNABLE)
		/* runnable: preempted in the middle of that work, which it resumes. On a busy machine
		 * the sampler's own wake-up is what preempts the thread it is about to read, so
		 * counting these as off-CPU would empty the cpu view exactly when it matters */
		what = GS_WHAT_NOGIL;
	else
		what = GS_WHAT_OFFCPU;
	if (what == GS_WHAT_WAIT && !t->wait_stack)
		t->wait_stack = r->arg64;
	if (what == GS_WHAT_HOLD) {
		t->hold_samples++;
		if (!t->hold_votes) {
			t->hold_stack = r->arg64;
			t->hold_votes = 1;
		} else if (t->hold_stack == r->arg64) {
			t->hold_votes++;
		} else {
			t->hold_votes--;
		}
	}
	if (a->hooks && a->hooks->sample)
		a->hooks->sample(a->hooks->ctx, t, r->time, r->arg64, (int)what);
	count_stack(a, what, 0, r->arg64);
	count_stack(a, what, t->tid, r->arg64);
	if (what == GS_WHAT_HOLD && t->gil_index >= 0 && a->gils[t->gil_index].nwaiters > 0) {
		const struct gs_gilstat *g = &a->gils[t->gil_index];
		count_stack(a, GS_WHAT_BLOCKING, 0, r->arg64);
		count_stack(a, GS_WHAT_BLOCKING, t->tid, r->arg64);
		/* what this holder ran while each of the waiters waited */
		for (int w = 0; w < g->nwaiters; w++)
			if (g->waiters[w] < a->nthreads)
				count_stack_peer(a, GS_WHAT_HELD_FOR, a->threads[g->waiters[w]].tid, r->arg64, t->tid);
	}
	if (what == GS_WHAT_NOGIL || what == GS_WHAT_OFFCPU) {
		count_stack(a, GS_WHAT_OFFGIL, 0, r->arg64);
		count_stack(a, GS_WHAT_OFFGIL, t->tid, r->arg64);
	}
}

void gs_analysis_frame_name(const struct gs_analysis *a, uint32_t id, char *buf, size_t len)
{
	const struct gs_frame_def *f = id && id <= a->nframes ? &a->frames[id - 1] : NULL;
	if (!f || !f->qualname) {
		snprintf(buf, len, "?");
		return;
	}
	if (f->native)
		snprintf(buf, len, "%s (%s)", f->qualname, f->filename);
	else
		snprintf(buf, len, "%s (%s:%d)", f->qualname, f->filename, f->line);
}

size_t gs_analysis_counts_each(const struct gs_analysis *a, uint32_t what, uint32_t tid,
			       void (*fn)(void *ctx, uint64_t stack, uint64_t amount), void *ctx)
{
	size_t n = 0;
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (!c->amount || c->what != what || c->tid != tid)
			continue;
		fn(ctx, c->stack, c->amount);
		n++;
	}
	return n;
}

uint64_t gs_analysis_sample_ns(const struct gs_analysis *a)
{
	return a->stack_rate_hz ? 1000000000u / a->stack_rate_hz : 1000000u;
}

int gs_analysis_frame_native(const struct gs_analysis *a, uint32_t id)
{
	return id && id <= a->nframes && a->frames[id - 1].native;
}

const char *gs_thread_label(const struct gs_analysis *a, const struct gs_thread *t)
{
	const struct gs_thread *main = gs_analysis_thread((struct gs_analysis *)a, t->pid);
	int generic = !t->name[0] || (main && main != t && strcmp(main->name, t->name) == 0) ||
		      strncmp(t->name, "python", 6) == 0;
	if (generic && t->entry_frame && t->entry_frame <= a->nframes && a->frames[t->entry_frame - 1].qualname)
		return a->frames[t->entry_frame - 1].qualname;
	return t->name[0] ? t->name : "?";
}

const char *gs_thread_name(const struct gs_analysis *a, const struct gs_thread *t)
{
	return t->pyname[0] ? t->pyname : gs_thread_label(a, t);
}

const uint32_t *gs_analysis_stack(const struct gs_analysis *a, uint64_t id, int *n)
{
	const uint32_t *v = id && id <= a->nstacks ? a->stacks[id - 1] : NULL;
	if (!v || !v[0]) /* none, or only frames the analysis hides: no Python frame to show */
		return NULL;
	*n = (int)v[0];
	return v + 1;
}
