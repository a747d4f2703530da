/* diff.c - two recordings side by side: figures, threads matched by name, wait sites (diff.h). */
#include "analysis/diff.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct gs_process *process_of(const struct gs_analysis *a, uint32_t pid)
{
	for (size_t i = 0; i < a->nprocs; i++)
		if (a->procs[i].pid == pid)
			return &a->procs[i];
	return NULL;
}

/* Threads of CPython processes: the ones a diff compares. */
static int compared(const struct gs_analysis *a, const struct gs_thread *t)
{
	const struct gs_process *p = process_of(a, t->pid);
	return p && p->python_version[0];
}

static void figures(const struct gs_analysis *a, struct gs_diff_figures *f)
{
	const struct gs_process *p = process_of(a, a->target_pid);

	memset(f, 0, sizeof(*f));
	f->wall_ns = a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0;
	if (!p && a->nprocs)
		p = &a->procs[0];
	if (p && p->main_gil >= 0 && (size_t)p->main_gil < a->ngils) {
		const struct gs_gilstat *g = &a->gils[p->main_gil];
		f->gil_ns = g->end_ns > g->first_ns ? g->end_ns - g->first_ns : 0;
		f->held_ns = g->held_ns;
		f->contended_ns = g->contended_ns;
		f->acquisitions = g->acquisitions;
		f->forced_drops = g->forced_drops;
		f->drop_requests = g->drop_requests;
	}
	f->drops_told_apart = p && gs_process_tells_forced_drops(p);
	for (size_t i = 0; i < a->nthreads; i++)
		if (compared(a, &a->threads[i])) {
			f->threads_held_ns += a->threads[i].held_ns;
			f->threads_wait_ns += a->threads[i].wait_ns;
			f->nthreads++;
		}
}

