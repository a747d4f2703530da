/* tracer.c - the guardian that holds the launched command with ptrace (see tracer.h).
 *
 * Protocol: one SOCK_SEQPACKET message per request and per answer, a struct tr_msg followed by
 * len bytes (SETREGS and OP_WRITE send bytes; GETREGS answers with them). The guardian serves one
 * request at a time, in order; a wait (OP_WAIT) is answered when the tracee reports, requests
 * meanwhile are not allowed (the client refuses them with -EBUSY). One message is not gilscope's:
 * the launched command sends the fork watch's listener (OP_LISTENER, the descriptor attached), from
 * before its exec, on the connection it inherited; it gets no answer.
 */
#define _GNU_SOURCE
#include "probe/tracer.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/forkwatch.h"
#include "probe/ptrace.h"
#include "probe/tracetree.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define OP_WRITE 0x10001    /* write tracee memory (journaled) */
#define OP_WAIT 0x10002     /* waitpid(pid, __WALL); pid -1: any report the guardian did not serve itself */
#define OP_ADOPT 0x10003    /* the journal moves to pid, stopped with status data (pid 0: the commit) */
#define OP_LISTENER 0x10004 /* from the launched command: the fork watch's listener (SCM_RIGHTS); no answer */
#define OP_PLAIN 0x10005    /* exec stops of the file st_dev addr, st_ino data are the guardian's to resume */
#define OP_RESUMED 0x10006  /* in a wait's answer: an exec stop resumed by the guardian (RESUMED_HEAD) */
#define MAX_PAYLOAD 32768u
#define MAX_INT3 64
#define MAX_HELD 32
#define MAX_MAPS 16
#define RESUMED_HEAD sizeof(uint64_t) /* OP_RESUMED's payload: the stop's time, then the argv */

_Static_assert(sizeof(((struct gs_tracer_report *)0)->argv) >= GS_TRACETREE_ARGV,
	       "a resumed exec's argv, as the guardian sends it, fits the report");

struct tr_msg {
	int32_t op; /* a ptrace request or OP_*; unused in answers */
	int32_t pid;
	uint64_t addr;
	uint64_t data; /* ptrace's data; in answers: the PEEK word, the wait status */
	int32_t err;   /* answers: 0 or -errno */
	uint32_t len;  /* payload bytes that follow */
};

/* ---- the guardian: its journal ---- */

struct patch {
	uint64_t addr;
	size_t len;
	uint8_t *orig;
};

struct journal {
	pid_t pid;     /* the tracee held (0: none) */
	int stopped;   /* in a stop the guardian reported and has not resumed since */
	int status;    /* that stop's wait status */
	int sig;       /* that stop's signal, to be passed on (0: none) */
	int own_trap;  /* that stop is the SIGTRAP of one of the journal's int3s */
	int have_regs; /* regs: the registers before the first SETREGS or POKEUSER */
	struct user_regs_struct regs;
	struct patch *patches;
	size_t npatches, cap;
	uint64_t int3[MAX_INT3]; /* addresses where a small write put an int3 */
	size_t nint3;
	int held[MAX_HELD]; /* signals reported at a stop and not passed on by gilscope */
	size_t nheld;
	uint64_t mmap_at, mmap_len; /* an injected mmap is set up at this `syscall` (0: none) */
	uint64_t maps[MAX_MAPS][2]; /* what injected mmaps mapped: {address, length} */
	size_t nmaps;
};

static void journal_drop(struct journal *J)
{
	for (size_t i = 0; i < J->npatches; i++)
		free(J->patches[i].orig);
	J->npatches = 0;
	J->nint3 = 0;
	J->have_regs = 0;
	J->mmap_at = 0;
	J->nmaps = 0;
}

static void journal_reset(struct journal *J)
{
	journal_drop(J);
	J->pid = 0;
	J->stopped = J->sig = J->own_trap = 0;
	J->nheld = 0;
}

static int is_int3(const struct journal *J, uint64_t addr)
{
	for (size_t i = 0; i < J->nint3; i++)
		if (J->int3[i] == addr)
			return 1;
	return 0;
}

/* Keeps the original bytes of a write; a small write that plants an int3 (the breakpoint, the
 * injected `syscall; int3`) is remembered by address, so its SIGTRAP is known as the guardian's. */
