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

/* Converts perf script text from in into a gilscope recording (written with w):
 * mode "gil": python:take_gil, take_gil__return, drop_gil, drop_gil__return probes;
 * mode "sched": sched_switch, sched_wakeup/waking, sched_process_fork/exit;
 * lines that are neither are counted as skipped. 0 or -errno. */
int gs_perf2trace(FILE *in, const char *mode, struct gs_recwriter *w, struct gs_perf2trace_stats *st);

#endif
