/* live.h - GIL figures while the recording goes on: `gilscope serve`, `gilscope top`,
 * `record --metrics`.
 *
 * Contract: a gs_live is an analysis (analysis.h) fed record by record as the recorder delivers
 * them (gs_live_feed from the recorder's thread), and read at any moment from another thread
 * (gs_live_snapshot): one mutex guards it, held for one record or for one copy of the figures,
 * never during I/O but the reading of a new process's command line. A snapshot gives, per
 * thread, its cumulative held, waiting, running-without-the-GIL, sleeping, runnable and unknown
 * nanoseconds, acquisitions and forced drops; per GIL its held and contended time, acquisitions,
 * forced drops, waiters now, and the histogram of its finished waits (GS_LIVE_BUCKETS bounds,
 * 10 us to 1 s, and the rest); per process its wall time and display name; the events lost. A
 * hold, wait or any state in progress is counted up to the newest record delivered (not to the
 * moment of the snapshot: at most the recorder's flush period, 50 ms, behind on a busy process,
 * more on a quiet one). Memory stays flat however many threads come and go: an exited thread is
 * listed by GS_LIVE_SHOWN snapshots at its final figures (or, when nobody takes snapshots,
 * for GS_LIVE_UNSHOWN_NS of recording), then removed from the analysis, its
 * figures added to its process's retired totals under its group name (gs_live_group: Python's
 * numbered default names "Thread-12 (serve)" are one group, "Thread-* (serve)"), which later
 * snapshots list as rows of tid 0, so sums by name never go back. Processes come and go the same
 * way: one that ended (its main thread exited, or its PROC_EXIT) with no thread of it left is
 * listed by GS_LIVE_SHOWN snapshots after its end (or kept GS_LIVE_UNSHOWN_NS), then removed
 * with its GILs, their histograms and its retired rows (forget.h): its series stop. Blame lists are not kept, and
 * the records of Python stacks are skipped (their counts would grow with the threads), unless
 * gs_live_wait_sites turned wait sites on (`top`): then frame and stack definitions are kept (as
 * many as the program has distinct ones), and each wait's time goes, as `report`'s wait sites
 * do, to the first stack sampled during it (a wait no sample fell in goes nowhere); a snapshot
 * names per thread the innermost Python frame of the stack it waited in longest since the last
 * mark (the wait in progress counted so far). The wait sites kept between two marks are at most
 * GS_LIVE_SITES (thread, stack) pairs (hashed; the time of further pairs is not kept), and the
 * waits in progress are pruned every 65536 records too, so memory stays bounded even when no
 * snapshot is taken (top paused). Process names are read once per process (pid and first
 * record: a reused pid is read again) and forgotten when a snapshot no longer lists the process.
 */
#ifndef GS_ANALYSIS_LIVE_H
#define GS_ANALYSIS_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/analysis.h"

#define GS_LIVE_BUCKETS 11 /* upper bounds below; a 12th count: the waits longer than 1 s */
#define GS_LIVE_SHOWN 2
#define GS_LIVE_UNSHOWN_NS 60000000000ull /* an exited thread no snapshot showed is retired after a minute */
#define GS_LIVE_NAME_MAX 128
#define GS_LIVE_SITE_MAX 192
#define GS_LIVE_SITES 65536 /* (thread, stack) wait sites kept between two marks */

extern const uint64_t gs_live_bucket_ns[GS_LIVE_BUCKETS];

struct gs_live_thread {
	uint32_t pid, tid;            /* tid 0: the retired threads of its group */
	int gil;                      /* the number of its last GIL in its process, 0 none */
	char name[GS_LIVE_NAME_MAX];  /* gs_thread_name, as the program set it */
	char group[GS_LIVE_NAME_MAX]; /* gs_live_group of name */
	int exited, holding, waiting; /* now */
	uint64_t first_ns;            /* first seen */
	uint64_t held_ns, wait_ns, nogil_ns, sleep_ns, runnable_ns, unknown_ns;
	uint64_t acquisitions, forced_drops;
	uint64_t interval_wait_max_ns; /* longest wait ended since the last mark (gs_live_snapshot) */
	uint64_t waiting_ns;           /* the wait in progress so far, 0 none */
	/* gs_live_wait_sites: "function file:line" (the file's basename) of the innermost Python frame
	 * of the stack it waited in longest since the last mark; "" none sampled */
	char wait_site[GS_LIVE_SITE_MAX];
	uint64_t wait_site_ns;
};

struct gs_live_gil {
	uint32_t pid;
	int number;
	uint64_t held_ns, contended_ns, acquisitions, forced_drops;
	int waiters;
	uint64_t hist[GS_LIVE_BUCKETS + 1]; /* finished waits per bucket (not cumulative) */
	uint64_t waits, wait_sum_ns;
};

struct gs_live_proc {
	uint32_t pid;
	int exited, is_python;
	char name[GS_LIVE_NAME_MAX]; /* program and script ("python3.11 app.py"), never the arguments */
	uint64_t first_ns, wall_ns;
};

struct gs_live_snap {
	struct gs_live_thread *threads;
	size_t nthreads;
	struct gs_live_gil *gils;
	size_t ngils;
	struct gs_live_proc *procs;
	size_t nprocs;
	uint64_t start_ns, last_ns; /* the recording's start, the newest record's time */
	uint64_t lost_events, records;
	int closed; /* the recording ended */
};

struct gs_live;

struct gs_live *gs_live_new(void);
void gs_live_free(struct gs_live *l);
void gs_live_start(struct gs_live *l, uint64_t start_ns);
/* Keep wait sites (before gs_live_start; off by default). */
void gs_live_wait_sites(struct gs_live *l, int on);
void gs_live_feed(struct gs_live *l, const struct gs_rec *r, const void *payload, size_t plen);
void gs_live_close(struct gs_live *l);
/* A copy of the figures now into s (gs_live_snap_free after). mark: starts a new interval for
 * interval_wait_max_ns. Exited threads shown GS_LIVE_SHOWN times are retired after the copy. */
void gs_live_snapshot(struct gs_live *l, struct gs_live_snap *s, int mark);
void gs_live_snap_free(struct gs_live_snap *s);

/* The group of a thread name: "Thread-<digits>" becomes "Thread-*" (the rest kept). */
void gs_live_group(const char *name, char *out, size_t len);
/* "program script" from a command line (NUL-separated, as /proc/PID/cmdline): the basenames of
 * the program and, for an interpreter, of its script or "-m module"/"-c". Pure. */
void gs_live_process_name(const char *cmdline, size_t len, char *out, size_t outlen);

#endif
