/* inject.c - seize a running process, run system calls in it, let it go as it was (see inject.h). */
#define _GNU_SOURCE
#include "probe/inject.h"
#include "base/procfs.h"
#include "base/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int gs_range_find(const struct gs_range *r, size_t n, uint64_t pc, int from_start)
{
	for (size_t i = 0; i < n; i++)
		if (pc < r[i].hi && (pc > r[i].lo || (from_start && pc == r[i].lo)))
			return (int)i;
	return -1;
}

void gs_inject_regs(const struct user_regs_struct *saved, uint64_t scratch, long nr, const uint64_t args[6],
		    struct user_regs_struct *out)
{
	*out = *saved;
	out->rip = scratch;
	out->rax = (unsigned long long)nr;
	out->orig_rax = (unsigned long long)-1;
	out->rdi = args[0];
	out->rsi = args[1];
	out->rdx = args[2];
	out->r10 = args[3];
	out->r8 = args[4];
	out->r9 = args[5];
}

static struct gs_thread *find_thread(struct gs_threads *ts, pid_t tid)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i].tid == tid)
			return &ts->t[i];
	return NULL;
}

static void drop_thread(struct gs_threads *ts, struct gs_thread *t)
{
	size_t i = (size_t)(t - ts->t);
	memmove(&ts->t[i], &ts->t[i + 1], (ts->n - i - 1) * sizeof(*t));
	ts->n--;
}

static void keep_signal(struct gs_thread *t, int sig)
{
	if (t->nsigs < (int)GS_ARRAY_SIZE(t->sigs))
		t->sigs[t->nsigs++] = sig;
}

/* Waits for t's next stop. 0 at a stop (*st its status), -ESRCH when it is gone (dropped
 * from the set: t is no longer valid). */
static int wait_stop(struct gs_threads *ts, struct gs_thread *t, int *st)
{
	pid_t tid = t->tid;
	while (waitpid(tid, st, __WALL) < 0)
		if (errno != EINTR) {
			drop_thread(ts, t);
			return -ESRCH;
		}
	if (!WIFSTOPPED(*st)) {
		drop_thread(ts, t);
		return -ESRCH;
	}
	return 0;
}

/* Resumes t and waits until it stops again: by an interrupt after pause_us (pause_us > 0), or
 * by a SIGTRAP (pause_us 0: an injected call's int3). A signal met on the way is kept. 0,
 * -ESRCH (t gone and dropped), or -errno. */
static int run_until_stop(struct gs_threads *ts, struct gs_thread *t, long pause_us)
{
	int st, err, interrupted = 0;
	for (int guard = 0; guard < 1000; guard++) {
		if (ptrace(PTRACE_CONT, t->tid, NULL, NULL) < 0)
			return errno == ESRCH ? (drop_thread(ts, t), -ESRCH) : -errno;
		if (pause_us > 0 && !interrupted) {
			struct timespec d = { 0, pause_us * 1000 };
			nanosleep(&d, NULL);
			ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
			interrupted = 1;
		}
		if ((err = wait_stop(ts, t, &st)) < 0)
			return err;
		if ((st >> 16) == PTRACE_EVENT_STOP) {
			if (pause_us > 0)
				return 0; /* our interrupt (or a group stop: stopped either way) */
			continue;
		}
		if ((st >> 16) == 0 && WSTOPSIG(st) == SIGTRAP && pause_us == 0)
			return 0;
		if ((st >> 16) == 0)
			keep_signal(t, WSTOPSIG(st)); /* delivered again when the thread is let go */
	}
	return -EAGAIN;
}

