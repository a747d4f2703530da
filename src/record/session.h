/* session.h - the state one `record` run shares between its steps (recorder-internal).
 *
 * The recorder (recorder.c) sets a session up and tears it down; launching (launch.c) or
 * attaching (attach.c) finds the target, the event loop (loop.c) waits for events, signals and
 * the end, and the collector (collect.c) drains every ring into the merge and the merge into the
 * sinks. Each part keeps its own state in its own module (event list, scheduler source, GIL
 * probes, stack sampler, merge); the session only ties them together and holds the run's facts
 * (target, exit status, counts of lost and malformed events).
 */
#ifndef GS_SESSION_H
#define GS_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "probe/evlist.h"
#include "record/attset.h"
#include "record/counters.h"
#include "record/emit.h"
#include "record/exekind.h"
#include "record/merge.h"
#include "record/pidset.h"
#include "record/proctree.h"
#include "record/pyprobes.h"
#include "record/recorder.h"
#include "record/sched.h"
#include "record/sink.h"
#include "record/stacks.h"
#include "record/tidmap.h"

struct gs_session {
	const struct gs_record_opts *o;
	char tracefs[256];
	int ncpu;
	struct gs_evlist *ev; /* scheduler and probe events, one ring per CPU */
	struct gs_sched_source *sched;
	struct gs_pyprobes probes; /* the first CPython's */
	int probes_used;           /* probes was given to a CPython (its set-up may have failed) */
	int find_err;              /* attach.c: why the last attach found no CPython (-ENOTSUP: refused for good) */
	struct gs_pyprobes **more; /* every later CPython's (inline probes only), nmore of them */
	size_t nmore;
	struct gs_proctree *tree;        /* launch: the command's tree followed (NULL: attach) */
	struct gs_pyimage_cache *images; /* every CPython image analysed, once per file */
	struct gs_pidset *pypids;        /* --python-only: the processes that run CPython (NULL: all kept) */
	int have_python;                 /* GIL probes are in place */
	struct gs_stacks *stacks;        /* NULL: no stack sampling */
	struct gs_counters *counters;    /* -e, --sample-event (NULL: none) */
	struct gs_merge *merge;          /* queues: one per CPU, the recorder's own, the inline ring */
	struct gs_emit emit;             /* the recorder's own records */
	int inline_queue;
	int sched_queue;     /* a scheduler source that drains itself (BPF) */
	uint64_t *ring_last; /* per CPU: the newest time read from its ring */
	int started;         /* the sinks were started */
	pid_t target;
	char last_exe[4096]; /* the last program the command exec'd, when not CPython */
	int status, exited;  /* the command's wait status, once it exited */
	int pending_sig;     /* a signal that arrived while gilscope held the command */
	int ready_fd;        /* --import: the command writes here once its imports are done */
	uint64_t lost, throttled, corrupt;
	int exec_noted;           /* the instrumented CPython's exec() was said */
	struct gs_tidmap *tidmap; /* inline probes' namespace thread ids to host ones */
	uint64_t written_to;      /* every event before this time is in the sinks (the last drain's watermark) */
	int attach;               /* record -p (or discovered processes): attach.c, not launch.c */
	struct gs_attset att;     /* attach: every process attached, or refused once (attset.h) */
	uint64_t scanned_ns, discovered_ns; /* attach: the last scan for descendants, the last discover call */
	int exec_stops;                     /* followed processes are stopped at their exec (sched.h) */
	int bpf_tree; /* launch, the stops at exec (the default with BPF): what the guardian's first-thread
		       * tracing (proctree.c) does not see followed as attach.c follows it */
	pid_t execq[1024],
		forkq[1024]; /* stopped at their exec (as many as the source may stop), forked: for the next tick */
	unsigned char exec_running[1024]; /* execq[i] was not stopped (its parent would have seen it) */
	size_t nexecq, nforkq;
	struct gs_exekind exes; /* attach: which programs are CPython */
};

/* collect.c: drains every ring into the merge, then hands the records older than the
 * watermark (all of them when final) to the sinks, and flushes them. Returns how many. */
size_t gs_session_drain(struct gs_session *S, int final);
/* One record straight to the sinks, bypassing the merge (the last records of a run). */
void gs_session_write(struct gs_session *S, const struct gs_rec *r, const void *payload, size_t plen);
/* Writes out what the sinks buffered (a sink that fails receives nothing more). */
void gs_session_flush(struct gs_session *S);

