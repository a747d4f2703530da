/* attach.c - recording a process that runs already (see session.h).
 *
 * First, without touching the process, whether gilscope may attach at all (the kernel's ptrace
 * check, made by opening /proc/PID/mem; another gilscope's inline probes, still owned): a refusal
 * leaves nothing behind, no recording file, no uprobe, no stopped thread. Then every thread is
 * held (probe/inject.h) while probes left by a gone gilscope are removed (and whatever one killed
 * in the middle of attaching or detaching left: gs_pyprobes_scrub), the GIL probes are set
 * up (inline, through injected system calls; uprobes with --uprobes or when inline cannot be),
 * the scheduler and probe events opened, the GIL holder and every thread's stack and state read,
 * and all are let go: a few milliseconds. At the end the process (and every child forked meanwhile,
 * which inherited the probes) gets its code back and loses the trampolines and the ring.
 */
#define _GNU_SOURCE
#include "base/escape.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/inject.h"
#include "probe/tracer.h"
#include "record/attset.h"
#include "record/exekind.h"
#include "record/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A process attached: said (-p, --all-python), or, a launch's descendant, with -v only (the launch
 * path's hand-overs are as quiet). */
static void say_attached(const struct gs_session *S, pid_t pid, const char *version, const char *how)
{
	if (S->attach)
		gs_info("process %d (%s): attached%s", (int)pid, version, how);
	else
		gs_debug("process %d (%s): attached%s", (int)pid, version, how);
}

/* The kernel.yama.ptrace_scope setting, or "" when Yama is not there. */
static void yama_note(char *buf, size_t len)
{
	char ys[16];
	long k = gs_read_file("/proc/sys/kernel/yama/ptrace_scope", ys, sizeof(ys));
	buf[0] = '\0';
	if (k <= 0)
		return;
	if (ys[k - 1] == '\n')
		ys[k - 1] = '\0';
	snprintf(buf, len, " (kernel.yama.ptrace_scope = %s)", ys);
}

/* The process that traces pid (a debugger, strace), 0 when none. */
static pid_t tracer_of(pid_t pid)
{
	uint64_t v;
	return gs_proc_status_u64(pid, "TracerPid", 10, &v) == 0 && v > 0 && v <= 0x7fffffff ? (pid_t)v : 0;
}

static void comm_of(pid_t pid, char *comm, size_t len)
{
	char path[64];
	long n;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = gs_read_file(path, comm, len);
	if (n > 0 && comm[n - 1] == '\n')
		comm[n - 1] = '\0';
	if (n <= 0)
		comm[0] = '\0';
}

/* pid is traced by a launching gilscope's guardian (probe/tracer.h: a process of the tree it
 * records): -EBUSY with why while that gilscope records; when it is gone, waits (2 s at most) for
 * the guardian to let go, then 0. */
static int check_guardian(pid_t pid, pid_t guard, char *why, size_t whylen)
{
	char comm[64];
	uint64_t owner = 0;
	gs_proc_status_u64(guard, "PPid", 10, &owner);
	comm_of((pid_t)owner, comm, sizeof(comm));
	if (owner > 1 && strcmp(comm, "gilscope") == 0) {
		snprintf(
			why, whylen,
			"process %d is in the process tree of gilscope process %d, which is still recording: stop that "
			"one and try again; nothing was done to the process",
			(int)pid, (int)owner);
		return -EBUSY;
	}
	for (int i = 0; i < 200 && tracer_of(pid) == guard; i++)
		usleep(10000);
	return 0;
}

/* A process can have one tracer: say which one holds it. -EBUSY with why, or 0. */
static int check_not_traced(pid_t pid, char *why, size_t whylen)
{
	char comm[64] = "", cmd[256];
	pid_t t = tracer_of(pid);
	if (!t)
		return 0;
	comm_of(t, comm, sizeof(comm));
	if (strcmp(comm, "gilscope-guard") == 0 && check_guardian(pid, t, why, whylen) < 0)
		return -EBUSY;
	if (!(t = tracer_of(pid)))
		return 0;
	comm_of(t, comm, sizeof(comm));
	gs_esc_term_buf(cmd, sizeof(cmd), comm);
	snprintf(why, whylen,
		 "process %d is already traced by process %d (%s): a process can have one tracer; stop that one "
		 "(or detach it) and try again; nothing was done to the process",
		 (int)pid, (int)t, cmd[0] ? cmd : "?");
	return -EBUSY;
}

