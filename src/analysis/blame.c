/* blame.c - the waiter set and the lazily settled blame log of each GIL (blame.h). */
#define _GNU_SOURCE
#include "analysis/blame.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* A blame list this long or shorter is searched linearly; a longer one through the table. */
#define GS_BLAME_LINEAR 8u

static size_t hash_holder(uint32_t tid, size_t cap) { return (size_t)(tid * 2654435761u) & (cap - 1); }

/* Makes the lookup table empty and large enough for n holders (generations: no clearing). */
static void map_prepare(struct gs_analysis *a, size_t n)
{
	size_t cap = a->blame_map_cap ? a->blame_map_cap : 64;
	while (cap < n * 2)
		cap *= 2;
	if (cap != a->blame_map_cap) {
		free(a->blame_map);
		a->blame_map = gs_calloc(cap, sizeof(*a->blame_map));
		a->blame_map_cap = cap;
		a->blame_map_gen = 0;
	}
	if (++a->blame_map_gen == 0) {
		memset(a->blame_map, 0, a->blame_map_cap * sizeof(*a->blame_map));
		a->blame_map_gen = 1;
	}
}

static struct gs_blame_slot *map_slot(struct gs_analysis *a, uint32_t holder)
{
	size_t h = hash_holder(holder, a->blame_map_cap);
	while (a->blame_map[h].gen == a->blame_map_gen && a->blame_map[h].holder != holder)
		h = (h + 1) & (a->blame_map_cap - 1);
	return &a->blame_map[h];
}

/* Adds ns to w's entry for holder (a new entry at the end when there is none). */
static void charge(struct gs_analysis *a, struct gs_thread *w, uint32_t holder, uint64_t ns, int mapped)
{
	struct gs_blame_slot *s = NULL;
	if (mapped) {
		s = map_slot(a, holder);
		if (s->gen == a->blame_map_gen) {
			w->blame[s->index].ns += ns;
			return;
		}
	} else {
		for (size_t i = 0; i < w->nblame; i++)
			if (w->blame[i].holder == holder) {
				w->blame[i].ns += ns;
				return;
			}
	}
	if (w->nblame == w->cap_blame) {
		w->cap_blame = w->cap_blame ? w->cap_blame * 2 : 4;
		w->blame = gs_realloc_array(w->blame, w->cap_blame, sizeof(*w->blame));
	}
	w->blame[w->nblame].holder = holder;
	w->blame[w->nblame].ns = ns;
	if (s) {
		s->gen = a->blame_map_gen;
		s->holder = holder;
		s->index = (uint32_t)w->nblame;
	}
	w->nblame++;
}

/* Charges w with the segments of g's log since its last settlement, in time order. */
static void settle(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *w)
{
	uint64_t from = w->blame_clock, to = g->wait_clock;
	size_t i = w->blame_seg >= g->seg_base ? (size_t)(w->blame_seg - g->seg_base) : 0;
	if (to > from && i < g->nsegs) {
		/* a few segments are looked up faster in the list than the table is filled */
		size_t walk = g->nsegs - i;
		int mapped = walk > 4 && w->nblame + walk > GS_BLAME_LINEAR;
		if (mapped) {
			map_prepare(a, w->nblame + walk);
			for (size_t k = 0; k < w->nblame; k++) {
				struct gs_blame_slot *s = map_slot(a, w->blame[k].holder);
				s->gen = a->blame_map_gen;
				s->holder = w->blame[k].holder;
				s->index = (uint32_t)k;
			}
		}
		for (; i < g->nsegs; i++) {
			uint64_t s = g->segs[i].clock, e = i + 1 < g->nsegs ? g->segs[i + 1].clock : to;
			if (s < from)
				s = from;
			if (e > s)
				charge(a, w, g->segs[i].holder, e - s, mapped);
		}
	}
	w->blame_clock = to;
	w->blame_seg = g->seg_base + (g->nsegs ? g->nsegs - 1 : 0);
}