static void journal_write(struct journal *J, uint64_t addr, const uint8_t *orig, const uint8_t *new, size_t len)
{
	struct patch *p;
	if (J->npatches == J->cap) {
		J->cap = J->cap ? J->cap * 2 : 64;
		J->patches = gs_realloc_array(J->patches, J->cap, sizeof(*J->patches));
	}
	p = &J->patches[J->npatches++];
	p->addr = addr;
	p->len = len;
	p->orig = gs_malloc(len);
	memcpy(p->orig, orig, len);
	for (size_t i = 0; len <= 16 && i < len; i++)
		if (new[i] == 0xcc && orig[i] != 0xcc && J->nint3 < MAX_INT3 && !is_int3(J, addr + i))
			J->int3[J->nint3++] = addr + i;
}

/* Is the byte before the tracee's PC one of the journal's int3s, still in place? */
static int after_own_int3(const struct journal *J, const struct user_regs_struct *r)
{
	uint8_t b;
	return is_int3(J, r->rip - 1) && gs_mem_read(J->pid, r->rip - 1, &b, 1) == 0 && b == 0xcc;
}

/* The registers of an injected system call are set (SETREGS): an mmap is watched for its result. */
static void note_setregs(struct journal *J, pid_t pid, const struct user_regs_struct *r)
{
	uint8_t code[2];
	if (pid != J->pid)
		return;
	J->mmap_at = 0;
	if (r->rax == SYS_mmap && r->orig_rax == (unsigned long long)-1 && gs_mem_read(pid, r->rip, code, 2) == 0 &&
	    code[0] == 0x0f && code[1] == 0x05) {
		J->mmap_at = r->rip;
		J->mmap_len = r->rsi;
	}
}

/* The tracee is past the watched mmap's `syscall` (r: its registers): its result is kept. */
static void note_mmap_result(struct journal *J, const struct user_regs_struct *r)
{
	if (!J->mmap_at || (r->rip != J->mmap_at + 2 && r->rip != J->mmap_at + 3))
		return;
	if (r->rax && r->rax < (unsigned long long)-4096 && J->nmaps < MAX_MAPS) {
		J->maps[J->nmaps][0] = r->rax;
		J->maps[J->nmaps++][1] = J->mmap_len;
	}
	J->mmap_at = 0;
}

/* The tracee reported st (to the guardian's waitpid). */
static void note_report(struct journal *J, pid_t pid, int st)
{
	struct user_regs_struct r;
	if (pid != J->pid || !J->pid)
		return;
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		journal_reset(J);
		return;
	}
	if (!WIFSTOPPED(st))
		return;
	J->stopped = 1;
	J->status = st;
	J->sig = J->own_trap = 0;
	if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		journal_drop(J); /* a new image: nothing written before is there any more */
	} else if ((st >> 16) == 0) {
		/* a signal-delivery-stop */
		if (WSTOPSIG(st) == SIGTRAP && ptrace(PTRACE_GETREGS, pid, NULL, &r) == 0 && after_own_int3(J, &r)) {
			J->own_trap = 1;
			note_mmap_result(J, &r);
		} else
			J->sig = WSTOPSIG(st);
	}
}

/* Before a resume with signal sig: a signal of the stop that is not passed on is held. */
static void note_resume(struct journal *J, pid_t pid, int sig)
{
	if (pid != J->pid || !J->sig || sig == J->sig)
		return;
	if (J->nheld < MAX_HELD)
		J->held[J->nheld++] = J->sig;
}

/* The registers are about to change: keep them first. 0 or -errno. */
static int keep_regs(struct journal *J, pid_t pid)
{
	if (pid != J->pid || J->have_regs)
		return 0;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &J->regs) < 0)
		return -errno;
	J->have_regs = 1;
	return 0;
}

/* ---- the guardian: requests ---- */

static int serve_write(struct journal *J, pid_t pid, uint64_t addr, const uint8_t *in, size_t len)
{
	uint8_t orig[MAX_PAYLOAD];
	int err;
	if (len > MAX_PAYLOAD)
		return -EINVAL;
	if (pid == J->pid) {
		if ((err = gs_mem_read(pid, addr, orig, len)) < 0)
			return err;
		journal_write(J, addr, orig, in, len);
	}
	return gs_mem_write(pid, addr, in, len);
}

