/* analysis.c - the state machine. Events must arrive in time order; an event older than its
 * thread's last one is counted (out_of_order) and treated as happening at that last time.
 * Unmatched events never stop the analysis: they are counted as anomalies and the state is
 * repaired (for example an acquisition while another thread holds the GIL ends that hold).
 * Here: the threads' and GILs' state transitions, one function per record type. Beside it:
 * blame.c (waiters and who they waited behind), stacks.c (stacks and sample counts), meta.c
 * (run and process metadata, each process's images). */
#define _GNU_SOURCE
#include "analysis/analysis.h"
#include "analysis/blame.h"
#include "analysis/convoy.h"
#include "analysis/counters.h"
#include "analysis/meta.h"
#include "analysis/stacks.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gs_analysis_init(struct gs_analysis *a, uint64_t start_ns)
{
	memset(a, 0, sizeof(*a));
	a->start_ns = start_ns;
	a->last_ns = start_ns;
}

void gs_analysis_free(struct gs_analysis *a)
{
	gs_ctr_free(a);
	for (size_t i = 0; i < a->nthreads; i++) {
		free(a->threads[i].blame);
		gs_convoy_free(&a->threads[i]);
	}
	for (size_t i = 0; i < a->nframes; i++) {
		free(a->frames[i].qualname);
		free(a->frames[i].filename);
	}
	for (size_t i = 0; i < a->nstacks; i++)
		free(a->stacks[i]);
	free(a->frames);
	free(a->stacks);
	free(a->counts);
	for (size_t i = 0; i < a->ngils; i++)
		gs_blame_free_gil(&a->gils[i]);
	gs_blame_free(a);
	for (size_t i = 0; i < a->nprocs; i++)
		gs_meta_free(&a->procs[i]);
	free(a->threads);
	free(a->index);
	free(a->procs);
	free(a->gils);
	memset(a, 0, sizeof(*a));
}

static size_t hash_tid(uint32_t tid, size_t cap) { return (size_t)(tid * 2654435761u) & (cap - 1); }

/* Rebuilds the tid index, twice as large when grow (else at its size). */
static void index_rebuild(struct gs_analysis *a, int grow)
{
	free(a->index);
	if (grow || !a->index_cap)
		a->index_cap = a->index_cap ? a->index_cap * 2 : 64;
	a->index = gs_calloc(a->index_cap, sizeof(uint32_t));
	/* newest first: a reused tid keeps pointing to its newest thread */
	for (size_t i = a->nthreads; i-- > 0;) {
		size_t h = hash_tid(a->threads[i].tid, a->index_cap);
		while (a->index[h] && a->threads[a->index[h] - 1].tid != a->threads[i].tid)
			h = (h + 1) & (a->index_cap - 1);
		if (!a->index[h])
			a->index[h] = (uint32_t)i + 1;
	}
}

/* The newest thread with this tid (tids are reused after exit: the index points to the newest). */
struct gs_thread *gs_analysis_thread(struct gs_analysis *a, uint32_t tid)
{
	size_t h;
	if (!a->index_cap)
		return NULL;
	h = hash_tid(tid, a->index_cap);
	while (a->index[h]) {
		struct gs_thread *t = &a->threads[a->index[h] - 1];
		if (t->tid == tid)
			return t;
		h = (h + 1) & (a->index_cap - 1);
	}
	return NULL;
}

void gs_analysis_forget(struct gs_analysis *a, int (*forget)(void *ctx, const struct gs_thread *t), void *ctx)
{
	uint32_t *moved = gs_calloc(a->nthreads ? a->nthreads : 1, sizeof(*moved));
	size_t n = 0;
	for (size_t i = 0; i < a->nthreads; i++) {
		struct gs_thread *t = &a->threads[i];
		if (t->exited && forget(ctx, t)) {
			free(t->blame);
			gs_convoy_free(t);
			continue;
		}
		if (t->gil != GS_GIL_WAIT)
			t->nblame = 0;
		moved[i] = (uint32_t)n;
		if (n != i)
			a->threads[n] = *t;
		n++;
	}
	if (n != a->nthreads) {
		a->nthreads = n;
		for (size_t g = 0; g < a->ngils; g++)
			for (int w = 0; w < a->gils[g].nwaiters; w++)
				a->gils[g].waiters[w] = moved[a->gils[g].waiters[w]];
		index_rebuild(a, 0);
	}
	for (size_t i = 0; i < a->cap_counts; i++)
		a->counts[i].amount = 0;
	a->ncounts = 0;
	free(moved);
}

