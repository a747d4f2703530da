/* launch.c - running the command and following it to CPython (see session.h).
 *
 * The child waits on a pipe until the scheduler events follow it, then exec()s the command.
 * gilscope holds it with ptrace (PTRACE_SEIZE, exec events only) through every exec() until it
 * runs CPython: then a breakpoint at the image's entry point stops it once every DT_NEEDED
 * library (libpython included) is mapped, the GIL probes and the stack sampler are set up, and
 * the child is let go before it runs a single Python instruction. A shell or a wrapper may run
 * for long before it execs Python: meanwhile the rings are drained and signals sent to gilscope
 * are passed on to the command, as in the main loop.
 * The tracer is not gilscope but its guardian (probe/tracer.h): every ptrace request and every
 * wait for a ptrace stop goes through it, so that a gilscope killed in the middle of the hand-over
 * leaves the command as it was. gilscope stays the command's parent: it reaps it.
 */
#define _GNU_SOURCE
#include "base/procfs.h"
#include "base/util.h"
#include "cpython/elfsym.h"
#include "probe/ptrace.h"
#include "probe/tracer.h"
#include "record/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t auxv_entry(pid_t pid)
{
	char path[64];
	uint64_t v[2];
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (read(fd, v, sizeof(v)) == sizeof(v)) {
		if (v[0] == 9 /* AT_ENTRY */) {
			close(fd);
			return v[1];
		}
		if (v[0] == 0)
			break;
	}
	close(fd);
	return 0;
}

/* Is the freshly exec'd image CPython, or does it load libpython? (Read through /proc/PID/exe:
 * the file it runs, whatever its path names in gilscope's mount namespace.) */
static int exec_may_be_python(pid_t pid)
{
	char exe[64];
	struct gs_elf *e;
	uint64_t a, s;
	int yes;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (gs_elf_open(exe, &e) < 0)
		return 0;
	yes = gs_elf_dynsym(e, "_PyRuntime", &a, &s) == 0 || gs_elf_symbol(e, "_PyRuntime", &a, &s) == 0 ||
	      gs_elf_needs(e, "libpython");
	gs_elf_free(e);
	return yes;
}

struct follow {
	uint64_t bp_addr;
	long saved;
	uint64_t exec_ns;            /* when the CPython image's exec stop was seen */
	unsigned long exec_requests; /* requests to the guardian until then */
};

/* The hand-over is done: what it cost (gilscope -v). */
static void handed_over(const struct follow *f)
{
	gs_debug("hand-over: %.2f ms from the exec stop to the detach, %lu requests to the guardian",
		 (double)(gs_now_ns() - f->exec_ns) / 1e6, gs_tracer_requests() - f->exec_requests);
}

/* The command exec'd: a CPython gets a breakpoint at its entry point. 1 once handed over. */
static int on_exec(struct gs_session *S, pid_t child, struct follow *f)
{
	if (!exec_may_be_python(child)) {
		gs_proc_exe(child, S->last_exe, sizeof(S->last_exe));
		return 0;
	}
	if ((f->bp_addr = auxv_entry(child)) == 0)
		return 0;
	f->exec_ns = gs_now_ns();
	f->exec_requests = gs_tracer_requests();
	gs_handover_step("exec");
	if (gs_ptrace_bp_insert(child, f->bp_addr, &f->saved) < 0) {
		f->bp_addr = 0;
		gs_session_set_up_python(S, child, 1); /* best effort: libraries may be missing */
		gs_handover_step("detach");
		gs_ptrace(PTRACE_DETACH, child, 0, NULL);
		handed_over(f);
		return 1;
	}
	gs_handover_step("planted");
	return 0;
}

/* One ptrace report from the followed command: returns 1 once it is handed over (detached
 * after the Python set-up) or has exited, 0 while it is still followed. */
