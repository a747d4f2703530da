/* collect.c - every ring drained into the merge, the merge into the sinks (see session.h).
 *
 * The kernel rings are read at least every 50 ms; a record read from a ring is at most
 * WATERMARK_SLACK_NS older than the moment of the read, or than the newest record that ring gave,
 * so every stream can still only deliver records newer than the watermark, the minimum over the
 * streams of those bounds, and the merge writes out everything older. A BPF scheduler source's
 * one ring buffer interleaves the CPUs in the order records were reserved, not stamped: only the
 * moment of the read bounds it.
 */
#define _GNU_SOURCE
#include "base/escape.h"
#include "base/procfs.h"
#include "base/util.h"
#include "record/ring_decode.h"
#include "record/session.h"

#include <string.h>

#define WATERMARK_SLACK_NS 10000000ull /* an event read later is at most this much older */

static int kind_cb(const void *ctx, uint64_t id) { return gs_evlist_kind(ctx, id); }

struct drain_ctx {
	struct gs_session *S;
	int cpu;
};

/* The instrumented CPython exec()'d another program: what ran before is recorded (the analysis
 * ends its holds and waits at the exec), the new image is not instrumented. Said once, on
 * stderr and in the recording (python.error of the process, for its new image). */
static void exec_noted(struct gs_session *S, uint32_t pid)
{
	char exe[4096] = "?", shown[1024], why[1280];
	if (S->exec_noted)
		return;
	S->exec_noted = 1;
	gs_proc_exe((pid_t)pid, exe, sizeof(exe));
	gs_esc_term_buf(shown, sizeof(shown), exe);
	snprintf(why, sizeof(why),
		 "process %u exec()'d %s: what ran before is recorded; the new program's GIL is not (gilscope "
		 "instruments the program it started and its fork()ed children)",
		 pid, shown);
	gs_warn("%s", why);
	gs_emit_meta(&S->emit, pid, "python.error", why);
}

/* A scheduler or probe record (name: a COMM's) into merge queue q, counted when LOST. */
static void add_rec(struct gs_session *S, int q, const struct gs_rec *r, const char *name)
{
	if (r->type == GS_REC_LOST)
		S->lost += r->arg64;
	else if (r->type == GS_REC_FORK)
		gs_tidmap_on_fork(S->tidmap, r->pid, r->tid, r->time);
	if (r->type == GS_REC_FORK && r->pid != (uint32_t)r->arg) { /* a fork() of a CPython runs it too */
		gs_stacks_forked(S->stacks, (pid_t)r->pid, (pid_t)r->arg);
		if (gs_pidset_has(S->pypids, (uint32_t)r->arg))
			gs_pidset_add(S->pypids, r->pid);
	} else if (r->type == GS_REC_EXIT) {
		gs_tidmap_on_exit(S->tidmap, r->tid, r->time);
		gs_stacks_thread_exited(S->stacks, r->tid);
	}
	if (r->type == GS_REC_COMM && r->arg == 1)
		gs_stacks_exec(S->stacks, (pid_t)r->pid); /* a fork()ed CPython's copy no more */
	if (r->type == GS_REC_COMM && r->arg == 1 && S->have_python && r->pid == (uint32_t)S->probes.py.pid &&
	    (!S->tree || S->o->no_children))
		exec_noted(S, r->pid);
	gs_merge_add(S->merge, q, r, name, name ? strnlen(name, 15) + 1 : 0);
}

/* One ring record: decoded by ring_decode.c; the value a watchpoint hit stored is read here
 * (it needs the target's code). */
static void on_record(const struct perf_event_header *h, void *arg)
{
	struct drain_ctx *c = arg;
	struct gs_session *S = c->S;
	const struct gs_ringdec_layout l = {
		.prev_state_off = S->sched->prev_state_off,
		.prev_state_size = S->sched->prev_state_size,
		.wake_pid_off = S->sched->wake_pid_off,
		.wake_pid_size = S->sched->wake_pid_size,
		.kind_of = kind_cb,
		.ctx = S->ev,
	};
	struct gs_ringdec d;

	switch (gs_ringdec_decode(h, &l, &d)) {
	case GS_RINGDEC_EVENT:
		break;
	case GS_RINGDEC_CORRUPT:
		S->corrupt++;
		return;
	case GS_RINGDEC_THROTTLE:
		S->throttled++;
		return;
	default:
		return;
	}
	if (d.needs_value)
		d.r.arg = gs_pyprobes_stored_value(&S->probes, d.r.pid, d.ip);
	if (d.r.type == GS_REC_CTR_SAMPLE) {
		/* --sample-event: the thread's stack (none: a record without one) */
		int sc = gs_counters_stack_for(S->counters, d.r.arg);
		if (sc >= 0 && gs_stacks_event(S->stacks, d.r.pid, d.r.tid, sc, d.r.time) < 0) {
			struct gs_rec r = d.r;
			r.type = GS_REC_CTR_STACK;
			r.arg = sc;
			r.arg64 = 0;
			add_rec(S, c->cpu, &r, NULL);
		}
		if (gs_counters_takes_stacks(S->counters, d.r.arg))
			goto seen; /* a stacks counter only: no count */
		d.r.arg64 = gs_counters_period(S->counters, d.r.arg);
	}
	if (d.r.type == GS_REC_LOST)
		d.r.arg = c->cpu;
	add_rec(S, c->cpu, &d.r, d.r.type == GS_REC_COMM ? d.name : NULL);
seen:
	if (d.r.time > S->ring_last[c->cpu])
		S->ring_last[c->cpu] = d.r.time;
}

