/* proctree.c - following the command's process tree to every CPython in it (see proctree.h). */
#define _GNU_SOURCE
#include "record/proctree.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/ptrace.h"
#include "probe/tracer.h"
#include "record/exekind.h"
#include "record/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PENDING 256
#define SERVICE_BATCH 32 /* reports taken in one pass of the loop, at most */

struct hand {
	pid_t pid;
	int status;        /* the exec stop's wait status */
	uint64_t bp_addr;  /* the entry-point breakpoint (0: not planted) */
	long saved;        /* the word it replaced */
	uint64_t exec_ns;  /* when the exec stop was taken up */
	unsigned long req; /* requests to the guardian until then */
};

struct gs_proctree {
	pid_t root;
	int children;
	int waiting; /* a wait is asked of the guardian */
	int done;    /* no tracee left */
	struct hand cur;
	struct hand pending[MAX_PENDING];
	size_t npending;
	struct gs_exekind exes; /* which programs are CPython */
	int plain_full;         /* the guardian resumes no more programs (gs_tracer_plain) */
	uint64_t execs, pythons;
};

struct gs_proctree *gs_proctree_new(pid_t root, int children)
{
	struct gs_proctree *t = gs_calloc(1, sizeof(*t));
	t->root = root;
	t->children = children;
	/* until its first exec the command is the journaled tracee (tracer.h) */
	t->cur.pid = root;
	return t;
}

void gs_proctree_free(struct gs_proctree *t) { free(t); }

int gs_proctree_done(const struct gs_proctree *t) { return !t || t->done; }

void gs_proctree_counts(const struct gs_proctree *t, uint64_t *execs, uint64_t *pythons)
{
	*execs = t ? t->execs : 0;
	*pythons = t ? t->pythons : 0;
}

int gs_proctree_fd(struct gs_proctree *t)
{
	if (!t || t->done)
		return -1;
	if (!t->waiting) {
		if (gs_ptrace_wait_begin(-1) < 0) {
			t->done = 1;
			return -1;
		}
		t->waiting = 1;
	}
	return gs_ptrace_wait_fd();
}

/* The new image's argv, in the recording: "argv" as LEN:ARG for each argument (any byte may be
 * in an argument), true since asof (0: now). raw: n bytes of its /proc/PID/cmdline (n <= 0: none). */
static void emit_argv_of(struct gs_session *S, pid_t pid, uint64_t asof, const char *raw, long n)
{
	char enc[6144];
	size_t o = 0;
	for (long i = 0; n > 0 && i < n;) {
		size_t len = strnlen(raw + i, (size_t)(n - i));
		int w = snprintf(enc + o, sizeof(enc) - o, "%zu:", len);
		if (w < 0 || o + (size_t)w + len + 1 > sizeof(enc))
			break; /* the arguments that fit */
		o += (size_t)w;
		memcpy(enc + o, raw + i, len);
		o += len;
		i += (long)len + 1;
	}
	enc[o] = '\0';
	if (strlen(enc) == o) /* NUL-free by construction; the meta value is a string */
		gs_emit_meta_asof(&S->emit, (uint32_t)pid, asof, "argv", enc);
}

/* The same, read from /proc/PID/cmdline */
void gs_session_emit_argv(struct gs_session *S, pid_t pid)
{
	char path[64], raw[4096];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	emit_argv_of(S, pid, 0, raw, gs_read_file(path, raw, sizeof(raw)));
}

static void begin_handover(struct gs_session *S, struct hand *h);

