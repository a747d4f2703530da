/* launch.c - running the command and following its tree to CPython (see session.h).
 *
 * The child waits on a pipe until the scheduler events follow it, then exec()s the command.
 * gilscope holds it with ptrace (PTRACE_SEIZE with exec events, and fork and vfork events with
 * the fork watch installed before the exec, tracer.h, unless --no-children) and follows it and
 * every process it starts (proctree.h) from the main loop: each exec of CPython stops at a
 * breakpoint at the image's entry point once every DT_NEEDED library (libpython included) is
 * mapped, the GIL probes are set up, and the process goes on before it runs a single Python
 * instruction. Meanwhile the rings are drained and signals sent to gilscope are passed on to the
 * command. With --exec-stop (and the BPF scheduler source) no seccomp filter costs the tree's every
 * system call: the guardian traces the first thread of every process forked by a traced first
 * thread (exec, fork and vfork events; their exec stops are ptrace stops, unseen by their
 * parents), and the other descendants are followed as attach follows them (attach.c: the source's
 * fork records, a SIGSTOP at each exec, which a parent may see: waitpid WUNTRACED, CLD_STOPPED).
 * The tracer is not gilscope but its guardian (probe/tracer.h): every ptrace request and every
 * wait for a ptrace stop goes through it, so that a gilscope killed in the middle of the hand-over
 * leaves the command as it was. gilscope stays the command's parent: it reaps it.
 */
#define _GNU_SOURCE
#include "base/util.h"
#include "probe/tracer.h"
#include "record/session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

struct pipes {
	int go[2], err[2], ready_w;
};

/* The child: waits for the go, then runs the command; an exec failure's errno goes back. */
static void run_child(const struct gs_record_opts *o, int bpf_tree, struct pipes *p, const sigset_t *oldmask)
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
	/* the fork watch (tracer.h), or why not: gilscope reads it before it seizes this process */
	e = o->no_children || o->no_fork_watch || bpf_tree ? -EINVAL : gs_tracer_watch_forks();
	if (write(p->err[1], &e, sizeof(e)) < 0)
		_exit(127);
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

/* watch: the child's fork watch is in place (its threads need not be traced to follow its forks) */
static long seize_options(const struct gs_session *S, int watch)
{
	if (S->o->no_children)
		return PTRACE_O_TRACEEXEC;
	if (S->bpf_tree) /* the processes its first thread forks are traced too; others stop by BPF */
		return PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK;
	return PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | (watch ? 0 : PTRACE_O_TRACECLONE);
}

/* Starts the child held before its exec, traced and followed by the scheduler events. The
 * child's pid, or -1 (said on stderr; nothing left running). */
static pid_t start_child(struct gs_session *S, struct pipes *p, const sigset_t *oldmask)
{
	const struct gs_record_opts *o = S->o;
	char why[2048], buf[32];
	pid_t child;
	int e = 0, watch = -ECHILD;

	if (pipe2(p->go, O_CLOEXEC) < 0 || pipe2(p->err, O_CLOEXEC) < 0) {
		gs_err("pipe: %s", strerror(errno));
		return -1;
	}
	/* --exec-stop: no seccomp filter on every system call of the tree (the fork watch's cost). The
	 * guardian traces the first thread of every process forked by a traced first thread (their
	 * exec stops are ptrace's, unseen by their parents); the scheduler program stops the others
	 * at their exec (a SIGSTOP, which a parent may see). Without BPF, the fork watch */
	if (!o->fork_watch && !o->no_exec_stop && !o->no_fork_watch && !o->no_children && S->sched->stop_at_exec &&
	    (e = S->sched->stop_at_exec(S->sched, 1)) == 0)
		S->bpf_tree = S->exec_stops = 1;
	else if (o->exec_stop && !o->no_children)
		gs_warn("--exec-stop needs the BPF scheduler source (--sched bpf)%s%s: following the tree with the "
			"fork watch",
			S->sched->stop_at_exec ? ", which cannot stop processes here: " : "",
			S->sched->stop_at_exec ? strerror(-e) : "");
	child = fork();
	if (child < 0) {
		gs_err("fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0)
		run_child(o, S->bpf_tree, p, oldmask);
	close(p->go[0]);
	close(p->err[1]);
	p->go[0] = p->err[1] = -1;
	if (p->ready_w >= 0) {
		close(p->ready_w);
		p->ready_w = -1;
	}
	S->target = child;
	while (read(p->err[0], &watch, sizeof(watch)) < 0 && errno == EINTR)
		;
	if (S->bpf_tree)
		gs_debug("the command's descendants are followed by their first threads' tracing and the scheduler "
			 "program's stops at exec");
	else if (watch < 0 && !o->no_children)
		gs_debug("fork watch not installed (%s): every thread of the tree is traced", strerror(-watch));
	snprintf(buf, sizeof(buf), "%d", (int)child);
	gs_emit_meta(&S->emit, 0, "target_pid", buf);
	if ((e = gs_ptrace(PTRACE_SEIZE, child, 0, (void *)(long)seize_options(S, watch == 0))) < 0) {
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
	S->tree = gs_proctree_new(child, !o->no_children);
	gs_session_loop(S, sfd, child);
	gs_session_exec_stops_end(S);
	gs_tracer_stop();            /* the processes still traced go on untraced */
	gs_session_detach_probes(S); /* and those that outlive the recording lose its probes */
	if (read(p.err[0], &e, sizeof(e)) == sizeof(e))
		gs_err("cannot run %s: %s", o->argv[0], strerror(e));
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
