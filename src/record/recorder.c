/* recorder.c - `gilscope record` without its command line: sets a session up, launches or
 * attaches, finishes the recording (see recorder.h and session.h).
 *
 * Mechanism (README "How gilscope records"): scheduler events from the scheduler source
 * (record/sched.h); the GIL from inline probes when gilscope launches the command, from uprobes
 * when it attaches (record/pyprobes.h); stacks from the sampler (record/stacks.h); everything
 * merged in time order (record/merge.h, record/collect.c) and delivered to the sinks
 * (record/sink.h).
 */
#define _GNU_SOURCE
#include "record/recorder.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/tracefs.h"
#include "probe/tracer.h"
#include "record/session.h"
#include "cpython/imgcache.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

/* tracefs, the scheduler source, stale uprobes: what the kernel must allow before anything is
 * started. 0, or -errno with why. */
static int preflight(struct gs_session *S, char *why, size_t whylen)
{
	int err;
	if ((err = gs_tracefs_open(S->tracefs, sizeof(S->tracefs), why, whylen)) < 0) {
		if (geteuid() != 0) {
			/* name every privilege that is missing, not just the first */
			char par[32] = "?";
			long n = gs_read_file("/proc/sys/kernel/perf_event_paranoid", par, sizeof(par));
			size_t l = strlen(why);
			if (n > 0 && par[n - 1] == '\n')
				par[n - 1] = '\0';
			snprintf(why + l, whylen - l,
				 "; the scheduler tracepoints and hardware watchpoints also need root or CAP_PERFMON "
				 "(kernel.perf_event_paranoid = %s), and following the command needs CAP_SYS_PTRACE",
				 par);
		}
		return err;
	}
	S->sched = gs_sched_new(S->o->sched_choice, S->tracefs, S->ev, (uint32_t)(S->o->mmap_pages * 4096u / 4),
				(size_t)S->o->mmap_pages * 4096u * (size_t)S->ncpu, why, whylen);
	if (!S->sched)
		return -EPERM;
	err = gs_uprobe_cleanup_stale(S->tracefs);
	if (err > 0)
		gs_info("removed %d uprobe(s) left by an earlier gilscope run that was killed", err);
	return 0;
}

/* gilscope's own peak RSS: VmHWM of its memory map. (getrusage's ru_maxrss is not: Linux keeps
 * it across execve, so it starts at the RSS of whatever forked gilscope, e.g. a big Python.) */
static long peak_rss_kb(long fallback)
{
	uint64_t v;
	return gs_proc_status_u64(0, "VmHWM", 10, &v) == 0 && v <= LONG_MAX ? (long)v : fallback;
}

static void recorder_meta(struct gs_session *S)
{
	struct rusage ru;
	char buf[32];
	uint64_t cpu;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	cpu = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	      ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cpu);
	gs_emit_meta(&S->emit, 0, "recorder.cpu_ns", buf);
	snprintf(buf, sizeof(buf), "%ld", peak_rss_kb(ru.ru_maxrss));
	gs_emit_meta(&S->emit, 0, "recorder.max_rss_kb", buf);
}

/* Processes in another PID namespace: how many GIL events were translated to host thread ids,
 * and how many could not be (dropped, never given to another thread). Said only then. */
static void tidmap_meta(struct gs_session *S)
{
	static const char *const keys[] = { "tids.translated", "tids.unattributed" };
	uint64_t v[2] = { gs_tidmap_translated(S->tidmap), gs_tidmap_unattributed(S->tidmap) };
	if (!gs_tidmap_active(S->tidmap))
		return;
	for (int i = 0; i < 2; i++) {
		struct gs_rec r = { .type = GS_REC_META, .arg = GS_META_U64, .time = gs_now_ns() };
		char buf[64];
		size_t n = gs_meta_u64_payload(buf, sizeof(buf), keys[i], v[i]);
		if (n)
			gs_session_write(S, &r, buf, n);
	}
	if (v[1])
		gs_warn("%llu GIL events came from threads of another PID namespace that gilscope could not tell "
			"apart or find: not recorded (tids.unattributed)",
			(unsigned long long)v[1]);
}

