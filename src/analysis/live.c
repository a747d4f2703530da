/* live.c - the live figures (live.h): an analysis behind a mutex, read while it is fed. */
#define _GNU_SOURCE
#include "analysis/live.h"
#include "analysis/forget.h"
#include "base/util.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const uint64_t gs_live_bucket_ns[GS_LIVE_BUCKETS] = {
	10000, 50000, 100000, 500000, 1000000, 5000000, 10000000, 50000000, 100000000, 500000000, 1000000000,
};

struct live_hist {
	uint64_t b[GS_LIVE_BUCKETS + 1], waits, sum_ns;
};

struct live_name {
	uint32_t pid;
	uint64_t first_ns; /* the process's first record: a reused pid is another process */
	unsigned used;     /* the snapshot that named it last */
	char name[GS_LIVE_NAME_MAX];
};

/* A wait in progress and the first stack sampled during it. */
struct live_wait {
	uint32_t tid;
	uint64_t start, stack;
};

/* Wait time of a thread in a stack since the last mark. */
struct live_site {
	uint32_t tid;
	uint64_t stack, ns;
};

struct gs_live {
	pthread_mutex_t mu;
	struct gs_analysis a;
	struct gs_hooks hooks;
	int started, closed;
	struct live_hist *hist; /* per GIL, as a.gils */
	size_t nhist;
	struct gs_live_thread *retired; /* per (pid, gil, group): the figures of removed threads */
	size_t nretired, cap_retired;
	struct live_name *names; /* process display names read so far */
	size_t nnames, cap_names;
	int sites_on; /* gs_live_wait_sites */
	struct live_wait *waits;
	size_t nwaits, cap_waits;
	struct live_site *sites;
	size_t nsites, cap_sites;
	uint32_t *site_slots; /* (tid, stack) hash: index in sites + 1, 0 free; 2 * cap_sites of them */
	unsigned snaps;       /* snapshots taken */
};

void gs_live_group(const char *name, char *out, size_t len)
{
	size_t d = 7;
	if (strncmp(name, "Thread-", 7) == 0 && name[7] >= '0' && name[7] <= '9') {
		while (name[d] >= '0' && name[d] <= '9')
			d++;
		snprintf(out, len, "Thread-*%s", name + d);
		return;
	}
	snprintf(out, len, "%s", name);
}

static const char *base_name(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

void gs_live_process_name(const char *cmdline, size_t len, char *out, size_t outlen)
{
	const char *args[64];
	size_t n = 0, i = 0;
	const char *prog;
	while (i < len && n < 64) {
		args[n++] = cmdline + i;
		i += strnlen(cmdline + i, len - i) + 1;
	}
	if (!n || i > len + 1 || !*args[0]) {
		snprintf(out, outlen, "?");
		return;
	}
	if (i > len) /* the last argument is not terminated: leave it out */
		n--;
	prog = n ? base_name(args[0]) : "?";
	snprintf(out, outlen, "%s", prog);
	if (strncmp(prog, "python", 6) != 0 && strncmp(prog, "pypy", 4) != 0)
		return;
	for (i = 1; i < n; i++) {
		if (strcmp(args[i], "-m") == 0 && i + 1 < n) {
			snprintf(out, outlen, "%s -m %s", prog, args[i + 1]);
			return;
		}
		if (strcmp(args[i], "-c") == 0) {
			snprintf(out, outlen, "%s -c", prog);
			return;
		}
		if (args[i][0] != '-') {
			snprintf(out, outlen, "%s %s", prog, base_name(args[i]));
			return;
		}
		if (strcmp(args[i], "-X") == 0 || strcmp(args[i], "-W") == 0)
			i++; /* an option's value */
	}
}

/* The display name of process pid first seen at first_ns, its command line read once. */
static const char *proc_name(struct gs_live *l, uint32_t pid, uint64_t first_ns)
{
	char path[64], buf[4096];
	struct live_name *e;
	ssize_t got = 0;
	int fd;
	for (size_t i = 0; i < l->nnames; i++)
		if (l->names[i].pid == pid && l->names[i].first_ns == first_ns) {
			l->names[i].used = l->snaps;
			return l->names[i].name;
		}
	if (l->nnames == l->cap_names) {
		l->cap_names = l->cap_names ? l->cap_names * 2 : 8;
		l->names = gs_realloc_array(l->names, l->cap_names, sizeof(*l->names));
	}
	e = &l->names[l->nnames++];
	e->pid = pid;
	e->first_ns = first_ns;
	e->used = l->snaps;
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		got = read(fd, buf, sizeof(buf));
		close(fd);
	}
	gs_live_process_name(buf, got > 0 ? (size_t)got : 0, e->name, sizeof(e->name));
	return e->name;
}

