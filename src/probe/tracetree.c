/* tracetree.c - the guardian's side of following a process tree (see tracetree.h). */
#define _GNU_SOURCE
#include "probe/tracetree.h"
#include "base/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

int gs_tracetree_proc_remove(struct gs_tracetree *T, pid_t pid)
{
	for (size_t i = 0; i < T->nprocs; i++)
		if (T->procs[i] == pid) {
			T->procs[i] = T->procs[--T->nprocs];
			return 1;
		}
	return 0;
}

void gs_tracetree_proc_add(struct gs_tracetree *T, pid_t pid)
{
	if (!T->root)
		T->root = pid;
	if (gs_tracetree_proc_remove(T, pid) == 0 && T->nprocs == T->cap) {
		T->cap = T->cap ? T->cap * 2 : 64;
		T->procs = gs_realloc_array(T->procs, T->cap, sizeof(*T->procs));
	}
	T->procs[T->nprocs++] = pid;
}

int gs_tracetree_plain(struct gs_tracetree *T, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < T->nplain; i++)
		if (T->plain[i].dev == dev && T->plain[i].ino == ino)
			return 0;
	if (T->nplain == GS_TRACETREE_PLAIN)
		return -ENOSPC;
	T->plain[T->nplain].dev = dev;
	T->plain[T->nplain++].ino = ino;
	return 0;
}

/* A report the guardian serves itself (the tracee resumed at once): 1; 0 when it is gilscope's. */
static int serve_itself(struct gs_tracetree *T, pid_t held, pid_t w, int st)
{
	unsigned long msg;
	int s = WSTOPSIG(st);
	if (w == held)
		return 0; /* being handed over: every report is gilscope's */
	if (WIFEXITED(st) || WIFSIGNALED(st))
		return !gs_tracetree_proc_remove(T, w); /* a thread's end is nobody's business */
	if (!WIFSTOPPED(st))
		return 1;
	switch (st >> 16) {
	case PTRACE_EVENT_EXEC:
		return 0;
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		if (ptrace(PTRACE_GETEVENTMSG, w, NULL, &msg) == 0)
			gs_tracetree_proc_add(T, (pid_t)msg);
		s = 0;
		break;
	case PTRACE_EVENT_STOP:
		/* a group-stop stays stopped until continued; a new task's first stop goes on */
		if (s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU) {
			ptrace(PTRACE_LISTEN, w, NULL, NULL);
			return 1;
		}
		s = 0;
		break;
	case 0:
		break; /* a signal for the tracee: delivered */
	default:
		s = 0; /* clone, vfork-done */
	}
	ptrace(PTRACE_CONT, w, NULL, (void *)(long)s);
	return 1;
}

/* An exec stop of w into a program gilscope named not CPython (never the root's, never the held
 * tracee's): 1, with r's time and argv filled in; 0 otherwise. */
static int plain_exec(const struct gs_tracetree *T, pid_t held, pid_t w, int st, struct gs_tracetree_report *r)
{
	static char raw[GS_TRACETREE_ARGV];
	char path[64];
	struct stat sb;
	long n;
	if (!T->nplain || w == T->root || w == held || st >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8)) ||
	    T->nq >= GS_TRACETREE_QUEUED / 2)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)w);
	if (stat(path, &sb) < 0)
		return 0;
	for (size_t i = 0; i < T->nplain; i++) {
		if (T->plain[i].dev != (uint64_t)sb.st_dev || T->plain[i].ino != (uint64_t)sb.st_ino)
			continue;
		r->time = gs_now_ns();
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)w);
		n = gs_read_file(path, raw, sizeof(raw));
		if (n > 0 && (r->argv = malloc((size_t)n)) != NULL) {
			memcpy(r->argv, raw, (size_t)n);
			r->argvlen = (size_t)n;
		}
		return 1;
	}
	return 0;
}

void gs_tracetree_take(struct gs_tracetree *T, pid_t held, pid_t w, int st)
{
	struct gs_tracetree_report r = { .pid = w, .status = st };
	if ((r.resumed = plain_exec(T, held, w, st, &r)) != 0)
		ptrace(PTRACE_CONT, w, NULL, NULL); /* first: the process goes on, gilscope is told after */
	else if (serve_itself(T, held, w, st))
		return;
	if (T->nq >= GS_TRACETREE_QUEUED && (w != held || T->nq == GS_TRACETREE_QUEUED + GS_TRACETREE_HELD)) {
		if (WIFSTOPPED(st) && !r.resumed)
			ptrace(PTRACE_CONT, w, NULL, NULL);
		free(r.argv);
		return;
	}
	T->q[T->nq++] = r;
}

int gs_tracetree_pop(struct gs_tracetree *T, pid_t pid, struct gs_tracetree_report *r)
{
	for (size_t i = 0; i < T->nq; i++) {
		if (pid != -1 && T->q[i].pid != pid)
			continue;
		*r = T->q[i];
		memmove(&T->q[i], &T->q[i + 1], (T->nq - i - 1) * sizeof(T->q[0]));
		T->nq--;
		return 1;
	}
	return 0;
}

void gs_tracetree_release(struct gs_tracetree *T)
{
	/* the processes still stopped (exec stops gilscope did not take up) go on; the guardian's
	 * exit lets every other tracee go */
	for (size_t i = 0; i < T->nprocs; i++)
		ptrace(PTRACE_DETACH, T->procs[i], NULL, NULL);
	for (size_t i = 0; i < T->nq; i++)
		free(T->q[i].argv);
	free(T->procs);
	memset(T, 0, sizeof(*T));
}
