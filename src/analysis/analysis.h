/* analysis.h - the per-thread state machine: turns the time-ordered records of a recording
 * into each thread's partition of its lifetime and per-process GIL figures.
 *
 * Every thread, at every instant, is in exactly one of:
 *   held       - it holds the GIL (from its `locked = 1` store to its `locked = 0` store),
 *                whatever the scheduler does with it (held_offcpu_ns: the part spent preempted
 *                or asleep while holding);
 *   wait       - it entered take_gil and does not hold the GIL yet (wait_sleep_ns: asleep in
 *                the condition variable, per4m's S(GIL); wait_runnable_ns: woken, waiting for a CPU);
 *   run_nogil  - on a CPU without the GIL (C code that released it, or no Python at all);
 *   sleeping   - blocked, not for the GIL (S, and D: uninterruptible_ns is the D part);
 *   runnable   - ready to run, waiting for a CPU (preempted R+, or woken), not for the GIL;
 *   unknown    - before its first scheduler event, when that could not be known.
 */
#ifndef GS_ANALYSIS_H
#define GS_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/recfile.h"

enum gs_sched {
	GS_SCHED_UNKNOWN = 0,
	GS_SCHED_ONCPU,
	GS_SCHED_RUNNABLE,
	GS_SCHED_SLEEP,
	GS_SCHED_DISK
};
enum gs_gil {
	GS_GIL_NONE = 0,
	GS_GIL_WAIT,
	GS_GIL_HELD
};

/* While a thread waited: how long each other thread held the GIL (holder 0: the GIL was free,
 * handed over but not yet taken). */
struct gs_blame {
	uint32_t holder;
	uint64_t ns;
};

/* One of the longest holds of the run. */
struct gs_hold {
	uint32_t pid, tid;
	int gil; /* GIL number in its process */
	uint64_t start_ns, ns;
	int max_waiters;    /* threads waiting at once during the hold, at most */
	uint64_t waited_ns; /* waiting thread-time it caused */
	uint64_t stack;     /* the Python stack sampled most during the hold, 0: none sampled */
	uint32_t samples;   /* stack samples taken during the hold */
	int open;           /* still held when the recording ended */
};

#define GS_TOP_HOLDS 10

/* Python stack samples, classified by what the thread was doing when sampled. */
enum gs_stack_what {
	GS_WHAT_HOLD = 0, /* holding the GIL */
	GS_WHAT_WAIT,     /* waiting for it */
	GS_WHAT_NOGIL,    /* on a CPU without it */
	GS_WHAT_OFFCPU,   /* asleep or runnable, not for the GIL */
	GS_WHAT_BLOCKING, /* holding it while at least one thread waited */
	GS_WHAT_OFFGIL,   /* without it and not waiting: NOGIL and OFFCPU together (per4m's offgil) */
	GS_WHAT_N
};
/* Their names on the command line and in every output: hold, wait, cpu, offcpu, blocking, offgil. */
extern const char *const gs_what_names[GS_WHAT_N];

struct gs_frame_def {
	char *qualname, *filename; /* native frames: function and module */
	int line;
	unsigned native; /* 0: a Python frame; else 1 | GS_NATFRAME_* << 1 */
};

struct gs_stack_count {
	uint32_t what, tid; /* tid 0: all threads */
	uint64_t stack;
	uint64_t amount; /* samples; for GS_WHAT_WAITED_NS, nanoseconds */
	uint32_t peer;   /* GS_WHAT_HELD_FOR: the holder (tid is the waiter) */
};

/* Counts kept apart from the flame graph kinds: the holder's stacks sampled while one given
 * thread waited (key: waiter in tid, holder in peer). */
#define GS_WHAT_HELD_FOR 100u
/* Each wait's time (in `amount`: nanoseconds) and count, by the stack sampled first while it
 * waited (a parked thread holds still: the stack it started waiting with); stack 0: waits no
 * sample fell in (shorter than the sampling period). */
#define GS_WHAT_WAITED_NS 101u
#define GS_WHAT_WAITS 102u

#define GS_THREAD_PYNAME_MAX 128

struct gs_convoy;
struct gs_counter_table;

