/* inline.h - inline GIL probes: the fastest exact mechanism.
 *
 * At the traced command's entry point (ptrace-stopped, single-threaded), gilscope maps a page
 * of trampolines next to the interpreter's code and a ring buffer shared with itself (a memfd),
 * then replaces each instruction that stores to gil->locked, and the first instructions of
 * take_gil, with a jump to a trampoline that runs the moved instruction(s) and appends
 * {TSC, thread id, event} to the ring with one lock xadd: no system call, no trap. gilscope
 * drains the ring with its other events and converts TSC to CLOCK_MONOTONIC.
 * The trampolines keep every register and flag, and skip the red zone. A full ring drops and
 * counts events; a dead gilscope leaves a full ring, never a harmed program. fork()ed children
 * share the ring. Used when gilscope launches the command; attaching uses uprobes.
 */
#ifndef GS_INLINE_H
#define GS_INLINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "probe/x86.h"

enum gs_inline_kind {
	GS_INLINE_RELEASE = 0,
	GS_INLINE_ACQUIRE = 1,
	GS_INLINE_WAIT = 2,
	GS_INLINE_DROPREQ_SET = 3,  /* a waiter asked the holder to drop the GIL */
	GS_INLINE_DROPREQ_RESET = 4 /* the request was reset (honoured in drop_gil, or after a switch) */
};

struct gs_inline {
	int memfd;
	uint8_t *map;
	size_t size;
	uint64_t nslots, tail;
	uint64_t trampolines; /* address of the trampoline page in the target */
	uint64_t stuck_since; /* when the reader first waited on an uncommitted slot */
	uint64_t skipped;     /* slots never committed (writer killed mid-way) */
	uint64_t last_ns;     /* the time of the last event read (events never go back in slot order) */
	uint64_t clamped;     /* events the conversion would have put before the one ahead of them */
	uint64_t settled_ns;  /* every event not read yet is stamped at or after this (see gs_inline_drain) */
	/* TSC -> CLOCK_MONOTONIC: ns = ref_ns + (tsc - ref_tsc) * ns_per_tick, re-anchored at every
	 * drain; the rate is the kernel's (perf's time_mult/time_shift) when published, else
	 * measured against CLOCK_MONOTONIC since the start (cal_*). */
	uint64_t ref_tsc, ref_ns, prev_tsc, prev_ns, cal_tsc, cal_ns;
	double ns_per_tick;
	int kernel_rate;
	int nprobes;
};

struct gs_inline_event {
	uint64_t time;
	uint32_t tid;
	enum gs_inline_kind kind;
	unsigned site;
	uint64_t gil; /* address of the GIL's `locked` field: which interpreter's GIL; 0 unknown */
};

#define GS_INLINE_MAX_SITES 24 /* GIL stores and drop-request writes one set-up patches */

/* One instruction to probe: a store to the GIL's `locked`, or (dropreq) a write of the drop
 * request, in the process's addresses. */
struct gs_inline_site {
	uint64_t store;    /* the store instruction (moved into a trampoline) */
	unsigned len;      /* its length (>= 5 to be replaced by a jump) */
	uint8_t bytes[15]; /* its bytes */
	int value;         /* the value it stores: 1 take (request), 0 release (reset) */
	int dropreq;       /* a drop-request write: events GS_INLINE_DROPREQ_SET / _RESET */
};

/* What the probes patch, as the interpreter's analysis found it (record/pyprobes.c builds it
 * from cpython/python.h's findings): the probes know machine code, not CPython. */
struct gs_inline_target {
	const char *image;       /* the mapped file holding the code (the trampolines go near it) */
	uint64_t entry;          /* take_gil's entry */
	const uint8_t *prologue; /* its first whole instructions covering >= 5 bytes (moved) */
	size_t prologue_len;
	struct x86_ref gil; /* how take_gil's trampoline finds the GIL's `locked` field */
	const struct gs_inline_site *sites;
	int nsites, nacquire, nrelease; /* nsites counts the drop-request sites too */
};

/* Sets the probes up in stopped tracee pid. perf_meta is a perf ring's metadata page (for the
 * kernel's TSC scale). 0, or -errno with a sentence in why (nothing is left patched then). */
int gs_inline_setup(struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg, const void *perf_meta,
		    int *pending_sig, char *why, size_t whylen);
/* Calls cb for each committed event, in slot order. Returns the number read. A writer reserves
 * its slot before it reads the TSC, so an event still being written (reserved, not committed)
 * is stamped after the last drain that found the ring empty: that drain's start time is kept in
 * il->settled_ns, the time before which no event can still arrive (the merge's watermark). */
size_t gs_inline_drain(struct gs_inline *il, void (*cb)(const struct gs_inline_event *e, void *arg), void *arg);
/* Events the target dropped because the ring was full, plus slots never committed. */
uint64_t gs_inline_lost(const struct gs_inline *il);
void gs_inline_close(struct gs_inline *il);

#endif