/* Drops the segments before the oldest one a waiter still needs, or makes room. */
static void log_room(const struct gs_analysis *a, struct gs_gilstat *g)
{
	size_t keep_from = g->nsegs;
	if (g->nsegs < g->cap_segs)
		return;
	for (int i = 0; i < g->nwaiters; i++) {
		const struct gs_thread *w = &a->threads[g->waiters[i]];
		size_t k = w->blame_seg >= g->seg_base ? (size_t)(w->blame_seg - g->seg_base) : 0;
		if (k < keep_from)
			keep_from = k;
	}
	if (keep_from > g->nsegs / 2) {
		memmove(g->segs, g->segs + keep_from, (g->nsegs - keep_from) * sizeof(*g->segs));
		g->nsegs -= keep_from;
		g->seg_base += keep_from;
		return;
	}
	g->cap_segs = g->cap_segs ? g->cap_segs * 2 : 64;
	g->segs = gs_realloc_array(g->segs, g->cap_segs, sizeof(*g->segs));
}

void gs_blame_advance(struct gs_analysis *a, struct gs_gilstat *g, uint64_t now)
{
	uint64_t dt;
	if (now <= g->t_last)
		return;
	dt = now - g->t_last;
	if (g->holder)
		g->held_ns += dt;
	if (g->nwaiters > 0) {
		g->contended_ns += dt;
		if (g->holder)
			g->hold_waited_ns += dt * (uint64_t)g->nwaiters;
		if (!g->nsegs || g->segs[g->nsegs - 1].holder != g->holder) {
			log_room(a, g);
			g->segs[g->nsegs].holder = g->holder;
			g->segs[g->nsegs].clock = g->wait_clock;
			g->nsegs++;
		}
		g->wait_clock += dt;
	}
	g->t_last = now;
}

void gs_blame_waiter_add(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t)
{
	if ((size_t)g->nwaiters == g->cap_waiters) {
		g->cap_waiters = g->cap_waiters ? g->cap_waiters * 2 : 8;
		g->waiters = gs_realloc_array(g->waiters, g->cap_waiters, sizeof(*g->waiters));
	}
	t->waiter_pos = (uint32_t)g->nwaiters;
	t->blame_clock = g->wait_clock;
	t->blame_seg = g->seg_base + (g->nsegs ? g->nsegs - 1 : 0);
	g->waiters[g->nwaiters] = (uint32_t)(t - a->threads);
	g->nwaiters++;
	if (g->holder && g->nwaiters > g->hold_max_waiters)
		g->hold_max_waiters = g->nwaiters;
}

void gs_blame_waiter_remove(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t)
{
	uint32_t idx = (uint32_t)(t - a->threads), pos = t->waiter_pos;
	if (pos >= (uint32_t)g->nwaiters || g->waiters[pos] != idx)
		return;
	settle(a, g, t);
	g->waiters[pos] = g->waiters[--g->nwaiters];
	a->threads[g->waiters[pos]].waiter_pos = pos;
	if (!g->nwaiters) {
		/* nobody needs the log any more */
		g->seg_base += g->nsegs;
		g->nsegs = 0;
	}
}

void gs_blame_settle(struct gs_analysis *a, struct gs_gilstat *g)
{
	for (int i = 0; i < g->nwaiters; i++)
		settle(a, g, &a->threads[g->waiters[i]]);
}

void gs_blame_restart(struct gs_gilstat *g, struct gs_thread *t)
{
	t->nblame = 0;
	if (g) {
		t->blame_clock = g->wait_clock;
		t->blame_seg = g->seg_base + (g->nsegs ? g->nsegs - 1 : 0);
	}
}

void gs_blame_free_gil(struct gs_gilstat *g)
{
	free(g->waiters);
	free(g->segs);
	g->waiters = NULL;
	g->segs = NULL;
}

void gs_blame_free(struct gs_analysis *a)
{
	free(a->blame_map);
	a->blame_map = NULL;
	a->blame_map_cap = 0;
}
