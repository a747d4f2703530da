/* metrics.h - live GIL figures (analysis/live.h) as a Prometheus scrape: the Prometheus text
 * format 0.0.4, or OpenMetrics 1.0.0 text (TYPE and HELP name the family without `_total`, one
 * `# EOF` line at the end).
 *
 * Contract: from one snapshot, per thread group (pid, process, gil, thread: the threads of one
 * gs_live_group name summed, retired ones included; per_tid: one series per live thread with a
 * `tid` label, retired threads left out) the counters gilscope_gil_held_seconds_total,
 * gilscope_gil_wait_seconds_total, gilscope_gil_acquisitions_total,
 * gilscope_gil_forced_drops_total; per GIL (pid, process, gil) gilscope_gil_contended_seconds_total,
 * the gauge gilscope_gil_waiters and the histogram gilscope_gil_wait_duration_seconds (the
 * finished waits, le = the GS_LIVE_BUCKETS bounds and +Inf); per process (pid, process)
 * gilscope_wall_seconds_total; gilscope_lost_events_total. Only Python processes' threads that
 * used a GIL are listed. Label values from the program are escaped for the terminal first
 * (escape.h: no control character, well-formed UTF-8), then \ " and newline as the formats say.
 * Pure: returns a malloc'd text and its length.
 */
#ifndef GS_OUTPUT_METRICS_H
#define GS_OUTPUT_METRICS_H

#include <stddef.h>

#include "analysis/live.h"

#define GS_METRICS_PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define GS_METRICS_OPENMETRICS_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

char *gs_metrics_render(const struct gs_live_snap *s, int openmetrics, int per_tid, size_t *len);

/* What an HTTP Accept header (RFC 9110 12.5.1) asks of the two formats. Each comma-separated
 * media range is type/subtype (or type/ *, * / *, case-insensitive) with ;name=value parameters
 * (token or quoted string; empty ones, as in ";;", are allowed): q (a qvalue, in thousandths here) weighs it, version narrows it
 * (OpenMetrics: 1.0.0 or 0.0.1, the text we write is both; Prometheus text: 0.0.4 or 1.0.0); a
 * range with another version, a malformed q or a syntax error is ignored, as is anything after a
 * malformed quoted string up to the next ','. A format's weight is that of the most specific
 * range naming it (type/subtype;version > type/subtype > type/ * > * / *), the highest among equally
 * specific ones, 0 when none names it. NULL or an empty header: text_q 1000. openmetrics: its
 * weight is above 0 and above the text format's, or equal and named first. Pure. */
struct gs_metrics_accept {
	int openmetrics_q, text_q; /* 0 to 1000 */
	int openmetrics;           /* answer OpenMetrics */
};
void gs_metrics_accept(const char *accept, struct gs_metrics_accept *a);
/* gs_metrics_accept(accept).openmetrics */
int gs_metrics_wants_openmetrics(const char *accept);

#endif