/* The names no process of the last snapshot used go (their process is no longer listed). */
static void names_prune(struct gs_live *l)
{
	for (size_t i = 0; i < l->nnames;)
		if (l->names[i].used != l->snaps)
			l->names[i] = l->names[--l->nnames];
		else
			i++;
}

static struct live_wait *wait_of(struct gs_live *l, uint32_t tid)
{
	for (size_t i = 0; i < l->nwaits; i++)
		if (l->waits[i].tid == tid)
			return &l->waits[i];
	return NULL;
}

static uint32_t *site_slot(struct gs_live *l, uint32_t tid, uint64_t stack)
{
	size_t mask = 2 * l->cap_sites - 1;
	size_t i = (size_t)((tid * 2654435761u) ^ (stack * 0x9e3779b97f4a7c15ull)) & mask;
	while (l->site_slots[i] &&
	       (l->sites[l->site_slots[i] - 1].tid != tid || l->sites[l->site_slots[i] - 1].stack != stack))
		i = (i + 1) & mask;
	return &l->site_slots[i];
}

/* ns more of tid's wait in stack since the last mark. At most GS_LIVE_SITES (tid, stack) pairs
 * between two marks: the time of further pairs is not kept. */
static void site_add(struct gs_live *l, uint32_t tid, uint64_t stack, uint64_t ns)
{
	uint32_t *slot = l->cap_sites ? site_slot(l, tid, stack) : NULL;
	if (slot && *slot) {
		l->sites[*slot - 1].ns += ns;
		return;
	}
	if (l->nsites == GS_LIVE_SITES)
		return;
	if (l->nsites == l->cap_sites) {
		l->cap_sites = l->cap_sites ? l->cap_sites * 2 : 32;
		l->sites = gs_realloc_array(l->sites, l->cap_sites, sizeof(*l->sites));
		free(l->site_slots);
		l->site_slots = gs_calloc(2 * l->cap_sites, sizeof(*l->site_slots));
		for (size_t i = 0; i < l->nsites; i++)
			*site_slot(l, l->sites[i].tid, l->sites[i].stack) = (uint32_t)i + 1;
		slot = site_slot(l, tid, stack);
	}
	l->sites[l->nsites++] = (struct live_site){ .tid = tid, .stack = stack, .ns = ns };
	*slot = (uint32_t)l->nsites;
}

/* A mark: the wait sites start again. */
static void sites_clear(struct gs_live *l)
{
	l->nsites = 0;
	if (l->site_slots)
		memset(l->site_slots, 0, 2 * l->cap_sites * sizeof(*l->site_slots));
}

/* The waits that ended without a hook (the thread exited, or the analysis forgot it) go. */
static void waits_prune(struct gs_live *l)
{
	for (size_t i = 0; i < l->nwaits;) {
		const struct gs_thread *t = gs_analysis_thread(&l->a, l->waits[i].tid);
		if (!t || t->exited || t->gil != GS_GIL_WAIT || t->wait_start != l->waits[i].start)
			l->waits[i] = l->waits[--l->nwaits];
		else
			i++;
	}
}