static int follow_report(struct gs_session *S, pid_t child, int st, struct follow *f)
{
	int sig = 0, planted = 0;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		/* the guardian saw the end first; gilscope, the parent, reaps it */
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		S->status = st;
		S->exited = 1;
		return 1;
	}
	if (!WIFSTOPPED(st))
		return 0;
	if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		if (on_exec(S, child, f))
			return 1;
		planted = f->bp_addr != 0;
	} else if (st >> 16 == PTRACE_EVENT_STOP) {
		int s = WSTOPSIG(st);
		/* a group-stop (SIGSTOP and friends) stays stopped until continued; the stop that
		 * reports the continuation (SIGTRAP) must be resumed, not listened to */
		gs_ptrace(s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU ? PTRACE_LISTEN : PTRACE_CONT,
			  child, 0, NULL);
		return 0;
	} else if (WSTOPSIG(st) == SIGTRAP && f->bp_addr) {
		int hit;
		gs_handover_step("breakpoint");
		hit = gs_ptrace_bp_hit_and_remove(child, f->bp_addr, f->saved);
		if (hit == 1) {
			gs_session_set_up_python(S, child, 1);
			gs_handover_step("detach");
			gs_ptrace(PTRACE_DETACH, child, 0, (void *)(long)S->pending_sig);
			handed_over(f);
			return 1;
		}
		sig = SIGTRAP;
	} else {
		sig = WSTOPSIG(st); /* a signal for the child: deliver it */
	}
	gs_ptrace(PTRACE_CONT, child, 0, (void *)(long)sig);
	if (planted)
		gs_handover_step("running");
	return 0;
}

/* Follows the traced child through exec()s until it runs CPython (set up, then detach) or exits. */
static int follow_child(struct gs_session *S, pid_t child, int sfd)
{
	struct pollfd *pfd = gs_calloc((size_t)S->ncpu + 2, sizeof(*pfd));
	struct follow f = { 0 };
	int interrupts = 0, done = 0, ret = 0, waiting = 0;

	while (!done) {
		int st, n = 0;

		if (!waiting && (ret = gs_ptrace_wait_begin(child)) < 0)
			break;
		waiting = 1;
		pfd[n].fd = sfd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
		/* the guardian answers the wait when the command reports (a ptrace stop, the exit) */
		pfd[n].fd = gs_ptrace_wait_fd();
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
		n = gs_evlist_pollfds(S->ev, pfd, n);
		poll(pfd, (nfds_t)n, 100);
		gs_session_drain(S, 0);
		if (pfd[1].revents) {
			waiting = 0;
			if ((ret = gs_ptrace_wait_end(&st)) < 0)
				break;
			done = follow_report(S, child, st, &f);
		}
		if (pfd[0].revents & POLLIN) {
			int k = gs_session_forward_signals(sfd, child);
			if (interrupts < 3 && interrupts + k >= 3)
				gs_warn("third signal: the command still runs; stop it to end the recording");
			interrupts += k;
		}
	}
	free(pfd);
	return ret;
}

struct pipes {
	int go[2], err[2], ready_w;
};

