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
#include "record/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Opens every stopped thread's events. 0 or -errno with why. */
static int follow_threads(struct gs_session *S, const struct gs_threads *s, char *why, size_t whylen)
{
	int err = 0;
	for (size_t i = 0; i < s->n && err >= 0; i++) {
		err = gs_sched_follow(S->sched, s->t[i].tid, why, whylen);
		gs_counters_follow(S->counters, s->t[i].tid); /* best effort: said on stderr */
		if (err >= 0 && S->have_python)
			err = gs_pyprobes_open(&S->probes, S->ev, s->t[i].tid, why, whylen);
	}
	gs_evlist_index(S->ev);
	return err;
}

/* A process a gone gilscope left patched (at tramp): its code back, its own probes to come. */
static void take_over(struct gs_session *S, struct gs_threads *ts, uint64_t tramp, pid_t owner)
{
	char why[1024];
	if (!S->probes.py.pid) {
		gs_warn("process %d carries the inline GIL probes of gilscope process %d, which is gone, and its "
			"CPython "
			"was not found: they stay (harmless: their events are dropped)",
			(int)ts->pid, (int)owner);
		return;
	}
	if (gs_pyprobes_unpatch(&S->probes, ts, tramp, why, sizeof(why)) < 0) {
		gs_warn("%s", why);
		return;
	}
	gs_info("process %d carried the inline GIL probes of gilscope process %d, which is gone: they were removed",
		(int)ts->pid, (int)owner);
}

/* With every thread held: the probes, the threads' events, the GIL holder, the first stacks. */
static int attach_held(struct gs_session *S, struct gs_threads *ts, int found, char *why, size_t whylen)
{
	const struct gs_record_opts *o = S->o;
	uint64_t tramp;
	pid_t owner;
	int alive, scrub;
	long holder;

	/* first the stub a gilscope killed in an injected call left: every injection uses its place */
	scrub = gs_inject_scrub_scratch(ts, why, whylen);
	if (scrub < 0 && scrub != -ENOENT) {
		gs_warn("%s: no system call is injected into process %d (uprobes)", why, (int)o->pid);
		S->probes.use_inline = 0;
	} else {
		if (gs_inject_find_probes(o->pid, &tramp, &owner, &alive) == 1)
			take_over(S, ts, tramp, owner);
		if (S->probes.py.pid && gs_pyprobes_scrub(&S->probes, ts, why, whylen) < 0)
			gs_warn("%s", why);
	}
	gs_test_point("threads held");
	if (found && gs_pyprobes_attach(&S->probes, ts, S->ev, why, whylen) < 0) {
		gs_warn("%s", why);
		gs_warn("recording thread states only (no GIL events)");
		gs_emit_meta(&S->emit, (uint32_t)o->pid, "python.error", why);
		found = 0;
	}
	S->have_python = found;
	if (follow_threads(S, ts, why, whylen) < 0)
		return -1;
	holder = S->have_python ? gs_python_gil_holder(&S->probes.py) : 0;
	if (holder > 0 && gs_tidmap_active(S->tidmap)) /* CPython keeps the id of the thread's own namespace */
		holder = gs_tidmap_lookup(S->tidmap, (uint32_t)holder, gs_now_ns());
	if (S->have_python) {
		struct gs_stacks_opts so = {
			.sample_hz = o->sample_hz,
			.native = o->native,
			.native_stack = o->native_stack,
			.ncpu = S->ncpu,
			.tp_switch = S->sched->tp_switch,
			.tidmap = S->tidmap,
			.event_stacks = gs_counters_have_stacks(S->counters),
		};
		gs_pyprobes_meta(&S->probes, &S->emit);
		S->stacks = gs_stacks_start(&S->probes.py, &so, &S->emit);
		gs_stacks_sample(S->stacks); /* every thread's stack at the start, while all are stopped */
	}
	thread_records(S, o->pid, ts, holder);
	return 0;
}

int gs_session_attach(struct gs_session *S, int sfd)
{
	const struct gs_record_opts *o = S->o;
	struct gs_threads ts = { 0 };
	char why[2048];
	int pidfd, found = 1;

	S->target = o->pid;
	command_meta(S, o->pid);
	gs_tidmap_add_process(S->tidmap, o->pid);
	if (o->no_gil) {
		gs_emit_meta(&S->emit, (uint32_t)o->pid, "python.error", "GIL detection turned off (--no-gil-detect)");
		found = 0;
	} else if (gs_pyprobes_find(&S->probes, o->pid, why, sizeof(why)) < 0) {
		gs_warn("%s", why);
		gs_warn("recording thread states only (no GIL events)");
		gs_emit_meta(&S->emit, (uint32_t)o->pid, "python.error", why);
		found = 0;
	}
	if (gs_threads_seize(&ts, o->pid, why, sizeof(why)) < 0 || attach_held(S, &ts, found, why, sizeof(why)) < 0) {
		gs_threads_release(&ts);
		gs_pyprobes_detach(&S->probes, 0);
		gs_err("%s", why);
		return -1;
	}
	gs_threads_release(&ts);
	gs_test_point("threads let go");
	pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	gs_info("recording process %d%s; Ctrl-C to stop", (int)o->pid,
		o->duration > 0 ? " for the given duration" : "");
	gs_session_loop(S, sfd, pidfd, -1);
	gs_pyprobes_detach(&S->probes, S->exited); /* the process as it was: its code, no trampoline, no ring */
	if (pidfd >= 0)
		close(pidfd);
	return 0;
}