/* A stack sample: the first one of a wait names where the wait is. */
static void wait_site_sample(struct gs_live *l, const struct gs_rec *r)
{
	const struct gs_thread *t = gs_analysis_thread(&l->a, r->tid);
	struct live_wait *w;
	if (!t || t->exited || t->gil != GS_GIL_WAIT || !r->arg64)
		return;
	if (!(w = wait_of(l, r->tid))) {
		if (l->nwaits == l->cap_waits) {
			l->cap_waits = l->cap_waits ? l->cap_waits * 2 : 16;
			l->waits = gs_realloc_array(l->waits, l->cap_waits, sizeof(*l->waits));
		}
		w = &l->waits[l->nwaits++];
		w->tid = r->tid;
		w->start = t->wait_start + 1; /* not this wait: set below */
	}
	if (w->start != t->wait_start) {
		w->start = t->wait_start;
		w->stack = r->arg64;
	}
}

/* A wait of d ns ended: its time to the stack sampled first during it. */
static void wait_site_done(struct gs_live *l, const struct gs_thread *t, uint64_t d)
{
	struct live_wait *w = wait_of(l, t->tid);
	if (!w)
		return;
	if (w->start == t->wait_start && d)
		site_add(l, t->tid, w->stack, d);
	*w = l->waits[--l->nwaits];
}

/* "function file:line" of the innermost Python frame of stack into buf ("" when none). */
static void site_name(const struct gs_analysis *a, uint64_t stack, char *buf, size_t len)
{
	int n = 0;
	const uint32_t *f = gs_analysis_stack(a, stack, &n);
	buf[0] = '\0';
	for (int k = 0; f && k < n; k++) {
		const struct gs_frame_def *d = f[k] && f[k] <= a->nframes ? &a->frames[f[k] - 1] : NULL;
		const char *file;
		if (!d || d->native || !d->qualname)
			continue;
		file = d->filename ? strrchr(d->filename, '/') : NULL;
		file = file ? file + 1 : d->filename ? d->filename : "?";
		snprintf(buf, len, "%s %s:%d", d->qualname, file, d->line);
		return;
	}
}

/* Thread t's top wait site since the last mark, the wait in progress counted up to now. */
static void thread_site(const struct gs_live *l, const struct gs_thread *t, uint64_t now, struct gs_live_thread *o)
{
	const struct live_wait *w = NULL;
	uint64_t best = 0, stack = 0, cur = 0;
	for (size_t i = 0; i < l->nwaits && !w; i++)
		if (l->waits[i].tid == t->tid && l->waits[i].start == t->wait_start && t->gil == GS_GIL_WAIT)
			w = &l->waits[i];
	if (w && now > t->wait_start)
		cur = now - t->wait_start;
	for (size_t i = 0; i < l->nsites; i++) {
		const struct live_site *e = &l->sites[i];
		uint64_t ns = e->ns + (w && w->stack == e->stack ? cur : 0);
		if (e->tid == t->tid && ns > best) {
			best = ns;
			stack = e->stack;
		}
	}
	if (w && cur > best) {
		best = cur;
		stack = w->stack;
	}
	if (stack) {
		site_name(&l->a, stack, o->wait_site, sizeof(o->wait_site));
		o->wait_site_ns = best;
	}
}

/* A finished wait goes into its GIL's histogram and its thread's interval maximum. */
static void on_gil(void *ctx, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *ct,
		   uint64_t time)
{
	struct gs_live *l = ctx;
	struct gs_thread *t = gs_analysis_thread(&l->a, ct->tid);
	size_t gi = (size_t)(g - l->a.gils);
	uint64_t d;
	unsigned b = 0;
	if (ev != GS_GE_WAITERS || ct->gil == GS_GIL_WAIT || !t)
		return;
	d = time > ct->wait_start ? time - ct->wait_start : 0;
	if (gi >= l->nhist) {
		size_t n = l->a.cap_gils > gi ? l->a.cap_gils : gi + 1;
		l->hist = gs_realloc_array(l->hist, n, sizeof(*l->hist));
		memset(l->hist + l->nhist, 0, (n - l->nhist) * sizeof(*l->hist));
		l->nhist = n;
	}
	while (b < GS_LIVE_BUCKETS && d > gs_live_bucket_ns[b])
		b++;
	l->hist[gi].b[b]++;
	l->hist[gi].waits++;
	l->hist[gi].sum_ns += d;
	if (d > t->interval_wait_max_ns)
		t->interval_wait_max_ns = d;
	if (l->sites_on)
		wait_site_done(l, ct, d);
}

