/* perfscript.h - reading `perf script` text (per4m's input) into gilscope records. */
#ifndef GS_PERFSCRIPT_H
#define GS_PERFSCRIPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/recfile.h"

/* One event header line, cut into its fields (pointers into the line). */
struct gs_perfline {
	const char *comm; /* may contain spaces */
	size_t comm_len;
	uint32_t pid, tid; /* pid 0 when the line has no pid/tid pair */
	int cpu;           /* -1 when absent */
	uint64_t time_ns;
	const char *event; /* "python:take_gil", "sched:sched_switch", "cycles:u" */
	size_t event_len;
	uint64_t period;  /* counter samples: the value before the event name, 0 otherwise */
	const char *rest; /* what follows "event:" */
};

/* Parses a header line. 0, or -1 when it is not one (call-chain lines, garbage). */
int gs_perfline_parse(const char *line, struct gs_perfline *out);

struct gs_perf2trace_stats {
	uint64_t lines, events, skipped, bytes, first_ns;
};

/* Where the converted records go, in order: to a recording (gs_recwriter_add) or straight into
 * an analysis (gs_perf2trace_feed). start is called once with the recording's start (the time of
 * the first header line with a nonzero time), before the records that follow it; add returns 0,
 * or -errno to stop the conversion (gs_perf2trace returns it). */
struct gs_recsink {
	void *ctx;
	void (*start)(void *ctx, uint64_t start_ns);
	int (*add)(void *ctx, const struct gs_rec *r, const void *payload, size_t plen);
};

/* Converts perf script text from in into gilscope records given to sink:
 * mode "gil": python:take_gil, take_gil__return, drop_gil, drop_gil__return probes;
 * mode "sched": sched_switch, sched_wakeup/waking, sched_process_fork/exit;
 * lines that are neither are counted as skipped. 0 or -errno. */
int gs_perf2trace(FILE *in, const char *mode, const struct gs_recsink *sink, struct gs_perf2trace_stats *st);

/* A META record ("key\0value\0", as gs_recwriter_meta writes it) given to sink. */
int gs_recsink_meta(const struct gs_recsink *sink, uint32_t pid, const char *key, const char *value);

/* Feeds one record to a as reading it back from a recording would give it: the payload padded
 * with zeros to a multiple of 8 bytes, its last byte NUL; a record the recording could not hold
 * (over 0xfff8 bytes) is dropped, as gs_recwriter_add drops it. */
struct gs_analysis;
void gs_perf2trace_feed(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen);

#endif