/* Seizes and interrupts one thread. 0, 1 when it exited meanwhile, or -errno with why. */
static int seize_one(struct gs_threads *ts, pid_t tid, char *why, size_t whylen)
{
	struct gs_thread t = { .tid = tid, .state = gs_task_state(ts->pid, tid) };
	int st;
	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0) {
		int e = errno;
		if (e == ESRCH)
			return 1;
		snprintf(why, whylen, "cannot attach to thread %d of process %d: %s", (int)tid, (int)ts->pid,
			 strerror(e));
		return -e;
	}
	ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	while (waitpid(tid, &st, __WALL) < 0)
		if (errno != EINTR)
			return 1;
	if (!WIFSTOPPED(st))
		return 1;
	if ((st >> 16) == 0)
		keep_signal(&t, WSTOPSIG(st)); /* a signal came first: stopped all the same */
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 64;
		ts->t = gs_realloc_array(ts->t, ts->cap, sizeof(*ts->t));
	}
	ts->t[ts->n++] = t;
	return 0;
}

int gs_threads_seize(struct gs_threads *ts, pid_t pid, char *why, size_t whylen)
{
	ts->pid = pid;
	for (int round = 0; round < 100; round++) {
		pid_t *tids;
		int n = gs_task_list(pid, &tids), added = 0, err = 0;
		if (n < 0) {
			snprintf(why, whylen, "cannot list the threads of process %d: %s", (int)pid, strerror(-n));
			return n;
		}
		for (int i = 0; i < n && err >= 0; i++) {
			if (find_thread(ts, tids[i]))
				continue;
			err = seize_one(ts, tids[i], why, whylen);
			added += err == 0;
		}
		free(tids);
		if (err < 0)
			return err;
		if (!added)
			return 0;
	}
	snprintf(why, whylen, "process %d keeps creating threads faster than gilscope can attach", (int)pid);
	return -EAGAIN;
}

/* One pass: runs for a moment each held thread inside the ranges. How many were inside, or
 * -errno. */
static int settle_pass(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, long pause_us)
{
	int inside = 0;
	for (size_t i = 0; i < ts->n;) {
		struct gs_thread *t = &ts->t[i];
		struct user_regs_struct regs;
		int err;
		if (ptrace(PTRACE_GETREGS, t->tid, NULL, &regs) < 0 || gs_range_find(r, n, regs.rip, from_start) < 0) {
			i++;
			continue;
		}
		inside++;
		err = run_until_stop(ts, t, pause_us);
		if (err == -ESRCH)
			continue; /* dropped: ts->t[i] is the next one */
		if (err < 0)
			return err;
		i++;
	}
	return inside;
}

int gs_threads_settle(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, char *why,
		      size_t whylen)
{
	for (int tries = 0; tries < 200; tries++) {
		int inside = settle_pass(ts, r, n, from_start, 100 + 50 * tries);
		int err;
		if (inside < 0) {
			snprintf(why, whylen, "cannot move the threads of process %d out of the patched code: %s",
				 (int)ts->pid, strerror(-inside));
			return inside;
		}
		/* a thread that ran may have started another one */
		if ((err = gs_threads_seize(ts, ts->pid, why, whylen)) < 0)
			return err;
		if (!inside && settle_pass(ts, r, n, from_start, 100) == 0)
			return 0;
	}
	snprintf(why, whylen, "a thread of process %d stays inside the code to patch", (int)ts->pid);
	return -EBUSY;
}

void gs_threads_release(struct gs_threads *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		ptrace(PTRACE_DETACH, ts->t[i].tid, NULL, NULL);
	for (size_t i = 0; i < ts->n; i++)
		for (int k = 0; k < ts->t[i].nsigs; k++)
			syscall(SYS_tgkill, ts->pid, ts->t[i].tid, ts->t[i].sigs[k]);
	free(ts->t);
	ts->t = NULL;
	ts->n = ts->cap = 0;
}