struct gs_thread {
	uint32_t pid, tid;
	char name[16];                     /* the kernel's (comm) */
	char pyname[GS_THREAD_PYNAME_MAX]; /* threading.Thread.name as last read (PYNAME), "" none */
	int is_main, exited, seen_gil_event, from_start;
	uint64_t first_ns, end_ns;
	uint64_t held_ns, held_offcpu_ns;
	uint64_t wait_ns, wait_sleep_ns, wait_runnable_ns, wait_oncpu_ns;
	uint64_t run_nogil_ns, sleeping_ns, uninterruptible_ns, runnable_ns, unknown_ns;
	uint64_t acquisitions, releases, forced_drops, drop_requests;
	/* as the holder: drop requests it received, and how long its forced drops took after them */
	uint64_t drop_requests_received, drop_latency_sum_ns, drop_latency_max_ns;
	uint64_t longest_hold_ns, longest_wait_ns;
	uint64_t lost_while_alive; /* events the kernel or the probes lost while it lived: its figures may miss them */
	int gil_index;             /* the GIL (interpreter) of its last GIL event: index in gils, -1 none */
	uint32_t entry_frame;      /* the thread's own outermost Python function (below threading's), 0 unknown */
	struct gs_convoy *convoy;  /* its holds and waits as convoy.h sees them, NULL: none yet */
	struct gs_blame *blame;    /* who held the GIL while it waited */
	size_t nblame, cap_blame;
	/* state */
	enum gs_sched sched;
	enum gs_gil gil;
	uint64_t t_last, hold_start, wait_start;
	/* the current hold's stack samples: a majority vote (Boyer-Moore) for its dominant stack */
	uint64_t hold_stack;
	uint32_t hold_votes, hold_samples;
	uint64_t wait_stack; /* the first stack sampled during the current wait, 0: none yet */
	/* while waiting (blame.h): its place in the GIL's waiter set, and where in the GIL's log
	 * its blame was last settled */
	uint32_t waiter_pos;
	uint64_t blame_clock, blame_seg;
	uint64_t *ctr; /* record -e: GS_CTR_MAX x GS_CTR_NSTATES events by GIL state (counters.h), NULL: none */
	/* live.h's: the longest wait that ended since its last interval mark, and how many times the
	 * thread was shown after it exited */
	uint64_t interval_wait_max_ns;
	uint32_t shown_exited;
};

/* A stretch of a GIL's contended time with one holder (blame.h): from `clock` on the GIL's
 * wait_clock to the next segment's. */
struct gs_blame_seg {
	uint32_t holder;
	uint64_t clock;
};

/* One GIL: the process's (3.9-3.11, and the main interpreter's), or a sub-interpreter's own
 * (3.12+), told apart by the address of its `locked` field (0: not known, the main one). */
struct gs_gilstat {
	uint32_t pid;
	uint64_t ref;
	int number; /* 1 = the first GIL the process used (the main interpreter's) */
	uint64_t first_ns, end_ns;
	uint64_t held_ns, contended_ns;
	uint64_t acquisitions, forced_drops, drop_requests;
	uint64_t drop_latency_sum_ns, drop_latency_max_ns, drop_latency_n;
	/* state */
	uint32_t holder; /* tid, 0 = free */
	int nwaiters;
	uint32_t *waiters; /* thread indexes of the waiting threads */
	size_t cap_waiters;
	struct gs_blame_seg *segs; /* the holders while threads waited, not yet settled (blame.h) */
	size_t nsegs, cap_segs;
	uint64_t seg_base;   /* index of segs[0] since the start */
	uint64_t wait_clock; /* contended time so far */
	int hold_max_waiters;
	uint64_t hold_waited_ns;
	int drop_pending;
	uint64_t drop_time, t_last;
	uint32_t convoy_forced_by; /* the last release was a forced drop by this thread, 0: voluntary (convoy.h) */
};

/* One program a process ran: it starts at the process's start or at an exec(). */
struct gs_image {
	uint64_t start_ns;
	int is_python; /* described by python.version: a CPython gilscope traced */
	int forked;    /* known only as a fork() of a CPython process */
	char python_version[32];
	char python_path[512];
	char python_build[192];
	char python_error[512];
	char *argv; /* its arguments as the recorder read them at the exec, LEN:ARG each; NULL: unknown */
};

/* What the native-stack sampler did (record --native): the recorder's native.* facts. */
struct gs_native_figures {
	uint64_t merged;        /* Python stacks merged with a native one */
	uint64_t frozen;        /* of those, exact: the thread was off-CPU since the copy */
	uint64_t mismatched;    /* C and Python stacks disagreed (Python kept alone) */
	uint64_t missing;       /* Python stacks with no native copy to pair */
	uint64_t switch_copies; /* stacks copied at a switch off the CPU */
	uint64_t cpu_copies;    /* stacks copied while running (cpu-clock) */
	uint64_t lost;          /* copies the kernel dropped */
	uint64_t unwinds;
	uint64_t truncated; /* unwindings cut short */
	uint64_t unknown_symbols;
	uint64_t frozen_mismatched; /* exact pairs that disagreed */
};

/* The figures by name, in the order of report --json's native_stacks object. */
struct gs_native_field {
	const char *name; /* the JSON key; the recording's fact is "native." + name */
	size_t offset;    /* in struct gs_native_figures */
};
extern const struct gs_native_field gs_native_fields[11];

