/* window.h - each thread's GIL figures within a time window of a recording, and whom it waited
 * behind there (`gilscope report --window FROM:TO`; the pytest plugin's per-test slices).
 *
 * Contract: gs_window_hooks gives the analysis hooks (analysis.h) that clip every accounted slice
 * of every thread to [from, to) and every hold of every GIL to it: held (on or off CPU), waiting,
 * running without the GIL, and off CPU (asleep or runnable, not for the GIL) per thread,
 * acquisitions whose moment is in the window, and for each waiting thread the time each holder
 * held the GIL while it waited inside the window (the holds of the GIL the waiter used, as the
 * GIL events said). Exact to the nanosecond like the whole-recording figures, since it is the
 * same accounting cut at the window's edges. Threads are keyed by (pid, tid); a thread with no
 * time in the window is not listed. Memory: the holds that overlap the window, and per waiter
 * one entry per holder. Times are CLOCK_MONOTONIC nanoseconds, as in the recording. */
#ifndef GS_ANALYSIS_WINDOW_H
#define GS_ANALYSIS_WINDOW_H

#include "analysis/analysis.h"

struct gs_window_behind {
	uint32_t holder; /* tid */
	uint64_t ns;     /* the holder's hold time while this thread waited */
};

struct gs_window_thread {
	uint32_t pid, tid;
	uint64_t held_ns, wait_ns, nogil_ns, offcpu_ns, other_ns;
	uint64_t acquisitions;
	uint64_t first_ns, last_ns; /* its time in the window: from, to */
	struct gs_window_behind *behind;
	size_t nbehind;
};

struct gs_window_hold {
	uint32_t pid, tid;
	int gil; /* the GIL's number in its process */
	uint64_t start, end;
};

struct gs_window {
	uint64_t from, to;
	const struct gs_analysis *a; /* set by gs_window_init: the analysis the hooks are fed from */
	struct gs_window_thread *threads;
	size_t nthreads, cap_threads;
	struct gs_window_hold *holds; /* closed holds that overlap the window, in order of end */
	size_t nholds, cap_holds;
	struct gs_window_hold *open; /* per GIL: its current hold (tid 0: free) */
	size_t nopen, cap_open;
	int oom; /* an allocation failed: the figures are incomplete */
};

/* w for [from, to) over analysis a, and the hooks to load a with (gs_analysis_load_hooked). */
void gs_window_init(struct gs_window *w, const struct gs_analysis *a, uint64_t from, uint64_t to,
		    struct gs_hooks *hooks);
/* The threads sorted by pid, then by time waited (longest first); each one's holders by time. */
void gs_window_finish(struct gs_window *w);
void gs_window_free(struct gs_window *w);

#endif
