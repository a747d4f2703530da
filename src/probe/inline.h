/* inline.h - inline GIL probes: the fastest exact mechanism.
 *
 * At the traced command's entry point (ptrace-stopped, single-threaded), gilscope maps a page
 * of trampolines next to the interpreter's code and ring buffers shared with itself (a memfd),
 * then replaces each instruction that stores to gil->locked, and the first instructions of
 * take_gil, with a jump to a trampoline that runs the moved instruction(s) and appends
 * {TSC, thread id, event, GIL} to the ring of the CPU it runs on (one ring per possible CPU, so
 * writers on different CPUs share no cache line): no system call, no trap. gilscope drains the
 * rings with its other events, puts them in time order and converts TSC to CLOCK_MONOTONIC.
 * The trampolines keep every register and flag, and skip the red zone. A full ring drops and
 * counts events; a writer stopped between its reservation and its commit is skipped after
 * 200 ms, and its slot kept from the writers (pinned: the ring's tail they see stays there) until
 * it commits late or for 10 s (killed: it never will), so its late stores never land on a newer
 * event of the same slot; a dead gilscope leaves full rings, never a harmed program. fork()ed children share
 * the rings. The trampoline page ends with the owner's mark: the path "/proc/PID/fd/N" of the
 * rings' memfd (GS_INLINE_OWNER_OFF), PID being the gilscope that set the probes up. Set-up is
 * two steps, map (trampolines and rings, nothing patched) then patch (the jumps, one write per
 * instruction, each to a trampoline already whole: a set-up cut anywhere leaves every jump
 * complete or not written; the ring is created by the target, so any user may map it); the remote
 * system calls and writes go through gs_inline_ops: the launch path's guardian by default
 * (ptrace.h), the attach path's injector (inject.h).
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

#define GS_INLINE_MAX_SITES 24 /* GIL stores and drop-request writes one set-up patches */
#define GS_INLINE_TRAMP_SIZE 16384u
#define GS_INLINE_OWNER_OFF (GS_INLINE_TRAMP_SIZE - 64) /* the owner's "/proc/PID/fd/N", NUL-terminated */

/* How the set-up reaches the stopped target: a system call run in it (scratch: a code address
 * whose bytes it may use and restores), a write of its memory, the main thread's %fs base. Each
 * 0 or -errno (a ptrace failure). */
struct gs_inline_ops {
	int (*syscall)(void *ctx, pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret,
		       int *pending_sig);
	int (*write)(void *ctx, pid_t pid, uint64_t addr, const void *src, size_t len);
	int (*fs_base)(void *ctx, pid_t pid, uint64_t *fs);
	void *ctx;
};

/* The reader's state of one ring. */
#define GS_INLINE_PINS 8 /* skipped slots a ring keeps from reuse at once (more: the oldest is let go) */

struct gs_inline_ring {
	uint64_t tail;        /* slots read */
	uint64_t stuck_since; /* when the reader first waited on an uncommitted slot */
	uint64_t settled_ns;  /* the start of the last drain that found this ring empty */
	uint64_t ready;       /* bytes of its slots allocated by gilscope ahead of the writers (ringmem.h) */
	/* slots skipped while their writer may still write them (reserved, never committed): the
	 * tail the writers see stays at the oldest, so no writer of a later lap is given the slot
	 * (the stalled writer's late stores would land on its event, committed or not) */
	uint64_t pin[GS_INLINE_PINS], pin_since[GS_INLINE_PINS];
	unsigned npins;
};

struct gs_inline_slot; /* a drain's batch (inline.c) */

#define GS_INLINE_ANCHORS 64