static void forget_ended(struct gs_live *l);

struct gs_live *gs_live_new(void)
{
	struct gs_live *l = gs_calloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	gs_analysis_init(&l->a, 0);
	l->hooks.ctx = l;
	l->hooks.gil = on_gil;
	l->a.hooks = &l->hooks;
	return l;
}

void gs_live_free(struct gs_live *l)
{
	if (!l)
		return;
	gs_analysis_free(&l->a);
	pthread_mutex_destroy(&l->mu);
	free(l->hist);
	free(l->retired);
	free(l->names);
	free(l->waits);
	free(l->sites);
	free(l->site_slots);
	free(l);
}

void gs_live_start(struct gs_live *l, uint64_t start_ns)
{
	pthread_mutex_lock(&l->mu);
	gs_analysis_init(&l->a, start_ns);
	l->a.hooks = &l->hooks;
	l->started = 1;
	pthread_mutex_unlock(&l->mu);
}

void gs_live_wait_sites(struct gs_live *l, int on)
{
	pthread_mutex_lock(&l->mu);
	l->sites_on = on;
	pthread_mutex_unlock(&l->mu);
}

void gs_live_feed(struct gs_live *l, const struct gs_rec *r, const void *payload, size_t plen)
{
	int stacks = r->type == GS_REC_PYFRAME || r->type == GS_REC_NATFRAME || r->type == GS_REC_STACK;
	if ((stacks || r->type == GS_REC_SAMPLE) && !l->sites_on)
		return; /* stacks: their counts would grow */
	pthread_mutex_lock(&l->mu);
	if (r->type == GS_REC_SAMPLE) /* the definitions are kept, the samples are not counted */
		wait_site_sample(l, r);
	else
		gs_analysis_feed(&l->a, r, payload, plen);
	if ((l->a.records & 0xffff) == 0) { /* nobody reads (or top is paused): bounded all the same */
		forget_ended(l);
		waits_prune(l);
	}
	pthread_mutex_unlock(&l->mu);
}

void gs_live_close(struct gs_live *l)
{
	pthread_mutex_lock(&l->mu);
	l->closed = 1;
	pthread_mutex_unlock(&l->mu);
}

/* Thread t's row, its state in progress counted up to now. */
static void thread_row(const struct gs_analysis *a, const struct gs_thread *t, uint64_t now, struct gs_live_thread *o)
{
	uint64_t dt = !t->exited && now > t->t_last ? now - t->t_last : 0;
	memset(o, 0, sizeof(*o));
	o->pid = t->pid;
	o->tid = t->tid;
	o->gil = t->gil_index >= 0 ? a->gils[t->gil_index].number : 0;
	snprintf(o->name, sizeof(o->name), "%s", gs_thread_name(a, t));
	gs_live_group(o->name, o->group, sizeof(o->group));
	o->exited = t->exited;
	o->holding = t->gil == GS_GIL_HELD;
	o->waiting = t->gil == GS_GIL_WAIT;
	o->first_ns = t->first_ns;
	o->held_ns = t->held_ns + (o->holding ? dt : 0);
	o->wait_ns = t->wait_ns + (o->waiting ? dt : 0);
	o->waiting_ns = o->waiting && now > t->wait_start ? now - t->wait_start : 0;
	o->nogil_ns = t->run_nogil_ns;
	o->sleep_ns = t->sleeping_ns;
	o->runnable_ns = t->runnable_ns;
	o->unknown_ns = t->unknown_ns;
	if (t->gil == GS_GIL_NONE) {
		if (t->sched == GS_SCHED_ONCPU)
			o->nogil_ns += dt;
		else if (t->sched == GS_SCHED_RUNNABLE)
			o->runnable_ns += dt;
		else if (t->sched == GS_SCHED_SLEEP || t->sched == GS_SCHED_DISK)
			o->sleep_ns += dt;
		else
			o->unknown_ns += dt;
	}
	o->acquisitions = t->acquisitions;
	o->forced_drops = t->forced_drops;
	o->interval_wait_max_ns = t->interval_wait_max_ns;
}

