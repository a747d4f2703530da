/* attset.h - the processes a `record -p` holds (recorder-internal; see session.h).
 *
 * One entry per process recorded by attaching: a -p PID, a descendant of one (running at the
 * start, or started later and found by a scan of /proc/PID/task/TID/children), or one the
 * discover hook named (recorder.h). Each entry keeps a pidfd (polled: the process ended), the GIL
 * probes gilscope put into it (none: thread states only, or probes inherited from the parent it
 * was forked from), and what its executable was when it was looked at, so that a process that
 * exec()s CPython later is looked at again. The set only keeps these facts; attach.c attaches and
 * detaches. gs_attset_children() is the /proc reader: the children of every thread of pid.
 */
#ifndef GS_ATTSET_H
#define GS_ATTSET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gs_pyprobes;

enum gs_att_kind {
	GS_ATT_STATES = 0, /* thread states only (not CPython, or its probes could not be had) */
	GS_ATT_PROBES,     /* GIL probes of its own (probes) */
	GS_ATT_INHERITED,  /* forked from a probed process: its probes and ring, detached with it */
	GS_ATT_REFUSED,    /* not attached (gone, refused): said once, never tried again */
	GS_ATT_GUARDED,    /* a launched tree's process its guardian traces: proctree.c's, left alone here */
};

struct gs_att {
	pid_t pid;
	int pidfd; /* -1: ended (or none) */
	int kind;  /* enum gs_att_kind */
	int ended;
	uint64_t ended_ns;         /* when its end was seen (gs_now_ns), 0: not ended */
	struct gs_pyprobes *p;     /* GS_ATT_PROBES: its probes (the session's first, or one of S->more) */
	uint64_t exe_dev, exe_ino; /* its executable when last looked at */
	unsigned retries;          /* looks left for CPython (a young process may not have mapped libpython) */
	uint64_t look_until_ns;    /* exec'd, not stopped: looked at every few ms until then (gs_now_ns) */
	uint64_t looked_ns;        /* when it was last looked at */
};

struct gs_attset {
	struct gs_att *a;
	size_t n, cap;
};

/* The entry of pid, NULL when none. A process that exec()s gets a new entry, its old image's kept
 * (ended) for what it holds: the live one is found first. */
struct gs_att *gs_attset_find(struct gs_attset *s, pid_t pid);
/* A new entry for pid (its pidfd opened, its executable noted): never NULL. */
struct gs_att *gs_attset_add(struct gs_attset *s, pid_t pid, int kind);
/* Processes not ended. */
size_t gs_attset_live(const struct gs_attset *s);
/* Has pid's executable changed since e was noted (an exec)? Notes the new one. */
int gs_attset_exe_changed(struct gs_att *e);
/* The children of every thread of pid (/proc/PID/task/TID/children) into out: how many. */
size_t gs_attset_children(pid_t pid, pid_t *out, size_t max);
/* Forgets the ended processes that hold nothing to undo (thread states, inherited probes) and the
 * refused ones that are gone: a long run of a forking server (or of --all-python among short
 * processes, some gone before they could be attached) keeps its set small, and a pid used again is
 * a new process. */
void gs_attset_prune(struct gs_attset *s);
/* Closes every pidfd and frees the entries (not their probes). */
void gs_attset_clear(struct gs_attset *s);

#endif