/* A record of a scheduler source that drains itself (BPF), into its own queue. */
static void on_sched_rec(const struct gs_rec *r, const char *name, void *arg)
{
	struct gs_session *S = arg;
	if (r->type == GS_REC_COMM && (r->arg64 == GS_SCHED_EXEC_STOPPED || r->arg64 == GS_SCHED_EXEC_RUNNING)) {
		struct gs_rec c = *r;
		c.arg64 = 0; /* the recording's COMM as ever */
		gs_session_exec_stopped(S, (pid_t)r->pid, r->arg64 == GS_SCHED_EXEC_RUNNING);
		add_rec(S, S->sched_queue, &c, name);
		return;
	}
	if (r->type == GS_REC_FORK && r->pid != (uint32_t)r->arg && (S->attach || S->bpf_tree))
		gs_session_forked(S, (pid_t)r->pid);
	if (r->type == GS_REC_PROC_EXIT && !S->attach && (!S->bpf_tree || r->pid == (uint32_t)S->target))
		return; /* a launch has its guardian's wait statuses (proctree.c), the command's from its reaping */
	add_rec(S, S->sched_queue, r, name);
}

struct inline_ctx {
	struct gs_session *S;
	const struct gs_pyprobes *p; /* whose ring it is */
};

/* One inline probe's event, written in place in the merge's queue (merge.h, gs_merge_next). */
static void on_inline(const struct gs_inline_event *e, void *arg)
{
	const struct inline_ctx *c = arg;
	struct gs_session *S = c->S;
	uint32_t tid = e->tid;
	struct gs_rec *r;
	/* the probes write the thread's id in its own PID namespace */
	if (gs_tidmap_active(S->tidmap) && (tid = gs_tidmap_host(S->tidmap, e->tid, e->time)) == 0)
		return;
	r = gs_merge_next(S->merge, S->inline_queue, e->time);
	r->tid = tid;
	if (e->kind == GS_INLINE_WAIT) {
		r->type = GS_REC_GIL_WAIT;
		r->arg64 = e->gil;
	} else if (e->kind == GS_INLINE_DROPREQ_SET || e->kind == GS_INLINE_DROPREQ_RESET) {
		r->type = GS_REC_DROPREQ;
		r->arg = e->kind == GS_INLINE_DROPREQ_SET ? 1 : 0;
		r->arg64 = gs_pyprobes_site_ip(c->p, e->site);
	} else {
		r->type = GS_REC_GIL_WRITE;
		r->arg = e->kind == GS_INLINE_ACQUIRE ? 1 : 0;
		r->arg64 = e->gil;
	}
}

static void to_sinks(const struct gs_rec *r, const void *payload, size_t plen, void *arg)
{
	gs_session_write(arg, r, payload, plen);
}

/* --python-only: a record of a process that does not run CPython is not written (run records,
 * pid 0, and the command's end are). */
static int dropped(const struct gs_session *S, const struct gs_rec *r)
{
	if (!S->pypids || !r->pid || r->type == GS_REC_LOST || r->type == GS_REC_END)
		return 0;
	if (r->type == GS_REC_PROC_EXIT && r->pid == (uint32_t)S->target)
		return 0;
	return !gs_pidset_has(S->pypids, r->pid);
}

void gs_session_write(struct gs_session *S, const struct gs_rec *r, const void *payload, size_t plen)
{
	const struct gs_record_opts *o = S->o;
	if (dropped(S, r))
		return;
	for (int i = 0; i < o->nsinks; i++) {
		struct gs_sink *k = o->sinks[i];
		if (!k->failed && k->event(k->ctx, r, payload, plen) < 0)
			k->failed = 1;
	}
}

static uint64_t lower_bound(uint64_t t) { return t > WATERMARK_SLACK_NS ? t - WATERMARK_SLACK_NS : 0; }

size_t gs_session_drain(struct gs_session *S, int final)
{
	uint64_t wm = UINT64_MAX;
	size_t written;

	for (int c = 0; c < S->ncpu; c++) {
		struct drain_ctx ctx = { S, c };
		uint64_t lb;
		if (!gs_evlist_has_ring(S->ev, c))
			continue;
		lb = lower_bound(gs_now_ns());
		if (gs_evlist_drain(S->ev, c, on_record, &ctx) < 0)
			S->corrupt++;
		if (S->ring_last[c] > lb)
			lb = S->ring_last[c];
		if (lb < wm)
			wm = lb;
	}
	if (S->sched->drain) {
		/* one ring buffer for every CPU, in reserve order: only the time of the read bounds it */
		uint64_t lb = lower_bound(gs_now_ns());
		S->sched->drain(S->sched, on_sched_rec, S);
		if (lb < wm)
			wm = lb;
	}
	for (size_t i = 0; i <= S->nmore; i++) {
		struct gs_pyprobes *p = i == 0 ? &S->probes : S->more[i - 1];
		struct inline_ctx ic = { S, p };
		uint64_t lb = lower_bound(gs_now_ns());
		if (!p->il.map)
			continue;
		gs_inline_drain(&p->il, final, on_inline, &ic);
		/* a writer preempted in the middle of its slot holds the watermark back until it commits */
		if (p->il.settled_ns < lb)
			lb = p->il.settled_ns;
		if (lb < wm)
			wm = lb;
	}
	written = gs_merge_flush(S->merge, wm, final, to_sinks, S);
	gs_session_flush(S);
	if (final || wm > S->written_to)
		S->written_to = final ? UINT64_MAX : wm;
	return written;
}

void gs_session_flush(struct gs_session *S)
{
	for (int i = 0; i < S->o->nsinks; i++) {
		struct gs_sink *k = S->o->sinks[i];
		if (!k->failed && k->flush(k->ctx) < 0)
			k->failed = 1;
	}
}
