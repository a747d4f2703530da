/* offgil.h - per4m's offgil: folded stacks of the time threads spent off-CPU waiting for the
 * GIL (or, with state "S", all off-CPU time), counts in microseconds, for flamegraph.pl. */
#ifndef GS_OFFGIL_H
#define GS_OFFGIL_H

#include <stdio.h>

struct gs_offgil_opts {
	int all_sleep;      /* --state S: every sleep, not only those in take_gil */
	int strip_take_gil; /* end stacks at take_gil (drop the futex/kernel frames above it) */
	int keep_evals;     /* keep _PyEval_EvalFrameDefault frames */
};

/* From `perf script` text with call chains (sched_switch + sched_wakeup/waking). Returns the
 * number of stacks written, or -1 with why. */
long gs_offgil_perf(FILE *in, FILE *out, const struct gs_offgil_opts *o, char *why, size_t whylen);

#endif
