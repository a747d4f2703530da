/* natsample.h - `record --native`: the user stacks of the traced threads, taken by the kernel
 * when a thread leaves its CPU (sched:sched_switch, so every GIL wait and every sleep) and at a
 * fixed rate while it runs (cpu-clock), on rings of their own so that a burst of stacks can
 * never cost a scheduler or GIL event.
 *
 * Only the newest copy per thread is kept. When the Python sampler reads a thread's Python
 * stack, it asks for the native stack that goes with it: a thread that has not run since it
 * left its CPU has the very stack it left with (exact: both stacks are frozen), a running one
 * gets its newest on-CPU copy (taken up to one sampling period earlier). The chosen copy is
 * unwound once (native.h) and the result is cached until the thread moves on.
 */
#ifndef GS_NATSAMPLE_H
#define GS_NATSAMPLE_H

#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/native.h"

#define GS_NATSAMPLE_DEFAULT_STACK 16384u

/* One decoded record of a native ring. */
struct gs_natrec {
	int kind; /* GS_NATREC_* */
	uint32_t pid, tid;
	uint64_t time, id;
	const uint64_t *regs; /* GS_NATIVE_NREGS registers, or NULL (a kernel thread) */
	const uint8_t *stack; /* the copied user stack, from regs' SP */
	size_t stack_len;
};
enum {
	GS_NATREC_OTHER = 0,
	GS_NATREC_SAMPLE,
	GS_NATREC_SWITCH_IN,
	GS_NATREC_SWITCH_OUT,
	GS_NATREC_EXIT,
	GS_NATREC_LOST
};

/* Decodes a record of a ring whose events sample IDENTIFIER|TID|TIME|REGS_USER|STACK_USER with
 * GS_NATIVE_REGS_MASK (and sample_id_all). 0, or -EINVAL when the record is malformed. The
 * pointers in out point into h. */
int gs_natrec_decode(const struct perf_event_header *h, struct gs_natrec *out);

struct gs_natsampler;

/* Opens the events on every thread of pid (inherited by threads created later): the
 * sched_switch tracepoint (id tp_switch) and cpu-clock at hz, copying stack_size bytes of stack.
 * NULL with a reason when the kernel refuses. */
struct gs_natsampler *gs_natsampler_open(pid_t pid, int ncpu, long tp_switch, unsigned hz, unsigned stack_size,
					 char *why, size_t whylen);
void gs_natsampler_close(struct gs_natsampler *s);

/* Reads what the kernel wrote since the last call. */
void gs_natsampler_drain(struct gs_natsampler *s);

/* The native stack to pair with a Python stack of tid read now: pcs innermost first, and each
 * frame's stack pointer in sps (may be NULL). *frozen
 * is set when the thread has been off its CPU since the copy was taken (the stack is exactly
 * the one at the Python read), *complete when the unwinding reached the outermost frame.
 * Returns the frame count, 0 when there is no copy (yet). */
int gs_natsampler_stack(struct gs_natsampler *s, uint32_t tid, uint64_t *pcs, uint64_t *sps, int max, int *frozen,
			int *complete);

struct gs_native *gs_natsampler_native(struct gs_natsampler *s);

struct gs_natsampler_stats {
	uint64_t switch_samples, cpu_samples, lost, malformed, unwinds, truncated, unknown_symbols;
};
void gs_natsampler_stats(const struct gs_natsampler *s, struct gs_natsampler_stats *st);

#endif