/* The hand-over of t->cur is done (or abandoned): the tracee goes on, the next CPython's begins. */
static void end_handover(struct gs_session *S, int detach)
{
	struct gs_proctree *t = S->tree;
	pid_t pid = t->cur.pid;
	if (pid && t->cur.exec_ns)
		gs_debug("hand-over of process %d: %.2f ms from the exec stop to the release, %lu requests to the "
			 "guardian",
			 (int)pid, (double)(gs_now_ns() - t->cur.exec_ns) / 1e6, gs_tracer_requests() - t->cur.req);
	memset(&t->cur, 0, sizeof(t->cur));
	if (pid) {
		gs_handover_step("detach");
		if (detach || !t->children) {
			gs_ptrace(PTRACE_DETACH, pid, 0, (void *)(long)S->pending_sig);
		} else {
			/* committed first: a gilscope killed now leaves the probes, never a stopped process */
			gs_tracer_adopt(0, 0);
			gs_ptrace(PTRACE_CONT, pid, 0, (void *)(long)S->pending_sig);
		}
	} else {
		gs_tracer_adopt(0, 0);
	}
	S->pending_sig = 0;
	while (!t->cur.pid && t->npending) {
		struct hand h = t->pending[0];
		memmove(&t->pending[0], &t->pending[1], (t->npending - 1) * sizeof(t->pending[0]));
		t->npending--;
		begin_handover(S, &h);
	}
}

/* A CPython stopped at its exec: the journal is its, a breakpoint at its entry point. */
static void begin_handover(struct gs_session *S, struct hand *h)
{
	struct gs_proctree *t = S->tree;
	int err;
	t->cur = *h;
	t->cur.exec_ns = gs_now_ns();
	t->cur.req = gs_tracer_requests();
	t->pythons++;
	if ((err = gs_tracer_adopt(h->pid, h->status)) < 0) {
		gs_warn("cannot hold process %d for its GIL probes (%s): recording its thread states only", (int)h->pid,
			strerror(-err));
		memset(&t->cur, 0, sizeof(t->cur));
		gs_ptrace(PTRACE_CONT, h->pid, 0, NULL);
		return;
	}
	gs_handover_step("exec");
	t->cur.bp_addr = gs_proc_auxv(h->pid, 9 /* AT_ENTRY */);
	if (!t->cur.bp_addr || gs_ptrace_bp_insert(h->pid, t->cur.bp_addr, &t->cur.saved) < 0) {
		t->cur.bp_addr = 0;
		gs_session_set_up_python(S, h->pid, 1); /* best effort: libraries may be missing */
		end_handover(S, 0);
		return;
	}
	gs_handover_step("planted");
	gs_ptrace(PTRACE_CONT, h->pid, 0, NULL);
	gs_handover_step("running");
}

/* An exec stop: a CPython is handed over (now, or after the one in progress), anything else goes on. */
static void on_exec(struct gs_session *S, pid_t pid, int st)
{
	struct gs_proctree *t = S->tree;
	struct hand h = { .pid = pid, .status = st };
	uint64_t dev = 0, ino = 0;
	int py;
	t->execs++;
	gs_session_emit_argv(S, pid);
	if (pid == t->cur.pid)
		memset(&t->cur, 0, sizeof(t->cur)); /* a new image: the old one's breakpoint went with it */
	py = gs_exekind_python(&t->exes, pid, &dev, &ino);
	if (py == 0 && ino && !t->plain_full && gs_tracer_plain(dev, ino) == -ENOSPC)
		t->plain_full = 1; /* its next exec stops: resumed by the guardian, without this round trip */
	if (py != 1 || (!t->children && pid != t->root)) {
		if (pid == t->root)
			gs_proc_exe(pid, S->last_exe, sizeof(S->last_exe));
		if (!t->cur.pid)
			gs_tracer_adopt(0, 0); /* nothing of it to journal */
		gs_ptrace(PTRACE_CONT, pid, 0, NULL);
		return;
	}
	if (t->cur.pid || t->npending) {
		if (t->npending < MAX_PENDING) {
			t->pending[t->npending++] = h;
			return;
		}
		gs_warn("too many CPython processes started at once: process %d recorded without GIL events", (int)pid);
		gs_ptrace(PTRACE_CONT, pid, 0, NULL);
		return;
	}
	begin_handover(S, &h);
}

