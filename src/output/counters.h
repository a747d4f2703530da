/* counters.h (output) - record -e's counters in the report: per thread and per process, each
 * event's total and its split by GIL state (analysis/counters.h), instructions per cycle while
 * holding the GIL and without it where both were counted, and the events that could not be
 * recorded with why. Every function writes nothing for a recording without counters, so the
 * report of such a recording does not change.
 */
#ifndef GS_OUTPUT_COUNTERS_H
#define GS_OUTPUT_COUNTERS_H

#include <stdio.h>

#include "analysis/analysis.h"

/* The "Counters by GIL state" section of the text report. */
void gs_ctr_text(const struct gs_analysis *a, FILE *out);
/* ", "counters": {EVENT: {"total", "held", "wait", "no_gil", "other"}, ...}, "ipc": {...}" of a thread. */
void gs_ctr_json_thread(const struct gs_analysis *a, FILE *out, const struct gs_thread *t);
/* The same summed over process p's threads. */
void gs_ctr_json_process(const struct gs_analysis *a, FILE *out, const struct gs_process *p);
/* ", "counter_events": [{"name", "recorded", "why_not", "period", "exact", "stacks", ...}]" of the run. */
void gs_ctr_json_run(const struct gs_analysis *a, FILE *out);

#endif