struct gs_inline {
	int memfd; /* -1: map is not ours (tests, fuzzing): close leaves it */
	uint8_t *map;
	size_t size;
	uint64_t nslots; /* per ring */
	uint32_t nrings;
	struct gs_inline_ring *rings;
	struct gs_inline_slot *batch;
	size_t batch_cap;
	struct gs_inline_slot *carry; /* read, stamped after the newest anchor: given at the next drain */
	size_t ncarry, carry_cap;
	uint64_t trampolines; /* address of the trampoline page in the target (GS_INLINE_TRAMP_SIZE bytes) */
	uint64_t ring_addr;   /* address of the rings' mapping in the target (size bytes) */
	size_t site_off[GS_INLINE_MAX_SITES]; /* where each store's trampoline starts */
	uint64_t skipped;                     /* slots never committed (writer killed mid-way) */
	uint64_t pins_expired;                /* pinned slots let go uncommitted (PIN_NS, or GS_INLINE_PINS more) */
	uint64_t last_ns;                     /* the time of the last event read */
	uint64_t clamped;                     /* events the conversion would have put before the one given before */
	uint64_t settled_ns; /* every event not read yet is stamped at or after this (see gs_inline_drain) */
	/* TSC -> CLOCK_MONOTONIC: one function of the TSC whichever drain converts an event (so one
	 * thread's events keep their order whichever rings they went through): the line through
	 * the anchors (TSC, CLOCK_MONOTONIC) taken at each drain, the last GS_INLINE_ANCHORS of
	 * them, interpolated between two, extrapolated beyond with the rate: the kernel's (perf's
	 * time_mult/time_shift) when published, else measured against CLOCK_MONOTONIC since the
	 * start (cal_*). An event stamped after the newest anchor waits for the next one. */
	struct {
		uint64_t tsc, ns;
	} anchors[GS_INLINE_ANCHORS];
	unsigned nanchors, first_anchor;
	uint64_t hint_tsc, hint_ns, hint_span;     /* the bracket of the last conversion (span 0: none), */
	double slope;                              /* its ns per tick */
	uint64_t ref_tsc, ref_ns, cal_tsc, cal_ns; /* the newest anchor; the calibration's start */
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
/* The two steps of gs_inline_setup, with the target reached through ops (NULL: the guardian).
 * map: the trampolines and the ring are mapped and written, nothing patched; on failure
 * il->trampolines and il->ring_addr say what is mapped in the target (0: nothing), for the
 * caller to unmap. patch: the jumps over the moved instructions (no thread may be inside them). */
int gs_inline_map(struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg, const void *perf_meta,
		  const struct gs_inline_ops *ops, int *pending_sig, char *why, size_t whylen);
int gs_inline_patch(const struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg,
		    const struct gs_inline_ops *ops);
/* Where gs_inline_map may put the trampoline page in pid (image: tg->image): at most 4
 * addresses in out, the count. A page there that is not marked is one a killed gilscope mapped. */
size_t gs_inline_tramp_candidates(pid_t pid, const char *image, uint64_t *out);
/* Does take_gil's prologue or a GIL store cross a page boundary? A write over it could then be
 * cut between its two pages (the writer killed): attaching refuses such sites. 1 / 0. Pure. */
int gs_inline_straddles(const struct gs_inline_target *tg);
/* The reader's side of rings at map (nrings of nslots, x86.h's layout) that it does not own (tests,
 * fuzzing; set-up does this itself): 0, or -ENOMEM. The clock anchors are set to now. */
int gs_inline_reader_init(struct gs_inline *il, uint8_t *map, uint32_t nrings, uint64_t nslots);
/* Calls cb for each committed event of every ring older than the new watermark (all of them when
 * final), in time order, from one drain to the next too (TSC order: a ring's slots are in the
 * order their writers reserved them, which is not the TSC order when a writer was preempted, and
 * the rings are not in order with each other). Returns the number given. A writer reserves its
 * slot before it reads the TSC, so an event still being written (reserved, not committed) is
 * stamped after the last drain that found its ring empty: the earliest of those drains' start
 * times is kept in il->settled_ns, the time before which no event can still arrive (the merge's
 * watermark); the events read at or after it are kept for the next drain. A time the
 * conversion would put before the one given before it (a wild TSC) is clamped, counted in
 * il->clamped. */
size_t gs_inline_drain(struct gs_inline *il, int final, void (*cb)(const struct gs_inline_event *e, void *arg),
		       void *arg);
/* Events the target dropped because the ring was full, plus slots never committed. */
uint64_t gs_inline_lost(const struct gs_inline *il);
void gs_inline_close(struct gs_inline *il);

#endif