/* A report of the process being handed over (at the breakpoint, or a signal meanwhile). */
static void on_cur_stop(struct gs_session *S, pid_t pid, int st)
{
	struct gs_proctree *t = S->tree;
	int sig = 0;
	if (st >> 16 == PTRACE_EVENT_STOP) {
		int s = WSTOPSIG(st);
		gs_ptrace(s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU ? PTRACE_LISTEN : PTRACE_CONT,
			  pid, 0, NULL);
		return;
	}
	if (st >> 16 == 0 && WSTOPSIG(st) == SIGTRAP && t->cur.bp_addr) {
		gs_handover_step("breakpoint");
		if (gs_ptrace_bp_hit_and_remove(pid, t->cur.bp_addr, t->cur.saved) == 1) {
			gs_session_set_up_python(S, pid, 1);
			end_handover(S, 0);
			return;
		}
		sig = SIGTRAP;
	} else if (st >> 16 == 0) {
		sig = WSTOPSIG(st); /* a signal for the tracee: delivered */
	}
	gs_ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
}

/* A process of the tree ended. */
static void on_end(struct gs_session *S, pid_t pid, int st)
{
	struct gs_proctree *t = S->tree;
	if (pid == t->root && !S->exited) {
		/* the guardian saw the end first; gilscope, the parent, reaps it */
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		S->status = st;
		S->exited = 1;
	} else if (pid != t->root && !S->bpf_tree) {
		/* the fork watch's way (with the stops at exec, the scheduler program's record says it);
		 * the command's own status is the recording's last record (recorder.c) */
		struct gs_rec r = { .type = GS_REC_PROC_EXIT, .pid = (uint32_t)pid, .time = gs_now_ns(), .arg = st };
		gs_emit_rec(&S->emit, &r, NULL, 0);
	}
	for (size_t i = 0; i < t->npending; i++)
		if (t->pending[i].pid == pid) {
			memmove(&t->pending[i], &t->pending[i + 1], (t->npending - i - 1) * sizeof(t->pending[0]));
			t->npending--;
			break;
		}
	if (pid == t->cur.pid) {
		memset(&t->cur, 0, sizeof(t->cur));
		end_handover(S, 0);
	}
}

/* The report the guardian answered the wait with. 1 when it was a step of a CPython's hand-over
 * (its set-up may have taken milliseconds), else 0. */
static int service_one(struct gs_session *S)
{
	struct gs_proctree *t = S->tree;
	struct gs_tracer_report r;
	uint64_t pythons = t->pythons;
	pid_t pid;
	int st, err;
	t->waiting = 0;
	if ((err = gs_ptrace_wait_end_report(&r)) < 0) {
		t->done = 1; /* -ECHILD: every tracee ended; else the guardian is gone */
		return 0;
	}
	pid = r.pid;
	st = r.status;
	if (r.resumed) {
		/* an exec into a program known not to be CPython, already on its way (perhaps to its
		 * next exec): its argv is the image's that ran at its stop */
		t->execs++;
		emit_argv_of(S, pid, r.time, r.argv, (long)r.argv_len);
	} else if (WIFEXITED(st) || WIFSIGNALED(st))
		on_end(S, pid, st);
	else if (!WIFSTOPPED(st))
		return 0;
	else if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8)))
		on_exec(S, pid, st);
	else if (pid != t->cur.pid)
		gs_ptrace(PTRACE_CONT, pid, 0, (void *)(long)(st >> 16 == 0 ? WSTOPSIG(st) : 0));
	else {
		on_cur_stop(S, pid, st);
		return 1;
	}
	return t->pythons != pythons;
}

void gs_proctree_service(struct gs_session *S)
{
	struct gs_proctree *t = S->tree;
	if (!t || !t->waiting)
		return;
	/* the reports that wait already, up to a bound: one a loop pass would let a tree that starts
	 * processes fast get ahead of the guardian's queue; a hand-over's step ends the pass (the loop
	 * drains the rings between two set-ups) */
	for (int k = 0; k < SERVICE_BATCH; k++) {
		struct pollfd p = { .fd = -1, .events = POLLIN };
		if (service_one(S) || (p.fd = gs_proctree_fd(t)) < 0 || poll(&p, 1, 0) != 1)
			break;
	}
}