/* Stops the events, writes what is left and the closing records. */
static void finish(struct gs_session *S)
{
	struct gs_rec r = { 0 };
	gs_evlist_disable(S->ev);
	gs_stacks_finish(S->stacks);
	recorder_meta(S);
	gs_session_drain(S, 1);
	for (size_t i = 0; i <= S->nmore; i++) {
		const struct gs_inline *il = i == 0 ? &S->probes.il : &S->more[i - 1]->il;
		if (il->map && gs_inline_lost(il)) {
			r.type = GS_REC_LOST;
			r.time = gs_now_ns();
			r.arg = -1;
			r.arg64 = gs_inline_lost(il);
			S->lost += r.arg64;
			gs_session_write(S, &r, NULL, 0);
			memset(&r, 0, sizeof(r));
		}
	}
	tidmap_meta(S);
	gs_stacks_free(S->stacks); /* before the probes: it reads their layouts */
	S->stacks = NULL;
	gs_inline_close(&S->probes.il);
	gs_session_free_more(S);
	if (S->exited && !S->attach) {
		r.type = GS_REC_PROC_EXIT;
		r.pid = (uint32_t)S->target;
		r.time = gs_now_ns();
		r.arg = S->status;
		gs_session_write(S, &r, NULL, 0);
	}
	memset(&r, 0, sizeof(r));
	r.type = GS_REC_END;
	r.time = gs_now_ns();
	r.arg64 = S->lost;
	gs_session_write(S, &r, NULL, 0);
	gs_session_flush(S);
}

/* Starts every sink; a sink that cannot start stops the recording before anything ran. */
static int start_sinks(struct gs_session *S, uint64_t start_ns)
{
	char why[2048];
	for (int i = 0; i < S->o->nsinks; i++) {
		struct gs_sink *k = S->o->sinks[i];
		if (k->start(k->ctx, start_ns, why, sizeof(why)) < 0) {
			gs_err("%s", why);
			for (int j = 0; j < i; j++)
				S->o->sinks[j]->close(S->o->sinks[j]->ctx);
			return -1;
		}
	}
	S->started = 1;
	return 0;
}

static int attaching(const struct gs_record_opts *o) { return o->pid > 0 || o->npids > 0 || o->discover; }