/* The child: waits for the go, then runs the command; an exec failure's errno goes back. */
static void run_child(const struct gs_record_opts *o, struct pipes *p, const sigset_t *oldmask)
{
	char c;
	int e;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	close(p->go[1]);
	close(p->err[0]);
	if (p->ready_w >= 0) {
		/* the bootstrap reports the end of its imports here */
		char fdbuf[16];
		int fd = dup(p->ready_w); /* without close-on-exec */
		snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
		setenv("GILSCOPE_READY_FD", fdbuf, 1);
	}
	/* the guardian, not gilscope, traces this process (Yama's ptrace_scope 1 allows descendants only) */
	prctl(PR_SET_PTRACER, (unsigned long)gs_tracer_pid(), 0, 0, 0);
	/* the go, or gilscope's end closed: gilscope died before it said go, the command runs untraced */
	while (read(p->go[0], &c, 1) < 0 && errno == EINTR)
		;
	execvp(o->argv[0], o->argv);
	e = errno;
	if (write(p->err[1], &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static void kill_unstarted(pid_t child)
{
	int st;
	kill(child, SIGKILL);
	/* a traced child's end is the tracer's to see first */
	while (gs_ptrace_wait(child, &st) == 0 && !WIFEXITED(st) && !WIFSIGNALED(st))
		;
	waitpid(child, NULL, __WALL);
}

/* Starts the child held before its exec, traced and followed by the scheduler events. The
 * child's pid, or -1 (said on stderr; nothing left running). */
static pid_t start_child(struct gs_session *S, struct pipes *p, const sigset_t *oldmask)
{
	const struct gs_record_opts *o = S->o;
	char why[2048], buf[32];
	pid_t child;
	int e;

	if (pipe2(p->go, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0) {
		gs_err("pipe: %s", strerror(errno));
		return -1;
	}
	child = fork();
	if (child < 0) {
		gs_err("fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0)
		run_child(o, p, oldmask);
	close(p->go[0]);
	close(p->err[1]);
	p->go[0] = p->err[1] = -1;
	if (p->ready_w >= 0) {
		close(p->ready_w);
		p->ready_w = -1;
	}
	S->target = child;
	snprintf(buf, sizeof(buf), "%d", (int)child);
	gs_emit_meta(&S->emit, 0, "target_pid", buf);
	if ((e = gs_ptrace(PTRACE_SEIZE, child, 0, (void *)(long)PTRACE_O_TRACEEXEC)) < 0) {
		gs_err("cannot trace the command (ptrace: %s): run gilscope as root or with CAP_SYS_PTRACE",
		       strerror(-e));
		kill_unstarted(child);
		return -1;
	}
	gs_handover_step("seize");
	if (gs_sched_follow(S->sched, child, why, sizeof(why)) < 0) {
		gs_err("%s; the command was not started", why);
		kill_unstarted(child);
		return -1;
	}
	gs_counters_follow(S->counters, child); /* best effort: said on stderr */
	gs_evlist_index(S->ev);
	return child;
}

int gs_session_launch(struct gs_session *S, int sfd, sigset_t *oldmask)
{
	const struct gs_record_opts *o = S->o;
	struct pipes p = { { -1, -1 }, { -1, -1 }, -1 };
	char cmd[1024];
	pid_t child;
	int ret = 1, e;

	if (o->command_text)
		snprintf(cmd, sizeof(cmd), "%s", o->command_text);
	else
		gs_argv_join(cmd, sizeof(cmd), o->argv);
	gs_emit_meta(&S->emit, 0, "mode", "launch");
	gs_emit_meta(&S->emit, 0, "command", cmd);
	if (o->imports) {
		int rp[2];
		if (pipe2(rp, O_CLOEXEC) == 0) {
			S->ready_fd = rp[0];
			p.ready_w = rp[1];
		}
	}
	child = start_child(S, &p, oldmask);
	if (child < 0)
		goto out;
	if (write(p.go[1], "g", 1) != 1) {
		gs_err("cannot start the command");
		goto out;
	}
	close(p.go[1]);
	p.go[1] = -1;
	follow_child(S, child, sfd);
	gs_tracer_stop(); /* the command is handed over (or gone): the guardian has nothing left to guard */
	if (read(p.err[0], &e, sizeof(e)) == sizeof(e)) {
		gs_err("cannot run %s: %s", o->argv[0], strerror(e));
		S->exited = 1;
	}
	if (!S->exited)
		gs_session_loop(S, sfd, -1, child);
	if (!S->have_python && S->last_exe[0])
		gs_info("%s is not a CPython interpreter (and did not exec one): recorded thread states only",
			S->last_exe);
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (p.go[i] >= 0)
			close(p.go[i]);
		if (p.err[i] >= 0)
			close(p.err[i]);
	}
	if (p.ready_w >= 0)
		close(p.ready_w);
	return ret == 0 ? 0 : -1;
}