/* A process carries the inline probes of one gilscope at a time: one still running keeps it. */
static int check_not_probed(pid_t pid, char *why, size_t whylen)
{
	uint64_t tramp;
	pid_t owner;
	int alive;
	if (gs_inject_find_probes(pid, &tramp, &owner, &alive) != 1 || !alive)
		return 0;
	snprintf(why, whylen,
		 "process %d carries the inline GIL probes of gilscope process %d, which is still recording: stop that "
		 "one and try again; nothing was done to the process",
		 (int)pid, (int)owner);
	return -EBUSY;
}

/* May gilscope attach to pid? 0, or -errno with why. */
int gs_attach_check(pid_t pid, char *why, size_t whylen)
{
	char path[64], yama[64];
	uint64_t caps;
	struct stat st;
	int fd, e, has_ptrace = 0;

	if ((e = check_not_traced(pid, why, whylen)) < 0)
		return e;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return check_not_probed(pid, why, whylen);
	}
	e = errno;
	if (e == ENOENT || e == ESRCH) {
		snprintf(why, whylen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	if (e != EACCES && e != EPERM) {
		snprintf(why, whylen, "cannot attach to process %d: %s", (int)pid, strerror(e));
		return -e;
	}
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		st.st_uid = (uid_t)-1;
	if (gs_proc_status_u64(0, "CapEff", 16, &caps) == 0)
		has_ptrace = (caps >> 19) & 1; /* CAP_SYS_PTRACE */
	yama_note(yama, sizeof(yama));
	snprintf(
		why, whylen,
		"not permitted to attach to process %d (it runs as user %d; gilscope as user %d, %s CAP_SYS_PTRACE)%s: "
		"run gilscope as root with CAP_SYS_PTRACE; nothing was done to the process",
		(int)pid, (int)st.st_uid, (int)geteuid(), has_ptrace ? "with" : "without", yama);
	return -EPERM;
}

static void command_meta(struct gs_session *S, pid_t pid)
{
	char cmd[1024], path[64], buf[32];
	long n;
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	gs_emit_meta(&S->emit, 0, "mode", "attach");
	gs_emit_meta(&S->emit, 0, "target_pid", buf);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = gs_read_file(path, cmd, sizeof(cmd));
	for (long i = 0; i + 1 < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	if (n <= 0)
		snprintf(cmd, sizeof(cmd), "pid %d", (int)pid);
	gs_emit_meta(&S->emit, 0, "command", cmd);
}

/* Every stopped thread's state at the start, who holds the GIL, and its name. */
static void thread_records(struct gs_session *S, pid_t pid, const struct gs_threads *s, long holder)
{
	uint64_t now = gs_now_ns();
	for (size_t i = 0; i < s->n; i++) {
		struct gs_rec r = { .type = GS_REC_THREAD,
				    .pid = (uint32_t)pid,
				    .tid = (uint32_t)s->t[i].tid,
				    .time = now,
				    .arg = s->t[i].state };
		char comm[16] = "";
		if (holder > 0 && holder == s->t[i].tid)
			r.arg64 |= GS_THREAD_HOLDS_GIL;
		if (s->t[i].tid == pid)
			r.arg64 |= GS_THREAD_MAIN;
		gs_emit_rec(&S->emit, &r, NULL, 0);
		gs_task_comm(pid, s->t[i].tid, comm, sizeof(comm));
		r.type = GS_REC_COMM;
		r.arg = 0;
		r.arg64 = 0;
		gs_emit_rec(&S->emit, &r, comm, strnlen(comm, 15) + 1);
	}
}

/* Opens every stopped thread's events: the scheduler's (when follow: not for a process forked
 * from a followed one, whose tasks the source follows already), the GIL probes' (p: not NULL). 0
 * or -errno with why. */
static int follow_threads(struct gs_session *S, struct gs_pyprobes *p, const struct gs_threads *s, int follow,
			  char *why, size_t whylen)
{
	int err = 0;
	for (size_t i = 0; i < s->n && err >= 0; i++) {
		if (follow) {
			err = gs_sched_follow(S->sched, s->t[i].tid, why, whylen);
			gs_counters_follow(S->counters, s->t[i].tid); /* best effort: said on stderr */
		}
		if (err >= 0 && p)
			err = gs_pyprobes_open(p, S->ev, s->t[i].tid, why, whylen);
	}
	gs_evlist_index(S->ev);
	return err;
}

/* A process a gone gilscope left patched (at tramp): its code back, its own probes to come. */
static void take_over(struct gs_pyprobes *p, struct gs_threads *ts, uint64_t tramp, pid_t owner)
{
	char why[1024];
	if (!p->py.pid) {
		gs_warn("process %d carries the inline GIL probes of gilscope process %d, which is gone, and its "
			"CPython "
			"was not found: they stay (harmless: their events are dropped)",
			(int)ts->pid, (int)owner);
		return;
	}
	if (gs_pyprobes_unpatch(p, ts, tramp, why, sizeof(why)) < 0) {
		gs_warn("%s", why);
		return;
	}
	gs_info("process %d carried the inline GIL probes of gilscope process %d, which is gone: they were removed",
		(int)ts->pid, (int)owner);
}

/* p's stacks and thread names sampled, and every thread's stack read at the start, while all
 * are stopped. */
static void start_stacks(struct gs_session *S, const struct gs_pyprobes *p)
{
	gs_session_sample_python(S, &p->py);
	gs_stacks_sample(S->stacks);
}

/* How attach_proc attaches a process, and what it said. */
struct attach_mode {
	int follow;   /* its threads are followed (not only new ones) */
	int loud;     /* a process the user named: said when not CPython */
	int trial;    /* a young process looked at: a refusal of its probes is not said (tried again) */
	int *at_exec; /* stopped right after its exec (NULL: not); see attach_proc */
	int said;     /* out: a warning said why it got no GIL probes */
};

/* With every thread of ts->pid held: what gilscope killed left, the probes (found: p located
 * CPython), the threads' events, the GIL holder, its first stacks. 1 with GIL probes, 0 thread
 * states only, -1 when the threads' events cannot be had (why). */
static int attach_held(struct gs_session *S, struct gs_pyprobes *p, struct gs_threads *ts, int found,
		       struct attach_mode *m, char *why, size_t whylen)
{
	pid_t pid = ts->pid, owner;
	uint64_t tramp;
	int alive, scrub;
	long holder;

	/* first the stub a gilscope killed in an injected call left: every injection uses its place */
	scrub = gs_inject_scrub_scratch(ts, why, whylen);
	if (scrub < 0 && scrub != -ENOENT) {
		gs_warn("%s: no system call is injected into process %d (uprobes)", why, (int)pid);
		p->use_inline = 0;
	} else {
		if (gs_inject_find_probes(pid, &tramp, &owner, &alive) == 1)
			take_over(p, ts, tramp, owner);
		if (p->py.pid && gs_pyprobes_scrub(p, ts, why, whylen) < 0)
			gs_warn("%s", why);
	}
	gs_test_point("threads held");
	if (found && gs_pyprobes_attach(p, ts, S->ev, why, whylen) < 0) {
		if (!m->trial) {
			gs_warn("process %d: %s; recording its thread states only (no GIL events)", (int)pid, why);
			m->said = 1;
			gs_emit_meta(&S->emit, (uint32_t)pid, "python.error", why);
		}
		found = 0;
	}
	S->have_python |= found;
	if (found)
		gs_pidset_add(S->pypids, (uint32_t)pid); /* --python-only, launched: its tree's CPythons */
	if (follow_threads(S, found ? p : NULL, ts, m->follow, why, whylen) < 0)
		return -1;
	holder = found ? gs_python_gil_holder(&p->py) : 0;
	if (holder > 0 && gs_tidmap_active(S->tidmap)) /* CPython keeps the id of the thread's own namespace */
		holder = gs_tidmap_lookup(S->tidmap, (uint32_t)holder, gs_now_ns());
	if (found) {
		gs_pyprobes_meta(p, &S->emit);
		start_stacks(S, p);
	}
	if (m->follow)
		thread_records(S, pid, ts, holder);
	return found;
}

/* The probes for the next CPython: the session's own for the first (uprobes allowed, the stack
 * sampler), else probes of its own, inline only (the uprobes' names are the first one's). */
static struct gs_pyprobes *next_probes(struct gs_session *S)
{
	struct gs_pyprobes *p;
	if (!S->probes_used) {
		S->probes_used = 1;
		return &S->probes;
	}
	p = gs_calloc(1, sizeof(*p));
	gs_pyprobes_init(p, S->tracefs, 0, !S->o->no_inline && !S->o->gil_watchpoint);
	p->inline_only = 1;
	p->cache = S->images;
	return p;
}

/* p was not used (no CPython found, or its probes undone): the next CPython's again, or freed. */
static void drop_probes(struct gs_session *S, struct gs_pyprobes *p, int found)
{
	if (p != &S->probes) {
		gs_inline_close(&p->il);
		free(p);
	} else if (!found && !S->probes.uprobe_defined) {
		gs_inline_close(&S->probes.il);
		gs_pyprobes_init(&S->probes, S->tracefs, S->o->gil_watchpoint, !S->o->no_inline);
		S->probes.cache = S->images;
		S->probes_used = 0;
	}
}

/* Looks for CPython in e's process and attaches (see gs_session_attach_one), the way m says;
 * m->at_exec: the process is run to its entry point first (its libraries mapped), a stop signal
 * of someone else met on the way said there (gs_threads_run_to_entry). 1, 0, or < 0 with why
 * (-EALREADY: not at its exec). */
static int attach_proc(struct gs_session *S, struct gs_att *e, struct attach_mode *m, char *why, size_t whylen)
{
	struct gs_threads ts = { 0 };
	struct gs_pyprobes *p = next_probes(S);
	int found = 1, r = 0;
	S->find_err = 0;
	if (m->at_exec && (r = gs_threads_seize(&ts, e->pid, why, whylen)) == 0)
		r = gs_threads_run_to_entry(&ts, m->at_exec, why, whylen);
	if (r < 0) {
		found = 0;
	} else if (S->o->no_gil) {
		gs_emit_meta(&S->emit, (uint32_t)e->pid, "python.error", "GIL detection turned off (--no-gil-detect)");
		found = 0;
	} else if ((S->find_err = gs_pyprobes_find(p, e->pid, why, whylen)) < 0) {
		if (m->loud) {
			gs_warn("%s", why);
			gs_warn("recording thread states only (no GIL events) of process %d", (int)e->pid);
			gs_emit_meta(&S->emit, (uint32_t)e->pid, "python.error", why);
		}
		found = 0;
	}
	if (r == 0 && !found && !m->follow) {
		gs_threads_release(&ts);
		drop_probes(S, p, 0);
		return 0; /* its threads followed already: nothing to hold it for */
	}
	if (r == 0 && !m->at_exec)
		r = gs_threads_seize(&ts, e->pid, why, whylen);
	if (r == 0)
		r = attach_held(S, p, &ts, found, m, why, whylen);
	gs_threads_release(&ts);
	gs_test_point("threads let go");
	if (r < 0 && found)
		gs_pyprobes_detach(p, 0);
	if (r == 1 && p != &S->probes) {
		S->more = gs_realloc_array(S->more, S->nmore + 1, sizeof(*S->more));
		S->more[S->nmore++] = p;
	}
	if (r == 1) {
		e->kind = GS_ATT_PROBES;
		e->p = p;
	} else {
		drop_probes(S, p, found && r == 0);
	}
	return r;
}

/* Still running (not gone, not a zombie): a process that ended meanwhile is not worth a warning. */
static int running(pid_t pid)
{
	char st = gs_task_state(pid, pid);
	return st && st != 'Z' && st != 'X';
}

/* pid's entry in the set: thread states to begin with (its threads' ids mapped), or, when gilscope
 * may not attach (why), a refused one and NULL. */
static struct gs_att *new_entry(struct gs_session *S, pid_t pid, char *why, size_t whylen)
{
	if (gs_attach_check(pid, why, whylen) < 0) {
		gs_attset_add(&S->att, pid, GS_ATT_REFUSED);
		return NULL;
	}
	gs_tidmap_add_process(S->tidmap, pid);
	return gs_attset_add(&S->att, pid, GS_ATT_STATES);
}

int gs_session_attach_one(struct gs_session *S, pid_t pid, int how)
{
	char why[2048];
	struct gs_att *e = gs_attset_find(&S->att, pid);
	uint64_t tramp;
	pid_t owner;
	int alive, r, loud = how != GS_ATTACH_NEW && how != GS_ATTACH_RUNNING;

	if (e)
		return e->kind == GS_ATT_REFUSED ? -1 : e->kind == GS_ATT_PROBES;
	if (pid == getpid())
		return -1;
	if (S->bpf_tree && tracer_of(pid) == gs_tracer_pid()) {
		/* forked by a traced thread of the launched tree: traced from its fork, its CPython is
		 * set up at its exec's ptrace stop (proctree.c), which its parent never sees */
		gs_attset_add(&S->att, pid, GS_ATT_GUARDED);
		return 0;
	}
	if (gs_inject_find_probes(pid, &tramp, &owner, &alive) == 1 && owner == getpid()) {
		/* forked from a process gilscope probed: its probes, ring and scheduler events are inherited */
		gs_attset_add(&S->att, pid, GS_ATT_INHERITED);
		gs_tidmap_add_process(S->tidmap, pid);
		gs_session_emit_argv(S, pid);
		return 0;
	}
	if (!(e = new_entry(S, pid, why, sizeof(why)))) {
		if (loud || running(pid))
			gs_warn("%s", why);
		return -1;
	}
	gs_session_emit_argv(S, pid);
	if (how == GS_ATTACH_NEW && S->exec_stops)
		return 0; /* not forked from a probed one: its CPython, if any, comes with an exec, stopped (at_exec) */
	r = attach_proc(S, e, &(struct attach_mode){ .follow = how != GS_ATTACH_NEW, .loud = loud }, why, sizeof(why));
	e = gs_attset_find(&S->att, pid); /* the set may have grown */
	if (r < 0) {
		if (how == GS_ATTACH_GIVEN && S->o->npids <= 1)
			gs_err("%s", why); /* the one process given: the refusal's sentence */
		else if (loud || running(pid))
			gs_warn("%s; process %d is not recorded", why, (int)pid);
		if (e->pidfd >= 0)
			close(e->pidfd);
		e->pidfd = -1;
		e->kind = GS_ATT_REFUSED;
		e->ended = 1;
		return -1;
	}
	if (r == 0 && !loud)
		e->retries = how == GS_ATTACH_NEW ? 5 : 0; /* a young process may not have mapped libpython yet */
	if (r == 1 && !loud)
		say_attached(S, pid, e->p->py.img.version,
			     how == GS_ATTACH_NEW ? ", started while recording" : ", a descendant");
	return r;
}

/* A process with thread states only that exec'd since (or is young): CPython now? */
static void look_again(struct gs_session *S, size_t i)
{
	char why[2048];
	struct gs_att *e = &S->att.a[i];
	struct attach_mode m = { 0 };
	uint64_t tramp;
	pid_t owner;
	int alive, r, last;
	if (e->ended || S->o->no_gil)
		return;
	if (e->kind == GS_ATT_INHERITED) {
		if (gs_inject_find_probes(e->pid, &tramp, &owner, &alive) == 1 && owner == getpid())
			return;
		e->kind = GS_ATT_STATES; /* its exec dropped the probes it inherited */
		e->retries = 5;
		gs_attset_exe_changed(e);
	} else if (e->kind != GS_ATT_STATES) {
		return;
	}
	if (gs_attset_exe_changed(e))
		e->retries = 5;
	if (!e->retries)
		return;
	if (!e->look_until_ns)
		e->retries--; /* exec'd without a stop: looked at until look_until_ns, however often */
	e->looked_ns = gs_now_ns();
	last = e->look_until_ns && e->looked_ns >= e->look_until_ns;
	m.trial = e->look_until_ns && !last; /* the last look says why it failed */
	r = attach_proc(S, e, &m, why, sizeof(why));
	e = &S->att.a[i];
	if (r == 1) {
		e->look_until_ns = 0;
		say_attached(S, e->pid, e->p->py.img.version, " after its exec");
	} else if (e->look_until_ns && (last || S->find_err == -ENOTSUP)) {
		/* exec'd without a stop, and its CPython refused, or still not ready to be attached */
		e->look_until_ns = 0;
		e->retries = 0;
		if (running(e->pid) && !m.said) {
			gs_warn("%s; process %d is recorded without GIL events%s",
				why[0] ? why : "no CPython found in it", (int)e->pid,
				S->find_err == -ENOTSUP ? "" : " (looked at for 2 s after its exec)");
			gs_emit_meta(&S->emit, (uint32_t)e->pid, "python.error",
				     why[0] ? why : "no CPython found in it");
		}
	}
}

/* pid's children not in the set yet, attached (how: running at the start, or started later). */
static void attach_children(struct gs_session *S, pid_t pid, int how)
{
	pid_t kids[256];
	size_t n = gs_attset_children(pid, kids, GS_ARRAY_SIZE(kids));
	for (size_t k = 0; k < n; k++)
		if (!gs_attset_find(&S->att, kids[k]))
			gs_session_attach_one(S, kids[k], how);
}

/* The descendants of every process in the set not in it yet (how: running at the start, or
 * started later), and the processes that exec'd since they were looked at; a launch's tree's: the
 * command's children too (the command is the guardian's, not in the set). */
static void scan_descendants(struct gs_session *S, int how)
{
	if (S->bpf_tree && !S->exited)
		attach_children(S, S->target, how);
	for (size_t i = 0; i < S->att.n; i++) {
		if (S->att.a[i].ended)
			continue;
		attach_children(S, S->att.a[i].pid, how);
		look_again(S, i);
	}
}

/* New descendants are taken as they start: record -p's (unless --no-children), --exec-stop's. */
static int follows_new(const struct gs_session *S) { return S->o->descendants || S->bpf_tree; }

/* The discover hook's processes (recorder.h). */
static void discover(struct gs_session *S)
{
	pid_t found[64];
	size_t n = S->o->discover(S->o->discover_ctx, found, GS_ARRAY_SIZE(found));
	for (size_t i = 0; i < n && i < GS_ARRAY_SIZE(found); i++)
		if (found[i] > 0 && !gs_attset_find(&S->att, found[i]))
			gs_session_attach_one(S, found[i], GS_ATTACH_DISCOVERED);
}

void gs_session_exec_stopped(struct gs_session *S, pid_t pid, int running)
{
	if ((!S->attach && !S->bpf_tree) || S->nexecq == GS_ARRAY_SIZE(S->execq)) {
		if (!running)
			S->sched->exec_resume(S->sched, pid, 1); /* not held for long in any case: the scan finds it */
		return;
	}
	S->exec_running[S->nexecq] = (unsigned char)(running != 0);
	S->execq[S->nexecq++] = pid;
}

void gs_session_forked(struct gs_session *S, pid_t pid)
{
	if (follows_new(S) && S->nforkq < GS_ARRAY_SIZE(S->forkq))
		S->forkq[S->nforkq++] = pid; /* else the scan finds it */
}

/* A job not stopped at its exec (at_exec's unstopped) that ended before its CPython was attached. */
static void say_job_ended(pid_t pid)
{
	gs_warn("process %d, a job of a job-control shell (not stopped at its exec), ended before gilscope could "
		"attach it: recorded without GIL events of its own",
		(int)pid);
}

/* pid stopped right after its exec (the scheduler source's SIGSTOP): CPython is instrumented before
 * its first instruction runs, anything else noted as not CPython (never stopped at again); then
 * it goes on, whatever happened. unstopped: pid exec'd and was not stopped (its parent would have
 * seen it): attached as it runs, and looked at every 5 ms for 2 s (gs_session_attach_tick) while its
 * loader or its interpreter's start is not done. */
static void at_exec(struct gs_session *S, pid_t pid, int unstopped)
{
	char why[2048] = "";
	uint64_t dev = 0, ino = 0;
	struct gs_att *e = gs_attset_find(&S->att, pid);
	struct attach_mode m = { 0 };
	int py = S->o->no_gil ? 0 : gs_exekind_python(&S->exes, pid, &dev, &ino), r, stop_sig = 0;
	gs_test_point("a process stopped at its exec");
	if (py == 0 && ino && S->sched->exec_plain)
		S->sched->exec_plain(S->sched, dev, ino);
	if (e && e->kind == GS_ATT_PROBES) {
		/* its old image's probes went with it: kept (ended) for the children forked from it */
		e->ended = 1;
		e->ended_ns = gs_now_ns();
		if (e->pidfd >= 0)
			close(e->pidfd);
		e->pidfd = -1;
		e = NULL;
	}
	if (!e && !(e = new_entry(S, pid, why, sizeof(why)))) {
		if (unstopped && !running(pid))
			say_job_ended(pid);
		goto go_on;
	}
	if (e->kind == GS_ATT_REFUSED)
		goto go_on;
	e->kind = GS_ATT_STATES; /* an inherited copy of probes is gone with the old image */
	gs_session_emit_argv(S, pid);
	gs_attset_exe_changed(e);
	e->retries = 0;
	e->look_until_ns = 0; /* an earlier exec's look is over */
	m.trial = unstopped;
	m.at_exec = unstopped ? NULL : &stop_sig;
	r = py == 1 ? attach_proc(S, e, &m, why, sizeof(why)) : 0;
	e = gs_attset_find(&S->att, pid); /* the set may have grown */
	if (unstopped && py == 1 && r == 0 && S->find_err != -ENOTSUP) {
		/* its loader or its interpreter's start is not done: looked at again every few ms */
		e->retries = 1;
		e->looked_ns = gs_now_ns();
		e->look_until_ns = e->looked_ns + 2000000000ull;
	}
	if (r == -EALREADY) {
		/* continued by someone else before gilscope took it: attached as it runs, looked at
		 * again while young (its libraries may not be mapped yet) */
		m.trial = 0;
		m.at_exec = NULL; /* its warning, if any, counts as said (m.said) */
		r = attach_proc(S, e, &m, why, sizeof(why));
		e = gs_attset_find(&S->att, pid);
		e->retries = r == 1 ? 0 : 5;
	}
	if (r == 1)
		say_attached(S, pid, e->p->py.img.version, " at its exec");
	else if (py == 1 && (r < 0 || (r == 0 && !e->look_until_ns)) && running(pid) && !m.said)
		gs_warn("%s; process %d is recorded without GIL events", /* why: the reason CPython was refused */
			r < 0 || why[0] ? why : "no CPython found in it", (int)pid);
go_on:
	if (!unstopped)
		S->sched->exec_resume(S->sched, pid, !stop_sig); /* stopped by someone meanwhile: left stopped */
}

/* S->probes' copy aside, every CPython's probes whose process ended, whose ring every record was
 * read from (the sinks have everything up to a time after its end) and no process maps any more
 * (no child forked from it runs): its ring closed, its sampler and entry let go (gs_attset_prune
 * takes the entry). A long --all-python run keeps neither a ring nor a descriptor per process it
 * ever saw. At most 64 a call. */
static void release_ended(struct gs_session *S)
{
	struct gs_pyprobes *ps[64];
	size_t at[64], n = 0;
	int shared[64];
	for (size_t i = 0; i < S->att.n && n < GS_ARRAY_SIZE(ps); i++) {
		const struct gs_att *e = &S->att.a[i];
		if (e->ended && e->kind == GS_ATT_PROBES && e->p && e->p != &S->probes && e->ended_ns &&
		    S->written_to > e->ended_ns) {
			at[n] = i;
			ps[n++] = e->p;
		}
	}
	if (!n)
		return;
	gs_pyprobes_rings_shared(ps, n, shared);
	for (size_t k = 0; k < n; k++) {
		size_t m = 0;
		if (shared[k]) {
			gs_debug("process %d ended: its ring stays, a process forked from it maps it",
				 (int)ps[k]->py.pid);
			continue;
		}
		while (m < S->nmore && S->more[m] != ps[k])
			m++;
		if (m == S->nmore)
			continue; /* not ours to free */
		memmove(&S->more[m], &S->more[m + 1], (S->nmore - m - 1) * sizeof(*S->more));
		S->nmore--;
		gs_stacks_forget(S->stacks, &ps[k]->py);
		gs_inline_close(&ps[k]->il);
		free(ps[k]);
		S->att.a[at[k]].p = NULL;
		S->att.a[at[k]].kind = GS_ATT_STATES; /* nothing left to undo */
		gs_debug("process %d ended: its probes and ring let go", (int)S->att.a[at[k]].pid);
	}
}

void gs_session_attach_tick(struct gs_session *S)
{
	uint64_t now = gs_now_ns();
	for (size_t i = 0; i < S->nexecq; i++)
		at_exec(S, S->execq[i], S->exec_running[i]);
	S->nexecq = 0;
	for (size_t i = 0; i < S->att.n; i++) { /* exec'd without a stop, young: CPython ready yet? */
		struct gs_att *e = &S->att.a[i];
		if (!e->look_until_ns || now - e->looked_ns < 5000000ull)
			continue;
		if (e->ended) { /* its end was seen before its CPython could be attached */
			e->look_until_ns = 0;
			say_job_ended(e->pid);
			continue;
		}
		look_again(S, i); /* the last look, at look_until_ns, says why it failed */
	}
	for (size_t i = 0; i < S->nforkq; i++)
		if (!gs_attset_find(&S->att, S->forkq[i]))
			gs_session_attach_one(S, S->forkq[i], GS_ATTACH_NEW);
	S->nforkq = 0;
	if (follows_new(S) && now - S->scanned_ns >= (S->exec_stops ? 1000000000ull : 100000000ull)) {
		S->scanned_ns = now;
		gs_attset_prune(&S->att);
		scan_descendants(S, GS_ATTACH_NEW);
	}
	if (S->o->discover && now - S->discovered_ns >= 1000000000ull) {
		S->discovered_ns = now;
		release_ended(S);
		gs_attset_prune(&S->att);
		discover(S);
		if (S->o->descendants)
			scan_descendants(S, GS_ATTACH_RUNNING);
	}
}

void gs_session_exec_stops_end(struct gs_session *S)
{
	struct timespec d = { 0, 5000000 };
	if (!S->exec_stops)
		return;
	S->sched->stop_at_exec(S->sched, 0);
	S->exec_stops = 0;
	nanosleep(&d, NULL);    /* a program that read the flag before it changed has written its COMM */
	gs_session_drain(S, 0); /* the last ones stopped: let go */
	gs_session_attach_tick(S);
}

/* Every process back as it was: its code, no trampoline, no ring (its forked children too). */
static void detach_all(struct gs_session *S)
{
	for (size_t i = 0; i < S->att.n; i++) {
		struct gs_att *e = &S->att.a[i];
		if (e->kind == GS_ATT_PROBES)
			gs_pyprobes_detach(e->p, e->ended);
	}
}

int gs_session_attach(struct gs_session *S, int sfd)
{
	const struct gs_record_opts *o = S->o;
	const pid_t *pids = o->npids > 0 ? o->pids : &o->pid;
	int npids = o->npids > 0 ? o->npids : o->pid > 0, attached = 0, probed = 0;

	for (int i = 0; i < npids; i++) {
		int r = gs_session_attach_one(S, pids[i], GS_ATTACH_GIVEN);
		if (r >= 0 && (!attached++ || (r == 1 && !probed)))
			S->target = pids[i]; /* the first CPython with its probes, else the first process */
		probed |= r == 1;
	}
	if (attached)
		command_meta(S, S->target);
	if (!attached && !o->discover) {
		if (npids > 1)
			gs_err("none of the %d processes given with -p could be attached; nothing was done to them",
			       npids);
		detach_all(S);
		return -1;
	}
	if (!attached)
		gs_emit_meta(&S->emit, 0, "mode", "attach");
	if (o->descendants && S->sched->stop_at_exec && !o->no_exec_stop && S->sched->stop_at_exec(S->sched, 1) == 0)
		S->exec_stops = 1;
	if (o->descendants)
		scan_descendants(S, GS_ATTACH_RUNNING);
	if (attached == 1 && S->att.n == 1)
		gs_info("recording process %d%s; Ctrl-C to stop", (int)S->target,
			o->duration > 0 ? " for the given duration" : "");
	else
		gs_info("recording %zu processes%s; Ctrl-C to stop", gs_attset_live(&S->att),
			o->duration > 0 ? " for the given duration" : "");
	gs_session_loop(S, sfd, -1);
	gs_session_exec_stops_end(S);
	detach_all(S);
	return 0;
}