static int by_start(const void *x, const void *y)
{
	const struct gs_thread *a = *(const struct gs_thread *const *)x, *b = *(const struct gs_thread *const *)y;
	if (a->is_main != b->is_main)
		return a->is_main ? -1 : 1;
	if (a->first_ns != b->first_ns)
		return a->first_ns < b->first_ns ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* A compared thread, its name, its rank in order of start and among threads of its name. */
struct entry {
	const struct gs_thread *t;
	const char *name;
	size_t rank;
	unsigned ord;
	const struct gs_thread *partner;
	int used;
};

static int by_name(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	int c = strcmp(a->name, b->name);
	if (c)
		return c;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

static int by_rank(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* The compared threads of a, sorted by name and then order of start (main threads first), with
 * their ordinals, in *v (caller frees). */
static size_t entries(const struct gs_analysis *a, struct entry **v)
{
	const struct gs_thread **w = calloc(a->nthreads ? a->nthreads : 1, sizeof(*w));
	size_t n = 0;

	*v = calloc(a->nthreads ? a->nthreads : 1, sizeof(**v));
	if (!w || !*v) {
		free(w);
		return 0;
	}
	for (size_t i = 0; i < a->nthreads; i++)
		if (compared(a, &a->threads[i]))
			w[n++] = &a->threads[i];
	qsort(w, n, sizeof(*w), by_start);
	for (size_t i = 0; i < n; i++)
		(*v)[i] = (struct entry){ .t = w[i], .name = gs_thread_name(a, w[i]), .rank = i };
	free(w);
	qsort(*v, n, sizeof(**v), by_name);
	for (size_t i = 1; i < n; i++)
		if (strcmp((*v)[i].name, (*v)[i - 1].name) == 0)
			(*v)[i].ord = (*v)[i - 1].ord + 1;
	return n;
}

static int cmp_key(const struct entry *x, const struct entry *y)
{
	int c = strcmp(x->name, y->name);
	return c ? c : (x->ord > y->ord) - (x->ord < y->ord);
}

static void add_pair(struct gs_diff *d, const struct entry *e, const struct gs_thread *a, const struct gs_thread *b)
{
	struct gs_diff_pair *p = &d->pairs[d->npairs++];
	snprintf(p->name, sizeof(p->name), "%s", e->name);
	p->ordinal = e->ord + 1;
	p->a = a;
	p->b = b;
}

static int pair_threads(struct gs_diff *d, const struct gs_analysis *a, const struct gs_analysis *b)
{
	struct entry *va = NULL, *vb = NULL;
	size_t na = entries(a, &va), nb = entries(b, &vb), i = 0, j = 0;
	int err = -ENOMEM;

	d->pairs = calloc(na + nb ? na + nb : 1, sizeof(*d->pairs));
	if (!va || !vb || !d->pairs)
		goto out;
	while (i < na && j < nb) { /* both sorted by (name, ordinal): a merge */
		int c = cmp_key(&va[i], &vb[j]);
		if (c == 0) {
			va[i].partner = vb[j].t;
			vb[j].used = 1;
		}
		i += c <= 0;
		j += c >= 0;
	}
	qsort(va, na, sizeof(*va), by_rank);
	qsort(vb, nb, sizeof(*vb), by_rank);
	for (i = 0; i < na; i++)
		add_pair(d, &va[i], va[i].t, va[i].partner);
	for (j = 0; j < nb; j++)
		if (!vb[j].used)
			add_pair(d, &vb[j], NULL, vb[j].t);
	err = 0;
out:
	free(va);
	free(vb);
	return err;
}

/* The innermost Python frame of stack id: its function and file ("" and "" when none). */
static void site_of(const struct gs_analysis *a, uint64_t stack, const char **fn, const char **file)
{
	int n = 0;
	const uint32_t *f = stack ? gs_analysis_stack(a, stack, &n) : NULL;
	*fn = *file = "";
	for (int i = 0; f && i < n; i++) {
		const struct gs_frame_def *def = f[i] && f[i] <= a->nframes ? &a->frames[f[i] - 1] : NULL;
		if (def && !def->native) {
			*fn = def->qualname ? def->qualname : "?";
			*file = def->filename ? def->filename : "?";
			return;
		}
	}
}

/* An index of d->sites by (function, file): open addressing over site numbers + 1 (0: free). */
struct site_index {
	uint32_t *slot;
	size_t cap; /* a power of two, kept over twice the number of sites */
};

/* The slot of (fn, file): where it is, or the free one where it goes. */
static uint32_t *site_slot(const struct site_index *x, const struct gs_diff *d, const char *fn, const char *file)
{
	size_t i = (size_t)gs_fnv1a(gs_fnv1a(GS_FNV1A_INIT, fn), file) & (x->cap - 1);
	for (;; i = (i + 1) & (x->cap - 1)) {
		const struct gs_diff_site *s = x->slot[i] ? &d->sites[x->slot[i] - 1] : NULL;
		if (!s || (strcmp(s->function, fn) == 0 && strcmp(s->file, file) == 0))
			return &x->slot[i];
	}
}

static int site_index_grow(struct site_index *x, const struct gs_diff *d)
{
	size_t nc = x->cap ? 2 * x->cap : 64;
	struct site_index n = { calloc(nc, sizeof(*n.slot)), nc };
	if (!n.slot)
		return -ENOMEM;
	for (size_t k = 0; k < d->nsites; k++)
		*site_slot(&n, d, d->sites[k].function, d->sites[k].file) = (uint32_t)(k + 1);
	free(x->slot);
	*x = n;
	return 0;
}

/* The site of (fn, file), added when new; NULL when out of memory. */
static struct gs_diff_site *site_get(struct gs_diff *d, struct site_index *x, size_t *cap, const char *fn,
				     const char *file)
{
	struct gs_diff_site *s;
	uint32_t *slot;
	if (2 * (d->nsites + 1) > x->cap && site_index_grow(x, d) < 0)
		return NULL;
	slot = site_slot(x, d, fn, file);
	if (*slot)
		return &d->sites[*slot - 1];
	if (d->nsites == *cap) {
		size_t nc = *cap ? 2 * *cap : 16;
		struct gs_diff_site *ns = realloc(d->sites, nc * sizeof(*ns));
		if (!ns)
			return NULL;
		d->sites = ns, *cap = nc;
	}
	s = memset(&d->sites[d->nsites++], 0, sizeof(*s));
	snprintf(s->function, sizeof(s->function), "%s", fn);
	snprintf(s->file, sizeof(s->file), "%s", file);
	*slot = (uint32_t)d->nsites;
	return s;
}

static int add_sites(struct gs_diff *d, struct site_index *x, const struct gs_analysis *a, int side, size_t *cap)
{
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		const struct gs_thread *t;
		const char *fn, *file;
		struct gs_diff_site *s;
		if (!c->amount || (c->what != GS_WHAT_WAITED_NS && c->what != GS_WHAT_WAITS))
			continue;
		t = gs_analysis_thread((struct gs_analysis *)a, c->tid);
		if (!t || !compared(a, t))
			continue;
		site_of(a, c->stack, &fn, &file);
		s = site_get(d, x, cap, fn, file);
		if (!s)
			return -ENOMEM;
		if (c->what == GS_WHAT_WAITED_NS)
			*(side ? &s->b_ns : &s->a_ns) += c->amount;
		else
			*(side ? &s->b_waits : &s->a_waits) += c->amount;
	}
	return 0;
}

static int by_time(const void *x, const void *y)
{
	const struct gs_diff_site *a = x, *b = y;
	uint64_t ma = a->a_ns > a->b_ns ? a->a_ns : a->b_ns, mb = b->a_ns > b->b_ns ? b->a_ns : b->b_ns;
	if (ma != mb)
		return ma > mb ? -1 : 1;
	return strcmp(a->function, b->function);
}

int gs_diff_build(struct gs_diff *d, const struct gs_analysis *a, const struct gs_analysis *b)
{
	struct site_index x = { NULL, 0 };
	size_t cap = 0;
	int err;

	memset(d, 0, sizeof(*d));
	figures(a, &d->a);
	figures(b, &d->b);
	err = pair_threads(d, a, b) < 0 || add_sites(d, &x, a, 0, &cap) < 0 || add_sites(d, &x, b, 1, &cap) < 0;
	free(x.slot);
	if (err) {
		gs_diff_free(d);
		return -ENOMEM;
	}
	if (d->nsites)
		qsort(d->sites, d->nsites, sizeof(*d->sites), by_time);
	return 0;
}

void gs_diff_free(struct gs_diff *d)
{
	free(d->pairs);
	free(d->sites);
	memset(d, 0, sizeof(*d));
}

double gs_diff_percent(uint64_t x, uint64_t y)
{
	if (x == 0)
		return y == 0 ? 0.0 : INFINITY;
	return 100.0 * ((double)y - (double)x) / (double)x;
}
