/* ring_decode.h - one record of a kernel perf ring (perf_event.c) decoded into a gilscope record: the
 * tracepoint and probe samples, context switches, comm, fork, exit and lost records that
 * `gilscope record` opens (record/sched.c, record/pyprobes.c). Pure: no state, no I/O, every size checked, so the fuzzer
 * and the unit tests call it directly. */
#ifndef GS_RINGDEC_H
#define GS_RINGDEC_H

#include <linux/perf_event.h>
#include <stdint.h>

#include "base/recfile.h"

/* What a sample's event stream is, by its sample id. */
enum gs_perf_kind {
	GS_PK_NONE = 0,
	GS_PK_SWITCH,       /* sched:sched_switch (raw data: prev_state) */
	GS_PK_WAKEUP,       /* sched:sched_wakeup (raw data: the woken pid) */
	GS_PK_TAKE_GIL,     /* uprobe on take_gil */
	GS_PK_BP_LOCKED,    /* watchpoint on gil->locked */
	GS_PK_BP_DROPREQ,   /* watchpoint on gil_drop_request */
	GS_PK_ACQUIRE,      /* uprobe after a `locked = 1` store */
	GS_PK_RELEASE,      /* uprobe after a `locked = 0` store */
	GS_PK_REQ_SET,      /* uprobe after the drop request's set (cpython/dropreq.h) */
	GS_PK_REQ_RESET,    /* uprobe after one of its resets */
	GS_PK_COUNTER = 64, /* record -e: counter number kind - GS_PK_COUNTER (below GS_PK_COUNTER_MAX) */
	GS_PK_COUNTER_MAX = GS_PK_COUNTER + 16,
};

struct gs_ringdec_layout {
	/* where the tracepoints' fields sit in their raw data (from tracefs `format`) */
	unsigned prev_state_off, prev_state_size, wake_pid_off, wake_pid_size;
	int (*kind_of)(const void *ctx, uint64_t id); /* enum gs_perf_kind of a sample id */
	const void *ctx;
};

enum gs_ringdec_result {
	GS_RINGDEC_SKIP = 0, /* nothing to record (a switch-out record, an unknown type) */
	GS_RINGDEC_EVENT,    /* out->r (and out->name for COMM); a counter's sample: CTR_SAMPLE, arg the
			      * counter's number, arg64 1 (the recorder multiplies by the counter's period) */
	GS_RINGDEC_CORRUPT,  /* too short for its type, or a sample of an unknown id */
	GS_RINGDEC_THROTTLE, /* the kernel throttled an event */
};

struct gs_ringdec {
	struct gs_rec r;
	char name[16];   /* COMM: the task name, NUL-terminated */
	uint64_t ip;     /* watchpoint samples: the IP after the store */
	int needs_value; /* GIL_WRITE/DROPREQ from a watchpoint: r.arg is the value stored, to be
			  * decoded from the instruction before ip (the caller reads the target's code) */
	int is_sample;   /* a PERF_RECORD_SAMPLE whose header fields were read (counted as a sample) */
};

/* Decodes record h (h->size bytes, already checked >= sizeof(*h) by the ring reader). For LOST,
 * r.arg64 is the number of lost events and the caller sets r.arg to the CPU. */
enum gs_ringdec_result gs_ringdec_decode(const struct perf_event_header *h, const struct gs_ringdec_layout *l,
					 struct gs_ringdec *out);

#endif
