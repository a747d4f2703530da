/* forget.c - the ended processes a live analysis drops (forget.h). */
#include "analysis/forget.h"
#include "analysis/blame.h"
#include "analysis/meta.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* A set of pids (never 0), open addressing, sized for n of them. */
struct pidset {
	uint32_t *slot;
	size_t mask;
};

static void set_init(struct pidset *s, size_t n)
{
	size_t cap = 16;
	while (cap < 2 * n)
		cap *= 2;
	s->slot = gs_calloc(cap, sizeof(*s->slot));
	s->mask = cap - 1;
}

/* The slot of pid: pid's own, or the free one where it would go. */
static uint32_t *set_slot(const struct pidset *s, uint32_t pid)
{
	size_t h = (size_t)(pid * 2654435761u) & s->mask;
	while (s->slot[h] && s->slot[h] != pid)
		h = (h + 1) & s->mask;
	return &s->slot[h];
}

static void set_add(struct pidset *s, uint32_t pid)
{
	if (pid)
		*set_slot(s, pid) = pid;
}

static int set_has(const struct pidset *s, uint32_t pid) { return pid && *set_slot(s, pid) == pid; }

/* The pids a thread still stands for: its own, and its GIL's process. */
static void pids_in_use(const struct gs_analysis *a, struct pidset *used)
{
	set_init(used, 2 * a->nthreads);
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = &a->threads[i];
		set_add(used, t->pid);
		if (t->gil_index >= 0 && (size_t)t->gil_index < a->ngils)
			set_add(used, a->gils[t->gil_index].pid);
	}
}

/* Drops the GILs of the gone processes, the others moved down; map[old] = new index, -1 gone. */
static void gils_compact(struct gs_analysis *a, const struct pidset *gone, int *map,
			 void (*moved)(void *ctx, size_t from, size_t to), void *ctx)
{
	size_t n = 0;
	for (size_t i = 0; i < a->ngils; i++) {
		if (set_has(gone, a->gils[i].pid)) {
			gs_blame_free_gil(&a->gils[i]);
			map[i] = -1;
			continue;
		}
		map[i] = (int)n;
		if (n != i) {
			a->gils[n] = a->gils[i];
			if (moved)
				moved(ctx, i, n);
		}
		n++;
	}
	a->ngils = n;
	for (size_t i = 0; i < a->nthreads; i++)
		if (a->threads[i].gil_index >= 0)
			a->threads[i].gil_index = map[a->threads[i].gil_index];
}

size_t gs_analysis_forget_procs(struct gs_analysis *a, int (*forget)(void *ctx, const struct gs_process *p),
				void (*moved)(void *ctx, size_t from, size_t to), void *ctx)
{
	struct pidset used, gone = { 0 };
	int *map = NULL;
	size_t n = 0, removed = 0;
	if (!a->nprocs)
		return 0;
	pids_in_use(a, &used);
	set_init(&gone, a->nprocs);
	for (size_t i = 0; i < a->nprocs; i++) {
		struct gs_process *p = &a->procs[i];
		if (p->pid && (p->exited || p->have_exit) && !set_has(&used, p->pid) && forget(ctx, p)) {
			set_add(&gone, p->pid);
			gs_meta_free(p);
			removed++;
			continue;
		}
		if (n != i)
			a->procs[n] = *p;
		n++;
	}
	a->nprocs = n;
	if (!removed)
		goto out;
	map = gs_calloc(a->ngils ? a->ngils : 1, sizeof(*map));
	gils_compact(a, &gone, map, moved, ctx);
	for (size_t i = 0; i < a->nprocs; i++)
		if (a->procs[i].main_gil >= 0)
			a->procs[i].main_gil = map[a->procs[i].main_gil];
out:
	free(map);
	free(used.slot);
	free(gone.slot);
	return removed;
}