struct gs_process {
	uint32_t pid;
	uint32_t ppid;   /* the process that forked it, 0: unknown (the command, attach) */
	int have_exit;   /* exit_status is known (a process of a launched tree that ended) */
	int exit_status; /* its wait status */
	int is_python;   /* GIL events of this process are meaningful */
	int exited;
	char python_version[32];
	char python_path[512];
	char python_build[192]; /* "static, stripped" ... */
	char mechanism[1024];
	int drops_told_apart;        /* 1 or 0 from python.forced_drops_told_apart; -1: not said (format 1) */
	uint64_t switch_interval_us; /* python.switch_interval_us as last read from it, 0: not read */
	char python_error[512];      /* why GIL events are not recorded for it (not CPython, unsupported...) */
	/* python_*: the last CPython among its images (an exec does not erase it); is_python: the
	 * current image is that CPython */
	struct gs_image *images; /* the programs it ran, oldest first (meta.h) */
	size_t nimages;
	uint64_t first_ns, end_ns;
	int main_gil; /* index in gils, -1 none yet */
	int ngils;
	uint32_t shown_exited; /* live.h's: how many snapshots listed it after it ended */
};

/* What a thread is doing during a slice of time (the finest split of the partition). */
enum gs_slice {
	GS_SLICE_HELD = 0,
	GS_SLICE_HELD_OFFCPU,
	GS_SLICE_WAIT_SLEEP,
	GS_SLICE_WAIT_RUNNABLE,
	GS_SLICE_WAIT_ONCPU,
	GS_SLICE_NOGIL,
	GS_SLICE_SLEEP,
	GS_SLICE_DISK,
	GS_SLICE_RUNNABLE,
	GS_SLICE_UNKNOWN,
	GS_SLICE_N
};

enum gs_gil_event {
	GS_GE_RELEASE = 0,
	GS_GE_ACQUIRE,
	GS_GE_REQUEST,
	GS_GE_WAITERS
};

struct gs_gilstat;

/* Optional callbacks while the records stream through (exporters): each accounted slice of
 * each thread's time (consecutive slices may have the same kind), and GIL happenings. */
struct gs_hooks {
	void *ctx;
	void (*slice)(void *ctx, const struct gs_thread *t, enum gs_slice kind, uint64_t start, uint64_t end);
	void (*gil)(void *ctx, enum gs_gil_event ev, const struct gs_gilstat *g, const struct gs_thread *t,
		    uint64_t time);
	void (*counter)(void *ctx, uint32_t pid, uint32_t tid, uint64_t time, const char *name, uint64_t value);
	/* a stack sample as classified (enum gs_stack_what: HOLD, WAIT, NOGIL or OFFCPU) */
	void (*sample)(void *ctx, const struct gs_thread *t, uint64_t time, uint64_t stack, int what);
};

/* The blame lookup table (blame.c): holder -> index in one thread's blame list. */
struct gs_blame_slot {
	uint32_t gen, holder, index;
};

struct gs_analysis {
	const struct gs_hooks *hooks;
	struct gs_thread *threads;
	size_t nthreads, cap_threads;
	uint32_t *index; /* open addressing tid -> thread index + 1 */
	size_t index_cap;
	struct gs_process *procs;
	size_t nprocs, cap_procs;
	struct gs_gilstat *gils;
	size_t ngils, cap_gils;
	struct gs_hold top_holds[GS_TOP_HOLDS]; /* longest first */
	int ntop_holds;
	struct gs_blame_slot *blame_map;
	size_t blame_map_cap;
	uint32_t blame_map_gen;
	/* Python stacks: frame and stack definitions by id, and sample counts */
	struct gs_frame_def *frames; /* id - 1 -> a Python or native frame */
	size_t nframes;
	uint32_t **stacks; /* id - 1 -> [n, frame ids...], Python and native frames mixed */
	size_t nstacks;
	struct gs_stack_count *counts;
	size_t ncounts, cap_counts;
	uint64_t stack_samples, stack_errors, stack_rate_hz;
	uint64_t names_read, names_failed; /* the recorder's names.read, names.failed (threads named, failed reads) */