static void gil_row(const struct gs_live *l, size_t i, uint64_t now, struct gs_live_gil *o)
{
	const struct gs_gilstat *g = &l->a.gils[i];
	uint64_t dt = now > g->t_last ? now - g->t_last : 0;
	const struct gs_process *p = NULL;
	for (size_t k = 0; k < l->a.nprocs; k++)
		if (l->a.procs[k].pid == g->pid)
			p = &l->a.procs[k];
	if (p && p->exited)
		dt = 0;
	memset(o, 0, sizeof(*o));
	o->pid = g->pid;
	o->number = g->number;
	o->held_ns = g->held_ns + (g->holder ? dt : 0);
	o->contended_ns = g->contended_ns + (g->nwaiters ? dt : 0);
	o->acquisitions = g->acquisitions;
	o->forced_drops = g->forced_drops;
	o->waiters = p && p->exited ? 0 : g->nwaiters;
	if (i < l->nhist) {
		memcpy(o->hist, l->hist[i].b, sizeof(o->hist));
		o->waits = l->hist[i].waits;
		o->wait_sum_ns = l->hist[i].sum_ns;
	}
}

/* The forget callback of gs_analysis_forget: an exited thread shown often enough goes, its
 * figures into its group's retired row. */
static int retire(void *ctx, const struct gs_thread *t)
{
	struct gs_live *l = ctx;
	struct gs_live_thread row, *r = NULL;
	if (t->shown_exited < GS_LIVE_SHOWN && l->a.last_ns - t->end_ns < GS_LIVE_UNSHOWN_NS)
		return 0;
	thread_row(&l->a, t, 0, &row);
	for (size_t i = 0; i < l->nretired && !r; i++)
		if (l->retired[i].pid == row.pid && l->retired[i].gil == row.gil &&
		    strcmp(l->retired[i].group, row.group) == 0)
			r = &l->retired[i];
	if (!r) {
		if (l->nretired == l->cap_retired) {
			l->cap_retired = l->cap_retired ? l->cap_retired * 2 : 16;
			l->retired = gs_realloc_array(l->retired, l->cap_retired, sizeof(*l->retired));
		}
		r = &l->retired[l->nretired++];
		memset(r, 0, sizeof(*r));
		r->pid = row.pid;
		r->gil = row.gil;
		r->exited = 1;
		r->first_ns = row.first_ns;
		memcpy(r->name, row.group, sizeof(r->name));
		memcpy(r->group, row.group, sizeof(r->group));
	}
	r->held_ns += row.held_ns;
	r->wait_ns += row.wait_ns;
	r->nogil_ns += row.nogil_ns;
	r->sleep_ns += row.sleep_ns;
	r->runnable_ns += row.runnable_ns;
	r->unknown_ns += row.unknown_ns;
	r->acquisitions += row.acquisitions;
	r->forced_drops += row.forced_drops;
	return 1;
}

/* The forget callback of gs_analysis_forget_procs: an ended process of which no thread is left,
 * listed often enough (as retire's rule for threads), goes with its retired rows. */
static int forget_proc(void *ctx, const struct gs_process *p)
{
	struct gs_live *l = ctx;
	uint64_t end = p->end_ns > p->first_ns ? p->end_ns : p->first_ns;
	if (p->shown_exited < GS_LIVE_SHOWN && l->a.last_ns < end + GS_LIVE_UNSHOWN_NS)
		return 0;
	for (size_t i = 0; i < l->nretired;)
		if (l->retired[i].pid == p->pid)
			memmove(&l->retired[i], &l->retired[i + 1], (--l->nretired - i) * sizeof(*l->retired));
		else
			i++;
	return 1;
}