struct gs_process *gs_analysis_process(struct gs_analysis *a, uint32_t pid)
{
	for (size_t i = a->nprocs; i-- > 0;)
		if (a->procs[i].pid == pid)
			return &a->procs[i];
	return NULL;
}

static struct gs_process *proc_get(struct gs_analysis *a, uint32_t pid, uint64_t now)
{
	struct gs_process *p = gs_analysis_process(a, pid);
	if (p)
		return p;
	if (a->nprocs == a->cap_procs) {
		a->cap_procs = a->cap_procs ? a->cap_procs * 2 : 8;
		a->procs = gs_realloc_array(a->procs, a->cap_procs, sizeof(*a->procs));
	}
	p = &a->procs[a->nprocs++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->first_ns = now;
	p->main_gil = -1;
	p->drops_told_apart = -1;
	return p;
}

static struct gs_thread *thread_new(struct gs_analysis *a, uint32_t pid, uint32_t tid, uint64_t now)
{
	struct gs_thread *t;
	if (a->nthreads == a->cap_threads) {
		a->cap_threads = a->cap_threads ? a->cap_threads * 2 : 64;
		a->threads = gs_realloc_array(a->threads, a->cap_threads, sizeof(*a->threads));
	}
	t = &a->threads[a->nthreads++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->tid = tid;
	t->is_main = pid == tid;
	t->first_ns = t->t_last = now;
	t->gil_index = -1;
	if ((a->nthreads + 1) * 2 > a->index_cap) {
		index_rebuild(a, 1);
	} else {
		size_t h = hash_tid(tid, a->index_cap);
		while (a->index[h] && a->threads[a->index[h] - 1].tid != tid)
			h = (h + 1) & (a->index_cap - 1);
		a->index[h] = (uint32_t)a->nthreads;
	}
	return t;
}

/* The thread for an event; pid 0 means "unknown" (wakeups name only the tid). */
static struct gs_thread *thread_get(struct gs_analysis *a, uint32_t pid, uint32_t tid, uint64_t now)
{
	struct gs_thread *t = gs_analysis_thread(a, tid);
	if (t && !t->exited)
		return t;
	if (t && t->exited && pid == 0)
		return NULL; /* a wakeup for a dead tid */
	if (pid == 0)
		pid = tid; /* first sight through a wakeup: assume a process leader until told otherwise */
	t = thread_new(a, pid, tid, now);
	proc_get(a, pid, now);
	return t;
}

/* Accounts the thread's time from its last event to now in its current category. */
static void advance(struct gs_analysis *a, struct gs_thread *t, uint64_t *now)
{
	uint64_t dt;
	if (*now < t->t_last) {
		a->out_of_order++;
		*now = t->t_last;
	}
	dt = *now - t->t_last;
	t->t_last = *now;
	if (!dt)
		return;
	enum gs_slice kind;
	switch (t->gil) {
	case GS_GIL_HELD:
		t->held_ns += dt;
		kind = GS_SLICE_HELD;
		if (t->sched != GS_SCHED_ONCPU && t->sched != GS_SCHED_UNKNOWN) {
			t->held_offcpu_ns += dt;
			kind = GS_SLICE_HELD_OFFCPU;
		}
		goto out;
	case GS_GIL_WAIT:
		t->wait_ns += dt;
		if (t->sched == GS_SCHED_SLEEP || t->sched == GS_SCHED_DISK) {
			t->wait_sleep_ns += dt;
			kind = GS_SLICE_WAIT_SLEEP;
		} else if (t->sched == GS_SCHED_RUNNABLE) {
			t->wait_runnable_ns += dt;
			kind = GS_SLICE_WAIT_RUNNABLE;
		} else {
			t->wait_oncpu_ns += dt;
			kind = GS_SLICE_WAIT_ONCPU;
		}
		goto out;
	case GS_GIL_NONE:
		break;
	}
	switch (t->sched) {
	case GS_SCHED_ONCPU:
		t->run_nogil_ns += dt;
		kind = GS_SLICE_NOGIL;
		break;
	case GS_SCHED_RUNNABLE:
		t->runnable_ns += dt;
		kind = GS_SLICE_RUNNABLE;
		break;
	case GS_SCHED_SLEEP:
		t->sleeping_ns += dt;
		kind = GS_SLICE_SLEEP;
		break;
	case GS_SCHED_DISK:
		t->sleeping_ns += dt;
		t->uninterruptible_ns += dt;
		kind = GS_SLICE_DISK;
		break;
	default:
		t->unknown_ns += dt;
		kind = GS_SLICE_UNKNOWN;
		break;
	}
out:
	if (a->hooks && a->hooks->slice)
		a->hooks->slice(a->hooks->ctx, t, kind, *now - dt, *now);
}

static void hook_gil(struct gs_analysis *a, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *t,
		     uint64_t time)
{
	if (a->hooks && a->hooks->gil)
		a->hooks->gil(a->hooks->ctx, ev, g, t, time);
}

/* A hold starts: its stack samples are counted afresh. */
static void hold_begins(struct gs_thread *t, uint64_t now)
{
	t->hold_start = now;
	t->hold_stack = 0;
	t->hold_votes = t->hold_samples = 0;
}

/* Files the hold that ends (or is still open at the end) among the longest. */
static void top_hold(struct gs_analysis *a, const struct gs_gilstat *g, const struct gs_thread *t, uint64_t start,
		     uint64_t ns, int open)
{
	int i = a->ntop_holds;
	if (i == GS_TOP_HOLDS && a->top_holds[GS_TOP_HOLDS - 1].ns >= ns)
		return;
	if (i == GS_TOP_HOLDS)
		i--;
	else
		a->ntop_holds++;
	while (i > 0 && a->top_holds[i - 1].ns < ns) {
		a->top_holds[i] = a->top_holds[i - 1];
		i--;
	}
	a->top_holds[i].pid = t->pid;
	a->top_holds[i].tid = t->tid;
	a->top_holds[i].gil = g->number;
	a->top_holds[i].start_ns = start;
	a->top_holds[i].ns = ns;
	a->top_holds[i].max_waiters = g->hold_max_waiters;
	a->top_holds[i].waited_ns = g->hold_waited_ns;
	a->top_holds[i].stack = t->hold_stack;
	a->top_holds[i].samples = t->hold_samples;
	a->top_holds[i].open = open;
}

/* The GIL with reference ref in process p (ref 0: the process's main GIL). Returns its index;
 * the array may move. */
static int gil_for(struct gs_analysis *a, struct gs_process *p, uint64_t ref, uint64_t now)
{
	struct gs_gilstat *g;
	if (ref == 0 && p->main_gil >= 0)
		return p->main_gil;
	for (size_t i = 0; i < a->ngils; i++)
		if (a->gils[i].pid == p->pid && a->gils[i].ref == ref)
			return (int)i;
	if (ref && p->main_gil >= 0 && a->gils[p->main_gil].ref == 0) {
		a->gils[p->main_gil].ref = ref; /* the main GIL, first seen without its address */
		return p->main_gil;
	}
	if (a->ngils == a->cap_gils) {
		a->cap_gils = a->cap_gils ? a->cap_gils * 2 : 8;
		a->gils = gs_realloc_array(a->gils, a->cap_gils, sizeof(*a->gils));
	}
	g = &a->gils[a->ngils];
	memset(g, 0, sizeof(*g));
	g->pid = p->pid;
	g->ref = ref;
	g->number = ++p->ngils;
	g->first_ns = g->t_last = now;
	if (p->main_gil < 0)
		p->main_gil = (int)a->ngils;
	return (int)a->ngils++;
}

/* An event the thread itself caused: it was running. The scheduler events own the thread's
 * state; a GIL event timestamped a little after the thread left the CPU (GIL and scheduler
 * events come from different clocks' readings) only fills an unknown state. */
static void running(struct gs_analysis *a, struct gs_thread *t)
{
	if (t->sched == GS_SCHED_UNKNOWN)
		t->sched = GS_SCHED_ONCPU;
	else if (t->sched != GS_SCHED_ONCPU)
		a->off_cpu_gil_events++;
}

static void end_hold(struct gs_analysis *a, struct gs_gilstat *p, struct gs_thread *t, uint64_t now)
{
	uint64_t d;
	advance(a, t, &now);
	d = now - t->hold_start;
	gs_convoy_hold_end(p, t, d, p->drop_pending);
	if (d > t->longest_hold_ns)
		t->longest_hold_ns = d;
	t->releases++;
	top_hold(a, p, t, t->hold_start, d, 0);
	hook_gil(a, GS_GE_RELEASE, p, t, now);
	if (p->drop_pending) {
		/* the holder let go while a waiter had asked it to: a forced drop */
		uint64_t lat = now - p->drop_time;
		t->forced_drops++;
		t->drop_latency_sum_ns += lat;
		if (lat > t->drop_latency_max_ns)
			t->drop_latency_max_ns = lat;
		p->forced_drops++;
		p->drop_latency_sum_ns += lat;
		p->drop_latency_n++;
		if (lat > p->drop_latency_max_ns)
			p->drop_latency_max_ns = lat;
		p->drop_pending = 0;
	}
	t->gil = GS_GIL_NONE;
	if (p->holder == t->tid)
		p->holder = 0;
}

static void end_wait(struct gs_analysis *a, struct gs_gilstat *p, struct gs_thread *t, uint64_t now)
{
	uint64_t d;
	advance(a, t, &now);
	d = now - t->wait_start;
	if (d > t->longest_wait_ns)
		t->longest_wait_ns = d;
	gs_stacks_wait_done(a, t, d);
	gs_convoy_wait_end(p, t, d);
	t->gil = GS_GIL_NONE;
	gs_blame_waiter_remove(a, p, t);
	hook_gil(a, GS_GE_WAITERS, p, t, now);
}

static struct gs_thread *holder_of(struct gs_analysis *a, struct gs_gilstat *p)
{
	struct gs_thread *h = p->holder ? gs_analysis_thread(a, p->holder) : NULL;
	return h && h->gil == GS_GIL_HELD ? h : NULL;
}

static void gil_acquire(struct gs_analysis *a, struct gs_gilstat *p, struct gs_thread *t, uint64_t now)
{
	struct gs_thread *h = holder_of(a, p);
	if (h && h != t) {
		a->anomalies++; /* its release was lost */
		end_hold(a, p, h, now);
	}
	if (t->gil == GS_GIL_HELD) {
		a->anomalies++;
		return;
	}
	if (t->gil == GS_GIL_WAIT) {
		end_wait(a, p, t, now);
	} else if (!t->seen_gil_event && t->from_start) {
		/* Entered take_gil before the recording started: all its time so far was a wait. */
		uint64_t moved = t->sleeping_ns + t->runnable_ns + t->run_nogil_ns + t->unknown_ns;
		t->wait_sleep_ns += t->sleeping_ns;
		t->wait_runnable_ns += t->runnable_ns;
		t->wait_oncpu_ns += t->run_nogil_ns + t->unknown_ns;
		t->wait_ns += moved;
		t->sleeping_ns = t->runnable_ns = t->run_nogil_ns = t->unknown_ns = t->uninterruptible_ns = 0;
		if (moved > t->longest_wait_ns)
			t->longest_wait_ns = moved;
	}
	t->gil = GS_GIL_HELD;
	hold_begins(t, now);
	t->acquisitions++;
	p->acquisitions++;
	p->holder = t->tid;
	p->hold_max_waiters = p->nwaiters;
	p->hold_waited_ns = 0;
	hook_gil(a, GS_GE_ACQUIRE, p, t, now);
}

static void on_gil_write(struct gs_analysis *a, struct gs_gilstat *p, struct gs_thread *t, int32_t value, uint64_t now)
{
	struct gs_thread *h = holder_of(a, p);
	if (value == GS_VALUE_UNKNOWN) /* the store could not be decoded: the GIL alternates */
		value = (h == t) ? 0 : 1;
	if (value == 1) {
		gil_acquire(a, p, t, now);
	} else if (value == 0) {
		if (h == t)
			end_hold(a, p, t, now);
		else if (!h)
			a->init_writes++; /* create_gil() / reinit after fork */
		else
			a->anomalies++; /* a release by a thread that does not hold it */
	} else {
		/* -1: destroy_gil() */
		if (h)
			end_hold(a, p, h, now);
		p->holder = 0;
	}
	t->seen_gil_event = 1;
}

static enum gs_sched state_from_prev(int64_t prev_state)
{
	/* sched_switch prev_state: 0 = R, 0x100 (TASK_REPORT_MAX) = preempted R+, 1 S, 2 D, 4 T, 8 t,
	 * 0x10 X, 0x20 Z, 0x40 P, 0x80 I */
	if (prev_state == 0 || (prev_state & 0x100))
		return GS_SCHED_RUNNABLE;
	if (prev_state & 2)
		return GS_SCHED_DISK;
	return GS_SCHED_SLEEP;
}

/* From now on only: every figure restarts (the states, holders and waiters carry on). */
static void reset_accounting(struct gs_analysis *a, uint64_t now)
{
	a->start_ns = now;
	for (size_t i = 0; i < a->nthreads; i++) {
		struct gs_thread *t = &a->threads[i];
		uint64_t n = now;
		if (t->exited)
			continue;
		advance(a, t, &n);
		t->first_ns = now;
		t->held_ns = t->held_offcpu_ns = t->wait_ns = t->wait_sleep_ns = t->wait_runnable_ns =
			t->wait_oncpu_ns = 0;
		t->run_nogil_ns = t->sleeping_ns = t->uninterruptible_ns = t->runnable_ns = t->unknown_ns = 0;
		t->acquisitions = t->releases = t->forced_drops = t->drop_requests = 0;
		t->drop_requests_received = t->drop_latency_sum_ns = t->drop_latency_max_ns = 0;
		t->longest_hold_ns = t->longest_wait_ns = 0;
		if (t->ctr) /* record -e: counted from here too */
			memset(t->ctr, 0, (size_t)GS_CTR_MAX * GS_CTR_NSTATES * sizeof(*t->ctr));
		gs_blame_restart(t->gil == GS_GIL_WAIT && t->gil_index >= 0 ? &a->gils[t->gil_index] : NULL, t);
		gs_convoy_free(t);
		if (t->gil == GS_GIL_HELD)
			hold_begins(t, now);
		if (t->gil == GS_GIL_WAIT) {
			t->wait_start = now;
			t->wait_stack = 0;
		}
	}
	for (size_t i = 0; i < a->nprocs; i++)
		a->procs[i].first_ns = now;
	for (size_t i = 0; i < a->ngils; i++) {
		struct gs_gilstat *g = &a->gils[i];
		gs_blame_advance(a, g, now);
		g->first_ns = now;
		g->held_ns = g->contended_ns = g->acquisitions = g->forced_drops = g->drop_requests = 0;
		g->drop_latency_sum_ns = g->drop_latency_max_ns = g->drop_latency_n = 0;
	}
	a->ntop_holds = 0;
	for (size_t i = 0; i < a->cap_counts; i++)
		a->counts[i].amount = 0;
	a->ncounts = 0;
	a->stack_samples = 0;
}

/* A run's META record (pid 0), or a process's. */
static void on_meta(struct gs_analysis *a, const struct gs_rec *r, const char *payload, size_t plen)
{
	struct gs_meta m;
	if (gs_meta_decode(r, payload, plen, &m) < 0)
		return;
	if (r->pid != 0)
		gs_meta_process(proc_get(a, r->pid, r->time), &m, r->arg64 && r->arg64 < r->time ? r->arg64 : r->time);
	else if (strcmp(m.key, "account_from") == 0)
		reset_accounting(a, r->time);
	else if (gs_ctr_on_meta(a, &m))
		return;
	else
		gs_meta_run(a, &m);
}

/* Lost events: the run's total, and every thread alive then is marked (a ring does not say whose
 * events it dropped). */
static void on_lost(struct gs_analysis *a, const struct gs_rec *r)
{
	a->lost_events += r->arg64;
	for (size_t i = 0; i < a->nthreads; i++) {
		struct gs_thread *t = &a->threads[i];
		if (!t->exited && t->first_ns <= r->time)
			t->lost_while_alive += r->arg64;
	}
}

static void on_counter(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen, uint64_t now)
{
	if (a->hooks && a->hooks->counter && plen) {
		const struct gs_thread *ct = gs_analysis_thread(a, r->tid);
		a->hooks->counter(a->hooks->ctx, ct ? ct->pid : r->pid, r->tid, now, payload, r->arg64);
	}
}

/* A new task: a thread of a process, or a new process (pid != the parent's). */
static void on_fork(struct gs_analysis *a, const struct gs_rec *r, uint64_t now)
{
	const struct gs_thread *parent = gs_analysis_thread(a, (uint32_t)r->arg64);
	struct gs_thread *t = gs_analysis_thread(a, r->tid);
	struct gs_process *p, *pp;
	char pname[sizeof(parent->name)] = "";
	if (parent)
		memcpy(pname, parent->name, sizeof(pname)); /* thread_new may move the array */
	if (t && !t->exited) {
		/* seen before its creation record (e.g. a wakeup): adopt it */
		t->pid = r->pid;
		t->is_main = r->pid == r->tid;
	} else {
		t = thread_new(a, r->pid, r->tid, now);
	}
	t->sched = GS_SCHED_RUNNABLE;
	memcpy(t->name, pname, sizeof(t->name));
	p = proc_get(a, r->pid, now);
	pp = gs_analysis_process(a, (uint32_t)r->arg);
	if (r->pid != (uint32_t)r->arg && p->first_ns == now)
		p->ppid = (uint32_t)r->arg;
	if (r->pid != (uint32_t)r->arg && pp && pp->is_python && p->first_ns == now)
		gs_meta_fork(p, pp, now);
	else if (r->pid != (uint32_t)r->arg && pp && p->first_ns == now && pp->nimages &&
		 pp->images[pp->nimages - 1].argv)
		gs_meta_fork_argv(p, pp, now);
}

/* A thread's state when an attached recording starts. */
static void on_thread_state(struct gs_analysis *a, const struct gs_rec *r, uint64_t now)
{
	struct gs_thread *t = thread_get(a, r->pid, r->tid, now);
	struct gs_process *p;
	if (!t)
		return;
	t->from_start = 1;
	t->first_ns = t->t_last = now;
	switch ((char)r->arg) {
	case 'R':
		t->sched = GS_SCHED_ONCPU;
		break;
	case 'D':
		t->sched = GS_SCHED_DISK;
		break;
	case 'S':
	case 'T':
	case 't':
	case 'I':
		t->sched = GS_SCHED_SLEEP;
		break;
	default:
		t->sched = GS_SCHED_UNKNOWN;
	}
	p = proc_get(a, r->pid, now);
	if (r->arg64 & GS_THREAD_HOLDS_GIL) {
		int gi = gil_for(a, p, 0, now);
		t->gil = GS_GIL_HELD;
		hold_begins(t, now);
		t->seen_gil_event = 1;
		t->gil_index = gi;
		a->gils[gi].holder = t->tid;
	}
}

static void on_wakeup(struct gs_analysis *a, const struct gs_rec *r, uint64_t now)
{
	struct gs_thread *t = gs_analysis_thread(a, r->tid);
	if (!t || t->exited)
		return; /* woken before its creation record or after its death */
	advance(a, t, &now);
	if (t->sched != GS_SCHED_ONCPU)
		t->sched = GS_SCHED_RUNNABLE;
}

/* Ends t's hold or wait on its GIL at now (it exits, or its program is replaced). */
static void gil_leave(struct gs_analysis *a, struct gs_thread *t, uint64_t now)
{
	struct gs_gilstat *g;
	if (t->gil == GS_GIL_NONE || t->gil_index < 0)
		return;
	g = &a->gils[t->gil_index];
	gs_blame_advance(a, g, now);
	if (t->gil == GS_GIL_HELD)
		end_hold(a, g, t, now);
	else
		end_wait(a, g, t, now);
}

/* exec(): the process runs another program from now on. The old image's GIL is gone with it:
 * every hold and wait of the process ends here (the other threads' too: exec kills them,
 * and their exit records may come late or be lost), and a switch request pending then is not
 * a forced drop. The old image's Python description stays (meta.h). */
static void exec_ends_image(struct gs_analysis *a, struct gs_process *p, uint64_t now)
{
	for (size_t i = 0; i < a->ngils; i++)
		if (a->gils[i].pid == p->pid)
			a->gils[i].drop_pending = 0;
	for (size_t i = 0; i < a->nthreads; i++) {
		struct gs_thread *t = &a->threads[i];
		uint64_t n = now;
		if (t->pid != p->pid || t->exited || t->gil == GS_GIL_NONE)
			continue;
		advance(a, t, &n);
		gil_leave(a, t, n);
	}
	gs_meta_exec(p, now);
}

static void on_comm(struct gs_analysis *a, struct gs_process *p, struct gs_thread *t, const struct gs_rec *r,
		    const char *name, size_t plen, uint64_t now)
{
	if (plen) {
		size_t n = strnlen(name, plen);
		if (n >= sizeof(t->name))
			n = sizeof(t->name) - 1;
		memcpy(t->name, name, n);
		t->name[n] = '\0';
	}
	if (r->arg == 1 && t->is_main)
		exec_ends_image(a, p, now);
}

static void on_task_exit(struct gs_analysis *a, struct gs_process *p, struct gs_thread *t, uint64_t now)
{
	advance(a, t, &now);
	gil_leave(a, t, now);
	t->exited = 1;
	t->end_ns = now;
	if (t->is_main) {
		p->exited = 1;
		p->end_ns = now;
	}
}

static void on_gil_wait(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t, uint64_t now)
{
	if (t->gil == GS_GIL_HELD) {
		a->anomalies++;
		end_hold(a, g, t, now);
	}
	if (t->gil == GS_GIL_NONE) {
		t->gil = GS_GIL_WAIT;
		t->wait_start = now;
		t->wait_stack = 0;
		gs_blame_waiter_add(a, g, t);
		hook_gil(a, GS_GE_WAITERS, g, t, now);
	}
	t->seen_gil_event = 1;
}

static void on_drop_request(struct gs_analysis *a, struct gs_gilstat *g, struct gs_thread *t, int32_t value,
			    uint64_t now)
{
	if (value == 1 || (value == GS_VALUE_UNKNOWN && !g->drop_pending)) {
		struct gs_thread *h = holder_of(a, g); /* whom it asks: the holder at that instant */
		if (!g->drop_pending) {
			g->drop_pending = 1;
			g->drop_time = now;
			hook_gil(a, GS_GE_REQUEST, g, t, now);
		}
		g->drop_requests++;
		t->drop_requests++;
		if (h)
			h->drop_requests_received++;
	}
	/* a reset (0): drop_gil honouring it after the release, or a new holder clearing it; the
	 * release already ended the request: nothing to do */
}

/* A GIL event (GIL_WAIT, GIL_WRITE, DROPREQ) of thread t in Python process p. */
static void on_gil_event(struct gs_analysis *a, struct gs_process *p, struct gs_thread *t, const struct gs_rec *r,
			 uint64_t now)
{
	/* GIL events name their GIL (inline probes); the drop request is the main GIL's */
	int gi;
	struct gs_gilstat *g;
	advance(a, t, &now);
	running(a, t);
	gi = gil_for(a, p, r->type == GS_REC_DROPREQ ? 0 : r->arg64, now);
	g = &a->gils[gi];
	gs_blame_advance(a, g, now);
	if (r->type == GS_REC_DROPREQ) {
		on_drop_request(a, g, t, r->arg, now);
		return;
	}
	if (t->gil != GS_GIL_NONE && t->gil_index >= 0 && t->gil_index != gi)
		gil_leave(a, t, now); /* the thread moved to another interpreter's GIL */
	t->gil_index = gi;
	if (r->type == GS_REC_GIL_WAIT)
		on_gil_wait(a, g, t, now);
	else
		on_gil_write(a, g, t, r->arg, now);
}

/* The records that concern the thread of their pid/tid, known or new. */
static void on_thread_record(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen,
			     uint64_t now)
{
	struct gs_thread *t = NULL;
	struct gs_process *p;
	/* a name is read from the sampler's copy of the thread: it may be written after the thread
	 * exited, and then names the thread that was, not a new one */
	if (r->type == GS_REC_PYNAME)
		t = gs_analysis_thread(a, r->tid);
	if (!t)
		t = thread_get(a, r->pid, r->tid, now);
	if (!t)
		return;
	if (r->pid && t->pid != r->pid) {
		t->pid = r->pid; /* first seen through a wakeup */
		t->is_main = r->pid == r->tid;
	}
	p = proc_get(a, t->pid, now);
	switch (r->type) {
	case GS_REC_COMM:
		on_comm(a, p, t, r, payload, plen, now);
		return;
	case GS_REC_SWITCH_OUT:
		advance(a, t, &now);
		t->sched = state_from_prev((int64_t)r->arg64);
		return;
	case GS_REC_SWITCH_IN:
		advance(a, t, &now);
		t->sched = GS_SCHED_ONCPU;
		return;
	case GS_REC_EXIT:
		on_task_exit(a, p, t, now);
		return;
	case GS_REC_CTR_SAMPLE:
	case GS_REC_CTR_STACK:
		gs_ctr_on_record(a, p, t, r);
		return;
	case GS_REC_PYNAME: /* the last name read stands for the whole thread */
		if (plen) {
			size_t n = strnlen(payload, plen < sizeof(t->pyname) ? plen : sizeof(t->pyname) - 1);
			memcpy(t->pyname, payload, n);
			t->pyname[n] = '\0';
		}
		return;
	case GS_REC_GIL_WAIT:
	case GS_REC_GIL_WRITE:
	case GS_REC_DROPREQ:
		if (p->is_python) /* else: watchpoint hits in a process that no longer runs that Python image */
			on_gil_event(a, p, t, r, now);
		return;
	default:
		return; /* unknown record types are skipped */
	}
}

void gs_analysis_feed(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen)
{
	uint64_t now = r->time;

	a->records++;
	if (r->type == GS_REC_META) {
		on_meta(a, r, payload, plen);
		return;
	}
	if (r->type == GS_REC_GIL_WAIT || r->type == GS_REC_GIL_WRITE || r->type == GS_REC_DROPREQ)
		a->gil_events++;
	else if (r->type >= GS_REC_SWITCH_OUT && r->type <= GS_REC_COMM)
		a->sched_events++;
	if (now && now < a->start_ns)
		now = a->start_ns;
	if (now > a->last_ns)
		a->last_ns = now;

	switch (r->type) {
	case GS_REC_NATFRAME:
	case GS_REC_PYFRAME:
		gs_stacks_on_frame(a, r, payload, plen);
		return;
	case GS_REC_STACK:
		gs_stacks_on_stack(a, r, payload, plen);
		return;
	case GS_REC_SAMPLE:
		gs_stacks_on_sample(a, r);
		return;
	case GS_REC_COUNTER:
		on_counter(a, r, payload, plen, now);
		return;
	case GS_REC_LOST:
		on_lost(a, r);
		return;
	case GS_REC_END:
		a->complete = 1;
		return;
	case GS_REC_PROC_EXIT:
		if (r->pid) {
			struct gs_process *p = proc_get(a, r->pid, now);
			p->have_exit = 1;
			p->exit_status = r->arg;
		}
		if (!r->pid || r->pid == a->target_pid || !a->target_pid) {
			a->have_exit_status = 1;
			a->exit_status = r->arg;
		}
		return;
	case GS_REC_FORK:
		on_fork(a, r, now);
		return;
	case GS_REC_THREAD:
		on_thread_state(a, r, now);
		return;
	case GS_REC_WAKEUP:
		on_wakeup(a, r, now);
		return;
	default:
		on_thread_record(a, r, payload, plen, now);
		return;
	}
}

void gs_analysis_finish(struct gs_analysis *a, uint64_t end_ns)
{
	if (!end_ns || end_ns < a->last_ns)
		end_ns = a->last_ns;
	a->end_ns = end_ns;
	for (size_t i = 0; i < a->nthreads; i++) {
		struct gs_thread *t = &a->threads[i];
		uint64_t now = end_ns;
		if (t->exited)
			continue;
		advance(a, t, &now);
		if (t->gil == GS_GIL_HELD) {
			uint64_t d = now - t->hold_start;
			if (d > t->longest_hold_ns)
				t->longest_hold_ns = d;
			if (t->gil_index >= 0)
				top_hold(a, &a->gils[t->gil_index], t, t->hold_start, d, 1);
		} else if (t->gil == GS_GIL_WAIT) {
			uint64_t d = now - t->wait_start;
			if (d > t->longest_wait_ns)
				t->longest_wait_ns = d;
			gs_stacks_wait_done(a, t, d);
		}
		t->end_ns = now;
	}
	for (size_t i = 0; i < a->nprocs; i++) {
		struct gs_process *p = &a->procs[i];
		if (!p->exited)
			p->end_ns = end_ns;
	}
	for (size_t i = 0; i < a->ngils; i++) {
		struct gs_gilstat *g = &a->gils[i];
		const struct gs_process *p = gs_analysis_process(a, g->pid);
		g->end_ns = p ? p->end_ns : end_ns;
		gs_blame_advance(a, g, g->end_ns);
		gs_blame_settle(a, g);
	}
}