static int serve_poke(struct journal *J, int req, pid_t pid, uint64_t addr, uint64_t data)
{
	long old;
	if (pid == J->pid) {
		errno = 0;
		old = ptrace(PTRACE_PEEKDATA, pid, (void *)(uintptr_t)addr, NULL);
		if (errno)
			return -errno;
		journal_write(J, addr, (const uint8_t *)&old, (const uint8_t *)&data, sizeof(old));
	}
	return ptrace(req, pid, (void *)(uintptr_t)addr, (void *)(uintptr_t)data) < 0 ? -errno : 0;
}

/* One request q (payload in), answered in a (payload out). */
static void serve(struct journal *J, struct gs_tracetree *R, const struct tr_msg *q, const uint8_t *in,
		  struct tr_msg *a, uint8_t *out)
{
	pid_t pid = q->pid;
	void *addr = (void *)(uintptr_t)q->addr, *data = (void *)(uintptr_t)q->data;
	long r;

	memset(a, 0, sizeof(*a));
	errno = 0;
	switch (q->op) {
	case PTRACE_SEIZE:
		if (ptrace(PTRACE_SEIZE, pid, addr, data) < 0) {
			a->err = -errno;
			break;
		}
		if (R)
			gs_tracetree_proc_add(R, pid);
		if (!J->pid) {
			journal_reset(J);
			J->pid = pid;
		}
		break;
	case OP_ADOPT:
		if (pid && J->pid && J->pid != pid && (J->npatches || J->have_regs || J->nmaps)) {
			a->err = -EBUSY; /* another tracee's hand-over is not committed */
			break;
		}
		journal_reset(J);
		J->pid = pid;
		J->stopped = pid != 0;
		J->status = (int)q->data;
		break;
	case PTRACE_INTERRUPT:
		a->err = ptrace(PTRACE_INTERRUPT, pid, NULL, NULL) < 0 ? -errno : 0;
		break;
	case PTRACE_CONT:
	case PTRACE_LISTEN:
	case PTRACE_DETACH:
		note_resume(J, pid, (int)q->data);
		if (ptrace(q->op, pid, NULL, data) < 0) {
			a->err = -errno;
		} else if (pid == J->pid) {
			J->stopped = J->sig = J->own_trap = 0;
			if (q->op == PTRACE_DETACH)
				journal_reset(J); /* the commit: the tracee is no longer ours */
		}
		if (q->op == PTRACE_DETACH && R)
			gs_tracetree_proc_remove(R, pid);
		break;
	case PTRACE_GETREGS:
		if (ptrace(PTRACE_GETREGS, pid, NULL, out) < 0)
			a->err = -errno;
		else
			a->len = sizeof(struct user_regs_struct);
		break;
	case PTRACE_SETREGS:
	case PTRACE_POKEUSER:
		if (q->op == PTRACE_SETREGS && q->len != sizeof(struct user_regs_struct))
			a->err = -EINVAL;
		else if ((a->err = keep_regs(J, pid)) == 0 &&
			 ptrace(q->op, pid, addr, q->op == PTRACE_SETREGS ? (void *)in : data) < 0)
			a->err = -errno;
		else if (q->op == PTRACE_SETREGS)
			note_setregs(J, pid, (const struct user_regs_struct *)in);
		break;
	case PTRACE_PEEKTEXT:
	case PTRACE_PEEKDATA:
	case PTRACE_PEEKUSER:
		r = ptrace(q->op, pid, addr, NULL);
		a->err = errno ? -errno : 0;
		a->data = (uint64_t)r;
		break;
	case PTRACE_POKETEXT:
	case PTRACE_POKEDATA:
		a->err = serve_poke(J, q->op, pid, q->addr, q->data);
		break;
	case OP_WRITE:
		a->err = serve_write(J, pid, q->addr, in, q->len);
		break;
	case OP_PLAIN:
		a->err = R ? gs_tracetree_plain(R, q->addr, q->data) : -ENOSPC;
		break;
	default:
		a->err = -EINVAL;
	}
}