	uint64_t start_ns, end_ns, last_ns;
	uint64_t lost_events;
	uint64_t out_of_order, anomalies, init_writes;
	uint64_t off_cpu_gil_events; /* GIL events stamped while the scheduler had the thread off-CPU */
	uint64_t records, gil_events, sched_events;
	uint64_t recorder_cpu_ns, recorder_max_rss_kb;
	/* GIL events of threads in another PID namespace: filed under their host ids, or not
	 * attributed (tids.* facts; both 0 when every process was in gilscope's namespace) */
	uint64_t tids_translated, tids_unattributed;
	uint64_t stacks_unattributed; /* stack samples of such threads left out (stacks.unattributed) */
	int complete;                 /* saw END */
	int truncated;                /* set by the caller */
	int have_exit_status;
	int exit_status;                 /* wait status of the command */
	int attach;                      /* started on a running process */
	int active_only;                 /* reports: list only threads that took, waited for or ran without the GIL */
	int all_processes;               /* text report: list every process, short-lived helpers too (output/tree.h) */
	int keep_evals;                  /* keep the evaluation loop's C frames and -X perf trampolines in stacks */
	int have_native;                 /* the stacks hold native frames (record --native) */
	struct gs_native_figures native; /* the recorder's native.* facts */
	uint32_t target_pid;
	char command[1024];
	char gilscope_version[32];
	char sched_source[32]; /* where the scheduler events came from ("bpf", "perf tracepoints"), "" if unsaid */
	struct gs_counter_table *ctr; /* record -e's counters (analysis/counters.h), NULL: none recorded */
};

/* Are forced drops told apart from voluntary releases in p (a switch-request watchpoint)? The
 * recording says so (format 2); older ones, by their mechanism sentence. */
int gs_process_tells_forced_drops(const struct gs_process *p);

/* How a recording is read, chosen by the command that parsed the options (NULL: the defaults, all 0). */
struct gs_analysis_opts {
	int keep_evals; /* --keep-cpython-evals: keep the evaluation loop's C frames and -X perf
				 * trampolines in native stacks (dropped by default: the Python frames say it) */
};

void gs_analysis_init(struct gs_analysis *a, uint64_t start_ns);
void gs_analysis_feed(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen);
/* Closes open intervals at end_ns (0: the last record's time). */
void gs_analysis_finish(struct gs_analysis *a, uint64_t end_ns);
void gs_analysis_free(struct gs_analysis *a);

/* Reads a whole recording into a, as opts says (NULL: the defaults). 0, or -errno with a
 * sentence in why. */
int gs_analysis_load(struct gs_analysis *a, const char *path, const struct gs_analysis_opts *opts, char *why,
		     size_t whylen);
/* The same, calling hooks as the records stream through. */
int gs_analysis_load_hooked(struct gs_analysis *a, const char *path, const struct gs_analysis_opts *opts,
			    const struct gs_hooks *hooks, char *why, size_t whylen);

struct gs_thread *gs_analysis_thread(struct gs_analysis *a, uint32_t tid);

/* Live analyses (live.h), whose memory must not grow with the number of threads ever seen:
 * removes the exited threads for which forget(ctx, t) says 1, empties the blame list of every
 * thread not waiting (the waiter sets and the index are kept right) and the stack counts (the
 * waits' per tid too). The remaining threads may move in a->threads. */
void gs_analysis_forget(struct gs_analysis *a, int (*forget)(void *ctx, const struct gs_thread *t), void *ctx);

/* A label for the thread: its comm when it is its own (3.14+ names OS threads after Python
 * threads, cut to 15 bytes), else the Python function it runs when known ("checksum_worker"),
 * else the comm. */
const char *gs_thread_label(const struct gs_analysis *a, const struct gs_thread *t);
/* The thread's NAME in every output: its threading.Thread name when it was read, else its label. */
const char *gs_thread_name(const struct gs_analysis *a, const struct gs_thread *t);

/* "qualname (file:line)" of frame id into buf ("function (module)" for a native frame). */
void gs_analysis_frame_name(const struct gs_analysis *a, uint32_t id, char *buf, size_t len);
/* Frames of stack id, innermost first (*n >= 1); NULL when unknown, or when all its frames are
 * hidden (the evaluation loop and -X perf trampolines, without keep_evals). */
const uint32_t *gs_analysis_stack(const struct gs_analysis *a, uint64_t id, int *n);
/* Calls fn for each (stack, amount) counted for kind what (a gs_stack_what or GS_WHAT_*) and
 * thread tid (0: all threads), in table order; what `export --format folded` writes. Returns the
 * number of calls. */
size_t gs_analysis_counts_each(const struct gs_analysis *a, uint32_t what, uint32_t tid,
			       void (*fn)(void *ctx, uint64_t stack, uint64_t amount), void *ctx);
/* The nanoseconds one stack sample stands for (1e9 / the sampling rate; 1 ms when unknown). */
uint64_t gs_analysis_sample_ns(const struct gs_analysis *a);
/* Is frame id a native one? */
int gs_analysis_frame_native(const struct gs_analysis *a, uint32_t id);
struct gs_process *gs_analysis_process(struct gs_analysis *a, uint32_t pid);

#endif
