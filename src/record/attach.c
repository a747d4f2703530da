/* attach.c - recording a process that runs already (see session.h).
 *
 * First, without touching the process, whether gilscope may attach at all (the kernel's ptrace
 * check, made by opening /proc/PID/mem): a refusal leaves nothing behind, no recording file, no
 * uprobe, no stopped thread. Then every thread is stopped with PTRACE_SEIZE + PTRACE_INTERRUPT
 * (again until no new thread appears) while its scheduler and probe events are opened, the GIL
 * holder and every thread's stack and state are read, and all are let go: a few milliseconds.
 * A running process is never patched: its GIL probes are uprobes.
 */
#define _GNU_SOURCE
#include "base/escape.h"
#include "base/procfs.h"
#include "base/util.h"
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

struct seized {
	pid_t *tids;
	char *state;
	size_t n, cap;
};

static int seized_has(const struct seized *s, pid_t t)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->tids[i] == t)
			return 1;
	return 0;
}

static void seized_add(struct seized *s, pid_t tid, char state)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->tids = gs_realloc_array(s->tids, s->cap, sizeof(pid_t));
		s->state = gs_realloc_array(s->state, s->cap, 1);
	}
	s->tids[s->n] = tid;
	s->state[s->n] = state;
	s->n++;
}

static void release_all(struct seized *s)
{
	for (size_t i = 0; i < s->n; i++)
		ptrace(PTRACE_DETACH, s->tids[i], NULL, NULL);
	free(s->tids);
	free(s->state);
	memset(s, 0, sizeof(*s));
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

/* A process can have one tracer: say which one holds it. -EBUSY with why, or 0. */
static int check_not_traced(pid_t pid, char *why, size_t whylen)
{
	char comm[64] = "", cmd[256], path[64];
	pid_t t = tracer_of(pid);
	long n;
	if (!t)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)t);
	n = gs_read_file(path, comm, sizeof(comm));
	if (n > 0 && comm[n - 1] == '\n')
		comm[n - 1] = '\0';
	gs_esc_term_buf(cmd, sizeof(cmd), comm);
	snprintf(why, whylen,
		 "process %d is already traced by process %d (%s): a process can have one tracer; stop that one "
		 "(or detach it) and try again; nothing was done to the process",
		 (int)pid, (int)t, cmd[0] ? cmd : "?");
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
		return 0;
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

/* Seizes and interrupts one thread. 0, 1 when it exited meanwhile, or -errno with why. */
static int stop_one(pid_t pid, pid_t tid, char *why, size_t whylen)
{
	int st, e;
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		e = errno;
		if (e == ESRCH)
			return 1;
		if (e == EPERM) {
			char yama[64];
			yama_note(yama, sizeof(yama));
			snprintf(why, whylen,
				 "not permitted to attach to process %d%s: run gilscope as root or with CAP_SYS_PTRACE",
				 (int)pid, yama);
		} else {
			snprintf(why, whylen, "cannot attach to thread %d: %s", (int)tid, strerror(e));
		}
		return -e;
	}
	ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	while (waitpid(tid, &st, __WALL) < 0 && errno == EINTR)
		;
	return 0;
}

/* Stops every thread of pid; loops until no new thread appears. */
static int stop_all(pid_t pid, struct seized *s, char *why, size_t whylen)
{
	for (int round = 0; round < 100; round++) {
		pid_t *tids;
		int n = gs_task_list(pid, &tids), added = 0;
		if (n < 0) {
			snprintf(why, whylen, "cannot list the threads of process %d: %s", (int)pid, strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			char state;
			int err;
			if (seized_has(s, tids[i]))
				continue;
			state = gs_task_state(pid, tids[i]);
			err = stop_one(pid, tids[i], why, whylen);
			if (err < 0) {
				free(tids);
				return err;
			}
			if (err == 0) {
				seized_add(s, tids[i], state);
				added++;
			}
		}
		free(tids);
		if (!added)
			return 0;
	}
	snprintf(why, whylen, "process %d keeps creating threads faster than gilscope can attach", (int)pid);
	return -EAGAIN;
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
static void thread_records(struct gs_session *S, pid_t pid, const struct seized *s, long holder)
{
	uint64_t now = gs_now_ns();
	for (size_t i = 0; i < s->n; i++) {
		struct gs_rec r = { .type = GS_REC_THREAD,
				    .pid = (uint32_t)pid,
				    .tid = (uint32_t)s->tids[i],
				    .time = now,
				    .arg = s->state[i] };
		char comm[16] = "";
		if (holder > 0 && holder == s->tids[i])
			r.arg64 |= GS_THREAD_HOLDS_GIL;
		if (s->tids[i] == pid)
			r.arg64 |= GS_THREAD_MAIN;
		gs_emit_rec(&S->emit, &r, NULL, 0);
		gs_task_comm(pid, s->tids[i], comm, sizeof(comm));
		r.type = GS_REC_COMM;
		r.arg = 0;
		r.arg64 = 0;
		gs_emit_rec(&S->emit, &r, comm, strnlen(comm, 15) + 1);
	}
}

/* Opens every stopped thread's events. 0 or -errno with why. */
static int follow_threads(struct gs_session *S, const struct seized *s, char *why, size_t whylen)
{
	int err = 0;
	for (size_t i = 0; i < s->n && err >= 0; i++) {
		err = gs_sched_follow(S->sched, s->tids[i], why, whylen);
		if (err >= 0 && gs_pyprobes_have_uprobes(&S->probes))
			err = gs_pyprobes_open(&S->probes, S->ev, s->tids[i], why, whylen);
	}
	gs_evlist_index(S->ev);
	return err;
}

int gs_session_attach(struct gs_session *S, int sfd)
{
	const struct gs_record_opts *o = S->o;
	struct seized s = { 0 };
	char why[2048];
	long holder;
	int pidfd;

	S->target = o->pid;
	command_meta(S, o->pid);
	gs_tidmap_add_process(S->tidmap, o->pid);
	if (o->no_gil) { /* thread states only, as when launching (setup.c) */
		gs_emit_meta(&S->emit, (uint32_t)o->pid, "python.error", "GIL detection turned off (--no-gil-detect)");
	} else if (gs_pyprobes_locate(&S->probes, o->pid, 0, S->ev, &S->pending_sig, why, sizeof(why)) < 0) {
		gs_warn("%s", why);
		gs_warn("recording thread states only (no GIL events)");
		gs_emit_meta(&S->emit, (uint32_t)o->pid, "python.error", why);
	}
	if (stop_all(o->pid, &s, why, sizeof(why)) < 0 || follow_threads(S, &s, why, sizeof(why)) < 0) {
		release_all(&s);
		gs_err("%s", why);
		return -1;
	}
	S->have_python = gs_pyprobes_have_uprobes(&S->probes);
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
		};
		gs_pyprobes_meta(&S->probes, &S->emit);
		S->stacks = gs_stacks_start(&S->probes.py, &so, &S->emit);
		gs_stacks_sample(S->stacks); /* every thread's stack at the start, while all are stopped */
	}
	thread_records(S, o->pid, &s, holder);
	release_all(&s);
	pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
	gs_info("recording process %d%s; Ctrl-C to stop", (int)o->pid,
		o->duration > 0 ? " for the given duration" : "");
	gs_session_loop(S, sfd, pidfd, -1);
	if (pidfd >= 0)
		close(pidfd);
	return 0;
}