int gs_inject_syscall(struct gs_threads *ts, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret)
{
	static const uint8_t code[3] = { 0x0f, 0x05, 0xcc }; /* syscall; int3 */
	struct gs_thread *t = find_thread(ts, ts->pid);
	struct user_regs_struct saved, regs;
	uint8_t orig[3];
	pid_t tid;
	int err;

	if (!t && ts->n)
		t = &ts->t[0];
	if (!t)
		return -ESRCH;
	tid = t->tid;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &saved) < 0)
		return -errno;
	if ((err = gs_mem_read(ts->pid, scratch, orig, sizeof(orig))) < 0 ||
	    (err = gs_mem_write(ts->pid, scratch, code, sizeof(code))) < 0)
		return err;
	gs_inject_regs(&saved, scratch, nr, args, &regs);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &regs) < 0) {
		err = -errno;
		goto restore;
	}
	if ((err = run_until_stop(ts, t, 0)) < 0)
		goto restore;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) < 0)
		err = -errno;
	else if (regs.rip != scratch + 3)
		err = -EIO; /* stopped somewhere else: not our call */
	else
		*ret = (int64_t)regs.rax;
restore:
	gs_mem_write(ts->pid, scratch, orig, sizeof(orig));
	if (err != -ESRCH)
		ptrace(PTRACE_SETREGS, tid, NULL, &saved);
	return err;
}

static int ops_syscall(void *ctx, pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret,
		       int *pending_sig)
{
	(void)pid;
	(void)pending_sig; /* kept per thread, sent again at the release */
	return gs_inject_syscall(ctx, scratch, nr, args, ret);
}

static int ops_write(void *ctx, pid_t pid, uint64_t addr, const void *src, size_t len)
{
	(void)ctx;
	return gs_mem_write(pid, addr, src, len);
}

static int ops_fs_base(void *ctx, pid_t pid, uint64_t *fs)
{
	struct user_regs_struct regs;
	(void)ctx;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0)
		return -errno;
	*fs = regs.fs_base;
	return 0;
}

void gs_inject_ops(struct gs_threads *ts, struct gs_inline_ops *ops)
{
	ops->syscall = ops_syscall;
	ops->write = ops_write;
	ops->fs_base = ops_fs_base;
	ops->ctx = ts;
}

int gs_inject_parse_owner(const char *mark, size_t len, pid_t *owner, int *fd)
{
	static const char pre[] = "/proc/";
	size_t i = sizeof(pre) - 1;
	uint64_t a = 0, b = 0;
	size_t da = 0, db = 0;

	if (len < i || memcmp(mark, pre, i) != 0)
		return -1;
	for (; i < len && mark[i] >= '0' && mark[i] <= '9' && da < 10; i++, da++)
		a = a * 10 + (uint64_t)(mark[i] - '0');
	if (!da || len - i < 4 || memcmp(mark + i, "/fd/", 4) != 0)
		return -1;
	for (i += 4; i < len && mark[i] >= '0' && mark[i] <= '9' && db < 10; i++, db++)
		b = b * 10 + (uint64_t)(mark[i] - '0');
	if (!db || i >= len || mark[i] != '\0' || a == 0 || a > 0x7fffffff || b > 0x7fffffff)
		return -1;
	*owner = (pid_t)a;
	*fd = (int)b;
	return 0;
}

struct probes_scan {
	pid_t pid, owner;
	uint64_t tramp;
	int fd;
};

static int probes_cb(const struct gs_map *m, void *arg)
{
	struct probes_scan *ps = arg;
	char mark[64];
	if (m->path[0] || strcmp(m->perms, "rwxp") != 0 || m->end - m->start != GS_INLINE_TRAMP_SIZE ||
	    gs_mem_read(ps->pid, m->start + GS_INLINE_OWNER_OFF, mark, sizeof(mark)) < 0 ||
	    gs_inject_parse_owner(mark, sizeof(mark), &ps->owner, &ps->fd) < 0)
		return 0;
	ps->tramp = m->start;
	return 1;
}

int gs_inject_find_probes(pid_t pid, uint64_t *tramp, pid_t *owner, int *alive)
{
	struct probes_scan ps = { .pid = pid };
	char path[64], link[64];
	ssize_t n;
	if (gs_maps_foreach(pid, probes_cb, &ps) != 1)
		return 0;
	*tramp = ps.tramp;
	*owner = ps.owner;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)ps.owner, ps.fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	*alive = n > 0 && strncmp(link, "/memfd:gilscope-ring", 20) == 0;
	return 1;
}
