/* diff.h - what changed between two recordings of the same program (`gilscope diff A B`).
 *
 * Contract: gs_diff_build reads two finished analyses and never changes them. Figures of a
 * recording are its target process's main GIL (utilisation, contention, acquisitions, forced
 * drops) and the sums over the threads of its CPython processes (held, waited). Threads of
 * CPython processes are matched by name (gs_thread_name: threading.Thread.name, else the label)
 * and, among threads of the same name, by order of start: the k-th "worker" of A with the k-th
 * "worker" of B; a thread without a partner is kept with the other side NULL. Wait sites are
 * the time threads waited for the GIL by the innermost Python function of the stack sampled
 * first in each wait (function and file, not the line, which moves between versions), summed
 * over threads; waits with no stack sampled are one site with an empty function. Pairs come in
 * A's order of start, then B's unmatched ones; sites by the larger of their two times, longest
 * first. The strings are copies: d outlives neither analysis's frames nor is tied to them. */
#ifndef GS_ANALYSIS_DIFF_H
#define GS_ANALYSIS_DIFF_H

#include "analysis/analysis.h"

struct gs_diff_figures {
	uint64_t wall_ns;                       /* the recording's length */
	uint64_t gil_ns, held_ns, contended_ns; /* the target's main GIL: its span, held, contended */
	uint64_t acquisitions, forced_drops, drop_requests;
	int drops_told_apart;                      /* forced drops are told from voluntary releases in the target */
	uint64_t threads_held_ns, threads_wait_ns; /* sums over the CPython processes' threads */
	size_t nthreads;                           /* threads of CPython processes */
};

struct gs_diff_pair {
	char name[GS_THREAD_PYNAME_MAX];
	unsigned ordinal;              /* 1: the first thread of that name to start */
	const struct gs_thread *a, *b; /* NULL: none in that recording */
};

struct gs_diff_site {
	char function[256], file[512]; /* function "": waits with no stack sampled */
	uint64_t a_ns, b_ns, a_waits, b_waits;
};

struct gs_diff {
	struct gs_diff_figures a, b;
	struct gs_diff_pair *pairs;
	size_t npairs;
	struct gs_diff_site *sites;
	size_t nsites;
};

/* Builds d from two analyses. 0, or -ENOMEM (d is then empty and may be freed). */
int gs_diff_build(struct gs_diff *d, const struct gs_analysis *a, const struct gs_analysis *b);
void gs_diff_free(struct gs_diff *d);

/* The relative change from x to y in percent; +inf when x is 0 and y is not, 0 when both are. */
double gs_diff_percent(uint64_t x, uint64_t y);

#endif