static void session_init(struct gs_session *S, const struct gs_record_opts *o)
{
	struct rlimit rl;
	memset(S, 0, sizeof(*S));
	S->o = o;
	S->ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (S->ncpu < 1)
		S->ncpu = 1;
	S->ev = gs_evlist_new(S->ncpu, o->mmap_pages, "the scheduler and GIL events",
			      "lower --mmap-pages or raise kernel.perf_event_mlock_kb");
	S->merge = gs_merge_new(S->ncpu + 3); /* per CPU, the recorder's own, the inline ring, a BPF source */
	S->emit.merge = S->merge;
	S->emit.queue = S->ncpu;
	S->inline_queue = S->ncpu + 1;
	S->sched_queue = S->ncpu + 2;
	S->ring_last = gs_calloc((size_t)S->ncpu, sizeof(uint64_t));
	S->ready_fd = -1;
	S->tidmap = gs_tidmap_new();
	gs_pyprobes_init(&S->probes, S->tracefs, o->gil_watchpoint, !o->no_inline);
	S->images = gs_pyimage_cache_new();
	S->attach = attaching(o);
	S->pypids = o->python_only && !S->attach ? gs_pidset_new() : NULL;
	S->probes.cache = S->images;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void session_free(struct gs_session *S)
{
	if (S->probes.uprobe_defined) {
		/* uprobes in use cannot be removed: an open event, or one that owns a mapped ring (with
		 * the BPF scheduler source, a uprobe is the first event on each CPU) */
		gs_evlist_free(S->ev);
		S->ev = NULL;
		gs_pyprobes_remove(&S->probes);
	}
	if (S->started)
		for (int i = 0; i < S->o->nsinks; i++)
			S->o->sinks[i]->close(S->o->sinks[i]->ctx);
	if (S->ready_fd >= 0)
		close(S->ready_fd);
	gs_stacks_free(S->stacks);
	gs_counters_free(S->counters);
	gs_sched_free(S->sched);
	gs_evlist_free(S->ev);
	gs_merge_free(S->merge);
	free(S->ring_last);
	gs_tidmap_free(S->tidmap);
	gs_session_free_more(S);
	gs_proctree_free(S->tree);
	gs_pyimage_cache_free(S->images);
	gs_pidset_free(S->pypids);
	gs_attset_clear(&S->att);
}

/* May gilscope attach to the processes given? Each refusal said (a single process: the one
 * sentence) and kept, so that it is not tried again; -1 when every one is refused (nothing
 * done to any), 0 otherwise (and with the discover hook, even without a process). */
static int check_pids(struct gs_session *S)
{
	const struct gs_record_opts *o = S->o;
	const pid_t *pids = o->npids > 0 ? o->pids : &o->pid;
	int n = o->npids > 0 ? o->npids : o->pid > 0, ok = 0;
	char why[2048];
	for (int i = 0; i < n; i++) {
		if (gs_attach_check(pids[i], why, sizeof(why)) == 0) {
			ok++;
			continue;
		}
		if (n == 1)
			gs_err("%s", why);
		else
			gs_warn("%s", why);
		gs_attset_add(&S->att, pids[i], GS_ATT_REFUSED);
	}
	if (ok || o->discover)
		return 0;
	if (n > 1)
		gs_err("none of the %d processes given with -p can be attached; nothing was done to them", n);
	return -1;
}

int gs_record(const struct gs_record_opts *o, struct gs_record_result *res)
{
	struct gs_session S;
	char why[2048] = "";
	int sfd = -1, ret = 1, ran;
	sigset_t oldmask;

	memset(res, 0, sizeof(*res));
	/* the guardian that will trace the command is forked first, while gilscope holds nothing
	 * (no perf ring, no output file) it should not share */
	if (!attaching(o) && gs_tracer_start(why, sizeof(why)) < 0) {
		gs_err("%s; the command was not started", why);
		return 1;
	}
	session_init(&S, o);
	if (preflight(&S, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		if (!S.attach)
			gs_err("the command was not started");
		goto out;
	}
	if (S.attach && check_pids(&S) < 0)
		goto out;
	if (start_sinks(&S, gs_now_ns()) < 0) {
		if (!S.attach)
			gs_err("the command was not started");
		goto out;
	}
	gs_emit_meta(&S.emit, 0, "gilscope_version", GS_VERSION);
	gs_emit_meta(&S.emit, 0, "clock", "CLOCK_MONOTONIC");
	gs_emit_meta(&S.emit, 0, "sched.source", S.sched->name);
	S.counters = gs_counters_new(o->counters, o->ncounters, S.ev, &S.emit);
	sfd = gs_session_signalfd(&oldmask);
	ran = S.attach ? gs_session_attach(&S, sfd) : gs_session_launch(&S, sfd, &oldmask);
	if (ran < 0)
		goto out;
	finish(&S);
	ret = 0;
	if (!S.attach && WIFEXITED(S.status))
		ret = WEXITSTATUS(S.status);
	else if (!S.attach && WIFSIGNALED(S.status))
		ret = 128 + WTERMSIG(S.status);
	if (ret == 0 || (S.exited && ret != 127)) {
		res->recorded = 1;
		res->have_python = S.have_python;
		res->corrupt = S.corrupt;
		res->throttled = S.throttled;
	}
out:
	gs_tracer_stop();
	session_free(&S);
	if (sfd >= 0)
		close(sfd);
	return ret;
}