static void answer(int sock, const struct tr_msg *a, const void *out)
{
	struct iovec iov[2] = { { (void *)a, sizeof(*a) }, { (void *)out, a->len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = a->len ? 2 : 1 };
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* Takes every report that arrived. -ECHILD when there is no tracee left, else 0. */
static int pump(struct gs_tracetree *R, struct journal *J)
{
	pid_t w;
	int st;
	while ((w = waitpid(-1, &st, __WALL | WNOHANG)) != 0) {
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		note_report(J, w, st);
		gs_tracetree_take(R, J->pid, w, st);
	}
	return 0;
}

/* A pending wait for pid (-1: any): answered (1) once a report is queued, 0 while none is. */
static int try_wait(struct gs_tracetree *R, struct journal *J, int sock, pid_t pid)
{
	static uint8_t out[RESUMED_HEAD + GS_TRACETREE_ARGV];
	struct gs_tracetree_report r;
	struct tr_msg a = { 0 };
	int err = pump(R, J);
	if (gs_tracetree_pop(R, pid, &r)) {
		a.addr = (uint64_t)r.pid;
		a.data = (uint64_t)(unsigned)r.status;
		if (r.resumed) {
			a.op = OP_RESUMED;
			a.len = (uint32_t)(RESUMED_HEAD + r.argvlen);
			memcpy(out, &r.time, RESUMED_HEAD);
			if (r.argvlen)
				memcpy(out + RESUMED_HEAD, r.argv, r.argvlen);
		}
		answer(sock, &a, out);
		free(r.argv);
		return 1;
	}
	if (err == 0 && pid != -1 && kill(pid, 0) < 0 && errno == ESRCH)
		err = -ECHILD; /* gone, its end served already */
	if (err == 0)
		return 0;
	a.err = err;
	answer(sock, &a, NULL);
	return 1;
}

/* ---- the guardian: the fork watch (forkwatch.h) ---- */

/* The options of a thread traced because it creates a process or execs: the tree's, without
 * PTRACE_O_TRACECLONE (the threads it starts are not traced). */
#define WATCH_OPTIONS (PTRACE_O_TRACEEXEC | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK)

/* A thread of the tree is about to create a process (or to exec): it is traced first, if it is
 * not yet (then the call's fork, vfork or exec event follows as for any tracee), and let go on. */
static void serve_watch(struct gs_tracetree *R, int lfd)
{
	struct gs_forkwatch_call c;
	if (gs_forkwatch_recv(lfd, &c) < 0)
		return;
	if (ptrace(PTRACE_SEIZE, c.tid, NULL, (void *)(long)WATCH_OPTIONS) == 0 &&
	    syscall(SYS_tgkill, c.tid, c.tid, 0) == 0)
		gs_tracetree_proc_add(R, c.tid); /* a process's main thread (its tid is its pid): its end is reported */
	gs_forkwatch_continue(lfd, c.id);
}

/* ---- the guardian: giving the tracee back when gilscope is gone ---- */

/* Waits for the held tracee's next report. 0 at a stop, -1 when it is gone. */
static int wait_report(struct journal *J)
{
	pid_t pid = J->pid;
	int st;
	while (waitpid(pid, &st, __WALL) < 0)
		if (errno != EINTR)
			return -1;
	note_report(J, pid, st);
	return J->pid ? 0 : -1;
}

static int in_group_stop(const struct journal *J)
{
	int s = WSTOPSIG(J->status);
	return (J->status >> 16) == PTRACE_EVENT_STOP && (s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU);
}

/* Stops the tracee if it runs, then takes the SIGTRAP of an int3 of ours that ran but was not
 * reported yet (an interrupt came first): let go, it would kill the command. cur receives the
 * registers. 0, or -1 when the tracee is gone. */
static int stop_tracee(struct journal *J, struct user_regs_struct *cur)
{
	pid_t pid = J->pid;
	if (!J->stopped) {
		ptrace(PTRACE_INTERRUPT, pid, NULL, NULL);
		if (wait_report(J) < 0)
			return -1;
	}
	if (ptrace(PTRACE_GETREGS, pid, NULL, cur) < 0)
		return -1;
	for (int tries = 0; !J->own_trap && after_own_int3(J, cur) && tries < 16; tries++) {
		note_resume(J, pid, 0);
		if (ptrace(PTRACE_CONT, pid, NULL, NULL) < 0 || wait_report(J) < 0 ||
		    ptrace(PTRACE_GETREGS, pid, NULL, cur) < 0)
			return -1;
	}
	note_mmap_result(J, cur); /* stopped just after an injected mmap */
	return 0;
}

/* Unmaps what injected mmaps mapped, with an injected munmap at pc (the tracee is in its own
 * state again). Not from a group-stop: running the call would end it. */
static void unmap_injected(struct journal *J, uint64_t pc)
{
	if (!J->nmaps || in_group_stop(J))
		return;
	if (J->sig && J->nheld < MAX_HELD)
		J->held[J->nheld++] = J->sig; /* the calls resume the tracee without it */
	J->sig = 0;
	for (size_t i = J->nmaps; i-- > 0;) {
		uint64_t args[6] = { J->maps[i][0], J->maps[i][1], 0, 0, 0, 0 };
		int64_t ret;
		int sig = 0;
		if (gs_ptrace_syscall(J->pid, pc, SYS_munmap, args, &ret, &sig) < 0)
			break;
		if (sig && J->nheld < MAX_HELD)
			J->held[J->nheld++] = sig;
	}
}

/* gilscope is gone: the tracee is brought back to what it was and let go. */
static void rollback(struct journal *J)
{
	struct user_regs_struct cur, regs;
	pid_t pid = J->pid;

	if (!pid || stop_tracee(J, &cur) < 0)
		return;
	for (size_t i = J->npatches; i-- > 0;)
		gs_mem_write(pid, J->patches[i].addr, J->patches[i].orig, J->patches[i].len);
	regs = J->have_regs ? J->regs : cur;
	if (is_int3(J, regs.rip - 1))
		regs.rip--; /* stopped by the breakpoint: the instruction it replaced is to run */
	if (J->have_regs || regs.rip != cur.rip)
		ptrace(PTRACE_SETREGS, pid, NULL, &regs);
	unmap_injected(J, regs.rip);
	for (size_t i = 0; i < J->nheld; i++)
		kill(pid, J->held[i]);
	ptrace(PTRACE_DETACH, pid, NULL, (void *)(long)J->sig);
	journal_reset(J);
}

static void guardian_setup(int sock, int *sfd)
{
	static const int deaf[] = { SIGINT,  SIGTERM, SIGHUP,  SIGQUIT, SIGPIPE,
				    SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2 };
	sigset_t ss;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	setpgid(0, 0); /* not in gilscope's process group: a signal for the group does not reach it */
	prctl(PR_SET_NAME, "gilscope-guard");
	/* every thread or process the followed tree creates waits, stopped, until the guardian resumes
	 * it: on a loaded machine the guardian's wake-up latency is that wait (2,000 threads started
	 * one at a time under a load of 14 on 2 CPUs: 2.0 s at nice 0, 0.9 s at -10, 0.8 s without the
	 * stops). It works a few microseconds per stop. Without CAP_SYS_NICE: as it is. */
	setpriority(PRIO_PROCESS, 0, -10);
	for (size_t i = 0; i < GS_ARRAY_SIZE(deaf); i++)
		signal(deaf[i], SIG_IGN);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		if (null > 1)
			close(null);
	}
	if (sock != 3) {
		dup2(sock, 3);
		fcntl(3, F_SETFD, FD_CLOEXEC);
	}
	close_range(4, ~0u, 0); /* gilscope's files stay gilscope's */
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigprocmask(SIG_SETMASK, &ss, NULL);
	*sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* In the guardian itself, gs_ptrace() and friends run the request here (ptrace.c's remote calls
 * serve the rollback), journaled nowhere, and the test hook is off. */
static int g_local;

static void __attribute__((noreturn)) guardian(int sock0)
{
	static uint8_t in[sizeof(struct tr_msg) + MAX_PAYLOAD] __attribute__((aligned(16)));
	static uint8_t out[sizeof(struct user_regs_struct)] __attribute__((aligned(16)));
	static struct gs_tracetree R;
	struct journal J = { 0 };
	const int sock = 3;
	pid_t waiting = 0;
	int sfd, lfd = -1, fd;

	g_local = 1;
	guardian_setup(sock0, &sfd);
	for (;;) {
		struct pollfd p[3] = { { sock, POLLIN, 0 }, { sfd, POLLIN, 0 }, { lfd, POLLIN, 0 } };
		struct signalfd_siginfo si;
		struct tr_msg a;
		ssize_t n;
		if (poll(p, 3, waiting && sfd < 0 ? 10 : -1) < 0 && errno != EINTR)
			break;
		if (p[2].revents & POLLIN)
			serve_watch(&R, lfd); /* first: the thread waits for it */
		while (sfd >= 0 && read(sfd, &si, sizeof(si)) == sizeof(si))
			;
		if (waiting && try_wait(&R, &J, sock, waiting))
			waiting = 0;
		else if (!waiting)
			pump(&R, &J); /* the tracees' own stops are served even when gilscope asks nothing */
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = gs_forkwatch_recvmsg(sock, in, sizeof(in), &fd);
		if (n >= (ssize_t)sizeof(struct tr_msg) && ((struct tr_msg *)in)->op == OP_LISTENER && lfd < 0) {
			lfd = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof(struct tr_msg))
			break; /* gilscope closed its end (or died) */
		if (((struct tr_msg *)in)->op == OP_LISTENER)
			continue;
		if (((struct tr_msg *)in)->op == OP_WAIT) {
			waiting = ((struct tr_msg *)in)->pid;
			if (try_wait(&R, &J, sock, waiting))
				waiting = 0;
			continue;
		}
		serve(&J, &R, (const struct tr_msg *)in, in + sizeof(struct tr_msg), &a, out);
		answer(sock, &a, out);
	}
	rollback(&J);
	gs_tracetree_release(&R);
	gs_forkwatch_hand_off(lfd);
	free(J.patches);
	close(sock);
	close(sfd);
	close(0);
	close(1);
	_exit(0);
}

/* ---- gilscope's side ---- */

static int g_fd = -1, g_waiting;
static pid_t g_pid;
static unsigned long g_requests;

int gs_tracer_start(char *why, size_t whylen)
{
	int sv[2];
	pid_t pid;
	if (g_fd >= 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "cannot start the tracer (socketpair: %s)", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		int e = errno;
		snprintf(why, whylen, "cannot start the tracer (fork: %s)", strerror(e));
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		guardian(sv[1]);
	}
	close(sv[1]);
	g_fd = sv[0];
	g_pid = pid;
	return 0;
}

void gs_tracer_stop(void)
{
	if (g_fd < 0)
		return;
	close(g_fd);
	g_fd = -1;
	g_waiting = 0;
	while (waitpid(g_pid, NULL, 0) < 0 && errno == EINTR)
		;
	g_pid = 0;
}

pid_t gs_tracer_pid(void) { return g_pid; }

unsigned long gs_tracer_requests(void) { return g_requests; }

static int send_req(struct tr_msg *q, const void *in, size_t inlen)
{
	struct iovec iov[2] = { { q, sizeof(*q) }, { (void *)in, inlen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = inlen ? 2 : 1 };
	if (g_fd < 0)
		return -ENOTCONN;
	if (g_waiting)
		return -EBUSY;
	q->len = (uint32_t)inlen;
	g_requests++;
	while (sendmsg(g_fd, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return errno == ECONNRESET ? -EPIPE : -errno;
	return 0;
}

/* An answer, and its payload in out (its length in *got; may be NULL). */
static int recv_answer(struct tr_msg *a, void *out, size_t outlen, ssize_t *got)
{
	struct iovec iov[2] = { { a, sizeof(*a) }, { out, outlen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = out ? 2 : 1 };
	ssize_t n;
	while ((n = recvmsg(g_fd, &mh, 0)) < 0)
		if (errno != EINTR)
			return -errno;
	if (n < (ssize_t)sizeof(*a))
		return -EPIPE; /* the guardian is gone */
	if (got)
		*got = n - (ssize_t)sizeof(*a);
	return a->err;
}

static int call(struct tr_msg *q, const void *in, size_t inlen, void *out, size_t outlen)
{
	int err;
	if (g_local) {
		static struct journal none; /* pid 0: journals nothing */
		struct tr_msg a;
		q->len = (uint32_t)inlen;
		serve(&none, NULL, q, in, &a, out);
		q->data = a.data;
		return a.err;
	}
	err = send_req(q, in, inlen);
	return err < 0 ? err : recv_answer(q, out, outlen, NULL);
}

int gs_ptrace(int req, pid_t pid, uint64_t addr, void *data)
{
	struct tr_msg q = { .op = req, .pid = pid, .addr = addr, .data = (uint64_t)(uintptr_t)data };
	int err;
	switch (req) {
	case PTRACE_GETREGS:
		return call(&q, NULL, 0, data, sizeof(struct user_regs_struct));
	case PTRACE_SETREGS:
		return call(&q, data, sizeof(struct user_regs_struct), NULL, 0);
	case PTRACE_PEEKTEXT:
	case PTRACE_PEEKDATA:
	case PTRACE_PEEKUSER:
		q.data = 0;
		if ((err = call(&q, NULL, 0, NULL, 0)) == 0)
			*(long *)data = (long)q.data;
		return err;
	default:
		return call(&q, NULL, 0, NULL, 0);
	}
}

int gs_ptrace_write(pid_t pid, uint64_t addr, const void *src, size_t len)
{
	const uint8_t *s = src;
	while (len) {
		size_t n = len < MAX_PAYLOAD ? len : MAX_PAYLOAD;
		struct tr_msg q = { .op = OP_WRITE, .pid = pid, .addr = addr };
		int err = call(&q, s, n, NULL, 0);
		if (err < 0)
			return err;
		s += n;
		addr += n;
		len -= n;
	}
	return 0;
}

int gs_tracer_watch_forks(void)
{
	struct tr_msg q = { .op = OP_LISTENER, .pid = getpid() };
	int lfd, err;
	if (g_fd < 0)
		return -ENOTCONN;
	if ((lfd = gs_forkwatch_install()) < 0)
		return lfd;
	err = gs_forkwatch_sendmsg(g_fd, &q, sizeof(q), lfd);
	close(lfd);
	return err;
}

int gs_ptrace_wait_begin(pid_t pid)
{
	struct tr_msg q = { .op = OP_WAIT, .pid = pid };
	int err = send_req(&q, NULL, 0);
	if (err == 0)
		g_waiting = 1;
	return err;
}

int gs_ptrace_wait_fd(void) { return g_fd; }

int gs_ptrace_wait_end_report(struct gs_tracer_report *r)
{
	struct tr_msg a = { 0 };
	uint8_t buf[RESUMED_HEAD + GS_TRACETREE_ARGV];
	ssize_t n;
	int err;
	if (!g_waiting)
		return -EINVAL;
	g_waiting = 0;
	err = recv_answer(&a, buf, sizeof(buf), &n);
	if (err < 0)
		return err;
	r->status = (int)a.data;
	r->pid = (pid_t)a.addr;
	r->resumed = a.op == OP_RESUMED;
	r->time = 0;
	r->argv_len = 0;
	if (r->resumed && n >= (ssize_t)RESUMED_HEAD) {
		memcpy(&r->time, buf, RESUMED_HEAD);
		r->argv_len = (size_t)n - RESUMED_HEAD;
		memcpy(r->argv, buf + RESUMED_HEAD, r->argv_len);
	}
	return 0;
}

int gs_ptrace_wait_end_pid(pid_t *pid, int *status)
{
	struct gs_tracer_report r;
	int err = gs_ptrace_wait_end_report(&r);
	if (err == 0) {
		*status = r.status;
		*pid = r.pid;
	}
	return err;
}

int gs_tracer_plain(uint64_t dev, uint64_t ino)
{
	struct tr_msg q = { .op = OP_PLAIN, .addr = dev, .data = ino };
	if (g_local)
		return 0;
	return call(&q, NULL, 0, NULL, 0);
}

int gs_ptrace_wait_end(int *status)
{
	pid_t pid;
	return gs_ptrace_wait_end_pid(&pid, status);
}

int gs_tracer_adopt(pid_t pid, int status)
{
	struct tr_msg q = { .op = OP_ADOPT, .pid = pid, .data = (uint64_t)(unsigned)status };
	if (g_local)
		return 0;
	return call(&q, NULL, 0, NULL, 0);
}

int gs_ptrace_wait(pid_t pid, int *status)
{
	int err;
	if (g_local) {
		while (waitpid(pid, status, __WALL) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	err = gs_ptrace_wait_begin(pid);
	return err < 0 ? err : gs_ptrace_wait_end(status);
}

void gs_handover_step(const char *step)
{
	static const char *kill_at;
	static int read_env;
	if (g_local)
		return;
	if (!read_env) {
		kill_at = getenv("GILSCOPE_TEST_KILL_AT");
		read_env = 1;
	}
	if (kill_at && strcmp(kill_at, step) == 0)
		kill(getpid(), SIGKILL);
}