/* setup.c: the GIL probes and the stack sampler for the CPython in pid (at its entry point
 * when launched); on failure, thread states only, said on stderr and in the recording. The first
 * CPython gets S->probes (uprobes when inline probes cannot be had); every later one (a child
 * that exec'd CPython) gets probes of its own in S->more, inline only (a failure: thread states
 * only). Every one with probes gets its threads' stacks and Python names sampled
 * (gs_session_sample_python). gs_session_free_more() closes the later ones' probes: the sampler
 * (which reads their layouts) must be freed first. */
void gs_session_set_up_python(struct gs_session *S, pid_t pid, int may_inline);
void gs_session_free_more(struct gs_session *S);
/* The stack sampler (and thread names) started for py's process, or py added to it (stacks.h):
 * py must outlive S->stacks. */
void gs_session_sample_python(struct gs_session *S, const struct gs_python *py);
/* setup.c, at the end of a launched recording (the guardian gone): every process that still
 * carries inline probes of this recording (a CPython of the tree, a child forked from one: a
 * daemon, an orphan, a background job) gets its code back and loses the trampolines and the
 * ring, as at the end of an attach (pyprobes.h); what cannot be done is said. */
void gs_session_detach_probes(struct gs_session *S);

/* loop.c */
int gs_session_signalfd(sigset_t *old);
/* Passes the signals gilscope received on to child (if > 0); returns how many, SIGCHLD and
 * SIGUSR1 aside. SIGUSR1 asks for a barrier (README: record --sync-fd): its time goes to
 * *barrier when barrier is not NULL (the first one pending is kept), else it is dropped. */
int gs_session_take_signals(int sfd, pid_t child, uint64_t *barrier);
int gs_session_forward_signals(int sfd, pid_t child); /* take_signals without barriers */
/* Records until the command exits (child > 0; with --wait-children, until its tree ended), every
 * attached process ended (unless keep_running), the duration passes, or the user stops it. */
void gs_session_loop(struct gs_session *S, int sfd, pid_t child);

/* launch.c: runs o->argv, following its process tree (proctree.h) to every CPython in it, and
 * records until it exits (its wait status in S), or with --wait-children until the tree ends. attach.c: records the running process o->pid until it ends or the
 * user stops. Both: 0 once recording ran (finish it), -1 when it could not start (said on
 * stderr, the target as it was). */
int gs_session_launch(struct gs_session *S, int sfd, sigset_t *oldmask);
int gs_session_attach(struct gs_session *S, int sfd);
/* attach.c: how a process came to be attached. */
enum gs_attach_how {
	GS_ATTACH_GIVEN,      /* -p PID: every refusal or failure said */
	GS_ATTACH_DISCOVERED, /* named by the discover hook: the same */
	GS_ATTACH_RUNNING,    /* a descendant running when found at the start: quiet when not CPython */
	GS_ATTACH_NEW,        /* a descendant started while recording: its scheduler events inherited */
};
/* Attaches to pid (once: a pid in S->att is left as it is): the first CPython gets S->probes,
 * every later one inline probes in S->more, each its stacks and thread names sampled; a process forked from a probed one
 * keeps the probes it inherited; anything else thread states (with bpf_tree, one the guardian
 * traces is proctree.c's: noted, left alone). 1 with GIL probes, 0 thread states only, -1 not
 * attached (said on stderr as how says). */
int gs_session_attach_one(struct gs_session *S, pid_t pid, int how);
/* From the loop: the processes stopped at their exec and those forked since the last tick (told
 * by the scheduler source: gs_session_exec_stopped, gs_session_forked), the descendants' scan
 * (every 100 ms with o->descendants; once a second when the source stops processes at their
 * exec: a safety net then), the discover hook (about once a second). */
void gs_session_attach_tick(struct gs_session *S);
/* The scheduler source stops no process at its exec any more; those it stopped are let go. */
void gs_session_exec_stops_end(struct gs_session *S);
/* collect.c, from the scheduler source: pid was stopped at its exec (it gets SIGCONT, always; or
 * running: it exec'd and was not stopped, as its parent would have seen it), or pid is a new
 * process forked from a followed one. */
void gs_session_exec_stopped(struct gs_session *S, pid_t pid, int running);
void gs_session_forked(struct gs_session *S, pid_t pid);
/* proctree.c: the image's argv of pid in the recording (META "argv", LEN:ARG per argument). */
void gs_session_emit_argv(struct gs_session *S, pid_t pid);
/* May gilscope attach to pid? Checked without touching the process. 0, or -errno with why. */
int gs_attach_check(pid_t pid, char *why, size_t whylen);

#endif