/* gs_analysis_forget_procs moved GIL from to to: its histogram follows. */
static void gil_moved(void *ctx, size_t from, size_t to)
{
	struct gs_live *l = ctx;
	if (from < l->nhist)
		l->hist[to] = l->hist[from];
	else if (to < l->nhist)
		memset(&l->hist[to], 0, sizeof(l->hist[to]));
}

/* The exited threads retired, then the ended processes with none left forgotten (and their GILs'
 * histograms: the slots past the GILs left are cleared for the next ones). */
static void forget_ended(struct gs_live *l)
{
	gs_analysis_forget(&l->a, retire, l);
	if (gs_analysis_forget_procs(&l->a, forget_proc, gil_moved, l) && l->a.ngils < l->nhist)
		memset(&l->hist[l->a.ngils], 0, (l->nhist - l->a.ngils) * sizeof(*l->hist));
}

/* Every process the analysis holds (an ended one until forget_proc lets it go, its retired rows
 * with it). */
static void copy_procs(struct gs_live *l, struct gs_live_snap *s, uint64_t now)
{
	s->procs = gs_calloc(l->a.nprocs ? l->a.nprocs : 1, sizeof(*s->procs));
	for (size_t i = 0; i < l->a.nprocs; i++) {
		const struct gs_process *p = &l->a.procs[i];
		struct gs_live_proc *o = &s->procs[s->nprocs++];
		uint64_t end = p->exited ? p->end_ns : now;
		o->pid = p->pid;
		o->exited = p->exited;
		o->is_python = p->is_python || p->python_version[0];
		snprintf(o->name, sizeof(o->name), "%s", proc_name(l, p->pid, p->first_ns));
		o->first_ns = p->first_ns;
		o->wall_ns = end > p->first_ns ? end - p->first_ns : 0;
		if (p->exited || p->have_exit)
			l->a.procs[i].shown_exited++;
	}
}

void gs_live_snapshot(struct gs_live *l, struct gs_live_snap *s, int mark)
{
	uint64_t now;
	size_t n;
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&l->mu);
	l->snaps++;
	now = l->a.last_ns;
	s->start_ns = l->a.start_ns;
	s->last_ns = now;
	s->lost_events = l->a.lost_events;
	s->records = l->a.records;
	s->closed = l->closed;
	n = l->a.nthreads + l->nretired;
	s->threads = gs_calloc(n ? n : 1, sizeof(*s->threads));
	for (size_t i = 0; i < l->a.nthreads; i++) {
		struct gs_thread *t = &l->a.threads[i];
		thread_row(&l->a, t, now, &s->threads[s->nthreads]);
		if (l->sites_on)
			thread_site(l, t, now, &s->threads[s->nthreads]);
		s->nthreads++;
		if (mark)
			t->interval_wait_max_ns = 0;
		if (t->exited)
			t->shown_exited++;
	}
	for (size_t i = 0; i < l->nretired; i++)
		s->threads[s->nthreads++] = l->retired[i];
	s->gils = gs_calloc(l->a.ngils ? l->a.ngils : 1, sizeof(*s->gils));
	for (size_t i = 0; i < l->a.ngils; i++)
		gil_row(l, i, now, &s->gils[s->ngils++]);
	copy_procs(l, s, now);
	names_prune(l);
	if (mark)
		sites_clear(l);
	waits_prune(l);
	forget_ended(l);
	gs_debug("live: %zu threads (cap %zu), %zu retired, %zu processes, %zu GILs, %zu counts, %zu stacks",
		 l->a.nthreads, l->a.cap_threads, l->nretired, l->a.nprocs, l->a.ngils, l->a.ncounts, l->a.nstacks);
	pthread_mutex_unlock(&l->mu);
}

void gs_live_snap_free(struct gs_live_snap *s)
{
	free(s->threads);
	free(s->gils);
	free(s->procs);
	memset(s, 0, sizeof(*s));
}
