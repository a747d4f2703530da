/* window.c - per-thread GIL figures clipped to a time window (window.h). */
#include "analysis/window.h"

#include <stdlib.h>
#include <string.h>

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *nv;
	size_t nc;
	if (n < *cap)
		return 0;
	nc = *cap ? 2 * *cap : 16;
	nv = realloc(*v, nc * size);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

static struct gs_window_thread *thread_of(struct gs_window *w, uint32_t pid, uint32_t tid)
{
	struct gs_window_thread *t;
	for (size_t i = w->nthreads; i-- > 0;) /* few threads live in one window; the recent ones last */
		if (w->threads[i].tid == tid && w->threads[i].pid == pid)
			return &w->threads[i];
	if (grow((void **)&w->threads, &w->cap_threads, w->nthreads, sizeof(*w->threads)) < 0) {
		w->oom = 1;
		return NULL;
	}
	t = memset(&w->threads[w->nthreads++], 0, sizeof(*t));
	t->pid = pid;
	t->tid = tid;
	return t;
}

static struct gs_window_hold *open_of(struct gs_window *w, uint32_t pid, int gil)
{
	for (size_t i = 0; i < w->nopen; i++)
		if (w->open[i].pid == pid && w->open[i].gil == gil)
			return &w->open[i];
	if (grow((void **)&w->open, &w->cap_open, w->nopen, sizeof(*w->open)) < 0) {
		w->oom = 1;
		return NULL;
	}
	return memset(&w->open[w->nopen++], 0, sizeof(*w->open));
}

static void behind(struct gs_window *w, struct gs_window_thread *t, uint32_t holder, uint64_t ns)
{
	if (!ns || holder == t->tid)
		return;
	for (size_t i = 0; i < t->nbehind; i++)
		if (t->behind[i].holder == holder) {
			t->behind[i].ns += ns;
			return;
		}
	if (t->nbehind % 8 == 0) {
		struct gs_window_behind *nb = realloc(t->behind, (t->nbehind + 8) * sizeof(*nb));
		if (!nb) {
			w->oom = 1;
			return;
		}
		t->behind = nb;
	}
	t->behind[t->nbehind++] = (struct gs_window_behind){ holder, ns };
}

static uint64_t overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	uint64_t s = s1 > s2 ? s1 : s2, e = e1 < e2 ? e1 : e2;
	return e > s ? e - s : 0;
}

/* A wait of t on GIL gil over [s, e): to each holder its share (closed holds, then the open one). */
static void attribute_wait(struct gs_window *w, struct gs_window_thread *t, int gil, uint64_t s, uint64_t e)
{
	size_t lo = 0, hi = w->nholds;
	struct gs_window_hold *o;
	/* closed holds are appended when they end: the list is in order of end, across GILs too */
	while (lo < hi) { /* the first closed hold that ends after s */
		size_t mid = lo + (hi - lo) / 2;
		if (w->holds[mid].end <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < w->nholds; i++) {
		const struct gs_window_hold *h = &w->holds[i];
		if (h->pid != t->pid || h->gil != gil)
			continue; /* another GIL's: its order of start says nothing about this one's */
		if (h->start >= e)
			break; /* this GIL's holds do not overlap: the later ones start later still */
		behind(w, t, h->tid, overlap(s, e, h->start, h->end));
	}
	o = open_of(w, t->pid, gil);
	if (o && o->tid)
		behind(w, t, o->tid, overlap(s, e, o->start, e));
}

static int gil_number(const struct gs_analysis *a, const struct gs_thread *t)
{
	return t->gil_index >= 0 && (size_t)t->gil_index < a->ngils ? a->gils[t->gil_index].number : 1;
}

static void on_slice(void *ctx, const struct gs_thread *th, enum gs_slice kind, uint64_t start, uint64_t end)
{
	struct gs_window *w = ctx;
	struct gs_window_thread *t;
	uint64_t s = start > w->from ? start : w->from, e = end < w->to ? end : w->to, d;
	if (e <= s || !(t = thread_of(w, th->pid, th->tid)))
		return;
	d = e - s;
	if (!t->first_ns || s < t->first_ns)
		t->first_ns = s;
	if (e > t->last_ns)
		t->last_ns = e;
	switch (kind) {
	case GS_SLICE_HELD:
	case GS_SLICE_HELD_OFFCPU:
		t->held_ns += d;
		break;
	case GS_SLICE_WAIT_SLEEP:
	case GS_SLICE_WAIT_RUNNABLE:
	case GS_SLICE_WAIT_ONCPU:
		t->wait_ns += d;
		attribute_wait(w, t, gil_number(w->a, th), s, e);
		break;
	case GS_SLICE_NOGIL:
		t->nogil_ns += d;
		break;
	case GS_SLICE_SLEEP:
	case GS_SLICE_DISK:
	case GS_SLICE_RUNNABLE:
		t->offcpu_ns += d;
		break;
	default:
		t->other_ns += d;
		break;
	}
}

static void on_gil(void *ctx, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *th,
		   uint64_t time)
{
	struct gs_window *w = ctx;
	struct gs_window_hold *o;
	if (ev != GS_GE_ACQUIRE && ev != GS_GE_RELEASE)
		return;
	if (!(o = open_of(w, g->pid, g->number)))
		return;
	if (o->tid && overlap(o->start, time, w->from, w->to)) { /* the hold before ends here */
		if (grow((void **)&w->holds, &w->cap_holds, w->nholds, sizeof(*w->holds)) < 0)
			w->oom = 1;
		else
			w->holds[w->nholds++] = (struct gs_window_hold){ g->pid, o->tid, g->number, o->start, time };
	}
	o->pid = g->pid;
	o->gil = g->number;
	o->tid = ev == GS_GE_ACQUIRE && th ? th->tid : 0;
	o->start = time;
	if (ev == GS_GE_ACQUIRE && th && time >= w->from && time < w->to) {
		struct gs_window_thread *t = thread_of(w, th->pid, th->tid);
		if (t)
			t->acquisitions++;
	}
}

void gs_window_init(struct gs_window *w, const struct gs_analysis *a, uint64_t from, uint64_t to,
		    struct gs_hooks *hooks)
{
	memset(w, 0, sizeof(*w));
	w->a = a;
	w->from = from;
	w->to = to;
	*hooks = (struct gs_hooks){ .ctx = w, .slice = on_slice, .gil = on_gil };
}

static int by_time(const void *x, const void *y)
{
	const struct gs_window_behind *a = x, *b = y;
	return a->ns > b->ns ? -1 : a->ns < b->ns;
}

static int by_wait(const void *x, const void *y)
{
	const struct gs_window_thread *a = x, *b = y;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->wait_ns != b->wait_ns)
		return a->wait_ns > b->wait_ns ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

void gs_window_finish(struct gs_window *w)
{
	for (size_t i = 0; i < w->nthreads; i++)
		if (w->threads[i].nbehind > 1)
			qsort(w->threads[i].behind, w->threads[i].nbehind, sizeof(*w->threads[i].behind), by_time);
	if (w->nthreads > 1)
		qsort(w->threads, w->nthreads, sizeof(*w->threads), by_wait);
}

void gs_window_free(struct gs_window *w)
{
	for (size_t i = 0; i < w->nthreads; i++)
		free(w->threads[i].behind);
	free(w->threads);
	free(w->holds);
	free(w->open);
	memset(w, 0, sizeof(*w));
}
