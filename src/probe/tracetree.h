/* tracetree.h - the guardian's side of following a process tree (guardian-internal, tracer.c).
 *
 * Tracees auto-attached by PTRACE_O_TRACEFORK and friends (or seized by the fork watch) report
 * to the guardian. The reports it serves itself (fork, clone and vfork events, a new task's first
 * stop, group-stops, signals of tracees that are not being handed over) never reach gilscope; the
 * others wait in a queue for gilscope's OP_WAIT: exec stops, a process's end (not a thread's),
 * every report of the tracee being handed over. An exec stop into a program gilscope named not
 * CPython (gs_tracetree_plain) is resumed at once and queued all the same, marked resumed, with
 * the time of the stop and the argv read there: gilscope records it, and the process does not
 * wait for gilscope's loop (about 100 us an exec on this kind of machine). While gilscope lags
 * (half the queue waits for it), such exec stops wait for gilscope again, so that a tree that
 * execs fast cannot fill the queue with reports nobody waits for.
 */
#ifndef GS_TRACETREE_H
#define GS_TRACETREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GS_TRACETREE_QUEUED 256 /* reports kept for gilscope (each a stopped tracee or a process's end) */
#define GS_TRACETREE_HELD 4     /* more, for the tracee being handed over: its reports are never dropped */
#define GS_TRACETREE_PLAIN 64   /* programs whose exec stops the guardian resumes itself */
#define GS_TRACETREE_ARGV 4096  /* the bytes of /proc/PID/cmdline kept with an exec stop resumed */

struct gs_tracetree_report {
	pid_t pid;
	int status;
	int resumed;   /* an exec stop resumed by the guardian */
	uint64_t time; /* resumed: when the guardian took the stop (CLOCK_MONOTONIC) */
	char *argv;    /* resumed: the new image's cmdline (malloc'd; NULL when empty) */
	size_t argvlen;
};

struct gs_tracetree {
	struct gs_tracetree_report q[GS_TRACETREE_QUEUED + GS_TRACETREE_HELD];
	size_t nq;
	pid_t *procs; /* the tracees that are processes (their ends are reported) */
	size_t nprocs, cap;
	pid_t root; /* the first tracee: its exec stops are always gilscope's */
	struct {
		uint64_t dev, ino;
	} plain[GS_TRACETREE_PLAIN];
	size_t nplain;
};

/* pid is a process (its end is reported); the first one added is the root. */
void gs_tracetree_proc_add(struct gs_tracetree *T, pid_t pid);
/* pid is no process of the tree any more: 1 when it was one. */
int gs_tracetree_proc_remove(struct gs_tracetree *T, pid_t pid);
/* Exec stops of the program st_dev dev, st_ino ino are resumed by the guardian from now on: 0,
 * or -ENOSPC when GS_TRACETREE_PLAIN programs are known already. */
int gs_tracetree_plain(struct gs_tracetree *T, uint64_t dev, uint64_t ino);
/* One report w, st (held: the tracee being handed over, whose every report is gilscope's):
 * served, or queued for gilscope. When gilscope does not keep up (the queue is full), the
 * tracee goes on unattended rather than wait forever; never the held one (it stops at most
 * once between two answers of gilscope's). */
void gs_tracetree_take(struct gs_tracetree *T, pid_t held, pid_t w, int st);
/* The first queued report of pid (-1: any) moves to *r (the caller frees r->argv): 1, or 0. */
int gs_tracetree_pop(struct gs_tracetree *T, pid_t pid, struct gs_tracetree_report *r);
/* The guardian lets go: every process still stopped goes on, the queue is forgotten. */
void gs_tracetree_release(struct gs_tracetree *T);

#endif
