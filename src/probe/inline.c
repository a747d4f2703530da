/* inline.c - inline GIL probes (see inline.h). The machine code is built by x86.c, the remote
 * system calls go through ptrace.c, every write into the tracee through the guardian (tracer.h). */
#define _GNU_SOURCE
#include "probe/inline.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/ptrace.h"
#include "probe/tracer.h"
#include "probe/x86.h"
#include "probe/x86_glibc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NSLOTS (1u << 20) /* 32 MiB: more than a second of the busiest program */
#define TRAMP_SIZE 16384u

struct span {
	const char *path;
	uint64_t lo, hi;
};

static int span_cb(const struct gs_map *m, void *arg)
{
	struct span *s = arg;
	if (strcmp(m->path, s->path) != 0)
		return 0;
	if (!s->lo || m->start < s->lo)
		s->lo = m->start;
	if (m->end > s->hi)
		s->hi = m->end;
	return 0;
}

/* A stopped tracee that system calls are run in (at scratch: take_gil's first bytes, restored
 * after each call). */
struct remote {
	pid_t pid;
	uint64_t scratch;
	int *pending_sig;
	int ptrace_failed; /* the step failed in ptrace itself (err): the caller says so */
	char *why;
	size_t whylen;
};

static int64_t rcall(struct remote *t, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		     uint64_t a5, int *err)
{
	uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	int64_t ret = -1;
	*err = gs_ptrace_syscall(t->pid, t->scratch, nr, args, &ret, t->pending_sig);
	return ret;
}

/* Offset of the thread id in the thread's TCB (glibc's struct pthread.tid, x86_glibc.h), checked
 * against the main thread: the value at %fs:off must be its tid. */
static int find_tid_offset(pid_t pid, uint32_t *off)
{
	uint64_t fs;
	uint32_t v;
	static const uint32_t candidates[] = GS_GLIBC_PTHREAD_TID_CANDIDATES;
	if (gs_ptrace_fs_base(pid, &fs) < 0 || fs == 0)
		return -ENOENT;
	for (size_t i = 0; i < GS_ARRAY_SIZE(candidates); i++)
		if (gs_mem_read(pid, fs + candidates[i], &v, 4) == 0 && v == (uint32_t)pid) {
			*off = candidates[i];
			return 0;
		}
	return -ENOENT;
}

static int in_range(uint64_t a, uint64_t b)
{
	int64_t d = (int64_t)(a - b);
	return d < 0x7ff00000 && d > -0x7ff00000;
}

/* The TSC's rate: the kernel's when perf publishes it, else measured against CLOCK_MONOTONIC for
 * 5 ms (refined while recording). 0 or -ENOTSUP. */
static int tsc_calibrate(struct gs_inline *il, const struct perf_event_mmap_page *pm, char *why, size_t whylen)
{
	if (pm && pm->cap_user_time && pm->time_shift < 63 && pm->time_mult) {
		il->ns_per_tick = (double)pm->time_mult / (double)(1ull << pm->time_shift);
		il->kernel_rate = 1;
	} else {
		uint64_t t0 = x86_rdtsc(), n0 = gs_now_ns(), n1, t1;
		do
			n1 = gs_now_ns();
		while (n1 - n0 < 5000000ull);
		t1 = x86_rdtsc();
		if (t1 <= t0) {
			snprintf(why, whylen, "the TSC does not advance");
			return -ENOTSUP;
		}
		il->ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
	}
	il->cal_tsc = x86_rdtsc();
	il->cal_ns = gs_now_ns();
	return 0;
}

/* Whether take_gil's prologue and every GIL store can be replaced by a 5-byte jump. 0 or
 * -ENOTSUP. */
static int check_patchable(const struct gs_inline_target *tg, char *why, size_t whylen)
{
	if (tg->nacquire == 0 || tg->nrelease == 0 || tg->prologue_len < 5 || tg->nsites > GS_INLINE_MAX_SITES) {
		snprintf(why, whylen, "take_gil's prologue or the GIL stores cannot be moved");
		return -ENOTSUP;
	}
	for (int i = 0; i < tg->nsites; i++)
		if (tg->sites[i].len < 5) {
			snprintf(why, whylen, "a GIL store instruction is too short to patch");
			return -ENOTSUP;
		}
	return 0;
}

/* Step 1: the trampoline page, within a jump of every patched instruction (the interpreter's
 * mappings span sp). 0 and *tramp, or -errno. */
static int map_trampoline_page(struct remote *t, const struct span *sp, uint64_t *tramp)
{
	const uint64_t cands[] = { sp->lo - 0x1000000, sp->lo - 0x8000000, sp->hi + 0x10000000, sp->hi + 0x40000000 };
	int err = 0;
	int64_t r;

	*tramp = 0;
	for (size_t i = 0; i < GS_ARRAY_SIZE(cands) && !*tramp; i++) {
		uint64_t a = cands[i] & ~0xfffull;
		if (a < 0x10000 || !in_range(a, sp->lo) || !in_range(a + TRAMP_SIZE, sp->hi))
			continue;
		r = rcall(t, SYS_mmap, a, TRAMP_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, (uint64_t)-1, 0, &err);
		if (err < 0) {
			t->ptrace_failed = 1;
			return err;
		}
		if ((uint64_t)r == a)
			*tramp = a;
		else if (r > 0 && (uint64_t)r < (uint64_t)-4096)
			rcall(t, SYS_munmap, (uint64_t)r, TRAMP_SIZE, 0, 0, 0, 0, &err);
	}
	if (!*tramp) {
		snprintf(t->why, t->whylen, "no room for trampolines within 2 GiB of %s", sp->path);
		return -ENOMEM;
	}
	return 0;
}

/* Step 2: the ring, a memfd of ours (il->memfd, il->map) that the target opens through /proc
 * and maps (the path is written at the end of the trampoline page). 0 and *ring, or -errno. */
static int map_ring(struct remote *t, struct gs_inline *il, uint64_t tramp, uint64_t *ring)
{
	char path[64];
	int err, rfd;
	int64_t r;

	il->size = X86_RING_HDR + (size_t)NSLOTS * X86_SLOT_SIZE;
	il->nslots = NSLOTS;
	il->memfd = (int)syscall(SYS_memfd_create, "gilscope-ring", 1u /* MFD_CLOEXEC */);
	if (il->memfd < 0 || ftruncate(il->memfd, (off_t)il->size) < 0) {
		err = -errno;
		snprintf(t->why, t->whylen, "cannot create the shared ring: %s", strerror(-err));
		return err;
	}
	il->map = mmap(NULL, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, il->memfd, 0);
	if (il->map == MAP_FAILED) {
		il->map = NULL;
		err = -errno;
		snprintf(t->why, t->whylen, "cannot map the shared ring: %s", strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), il->memfd);
	if ((err = gs_ptrace_write(t->pid, tramp + TRAMP_SIZE - 64, path, strlen(path) + 1)) < 0)
		goto fail_ptrace;
	r = rcall(t, SYS_open, tramp + TRAMP_SIZE - 64, O_RDWR | O_CLOEXEC, 0, 0, 0, 0, &err);
	if (err < 0)
		goto fail_ptrace;
	if (r < 0) {
		snprintf(t->why, t->whylen, "the target cannot open the shared ring: %s", strerror((int)-r));
		return (int)r;
	}
	rfd = (int)r;
	r = rcall(t, SYS_mmap, 0, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, (uint64_t)rfd, 0, &err);
	rcall(t, SYS_close, (uint64_t)rfd, 0, 0, 0, 0, 0, &err);
	if (err < 0)
		goto fail_ptrace;
	if (r < 0 && r > -4096) {
		snprintf(t->why, t->whylen, "the target cannot map the shared ring: %s", strerror((int)-r));
		return (int)r;
	}
	*ring = (uint64_t)r;
	return 0;
fail_ptrace:
	t->ptrace_failed = 1;
	return err;
}

/* The GIL reference of a store: its own memory operand, or its absolute address. */
static struct x86_ref store_ref(const struct gs_inline_site *st)
{
	struct x86_insn in;
	struct x86_ref ref = { 0 };
	if (x86_decode(st->bytes, st->len, st->store, &in) == st->len) {
		if (in.rip_relative) {
			ref.kind = X86_REF_ABS;
			ref.abs = in.mem_addr;
		} else if (in.base_reg >= 0 && in.base_reg < 16 && in.base_reg != 4) {
			ref.kind = X86_REF_BASE;
			ref.base = in.base_reg;
			ref.disp = in.disp;
		}
	}
	return ref;
}

static enum gs_inline_kind site_kind(const struct gs_inline_site *st)
{
	if (st->dropreq)
		return st->value ? GS_INLINE_DROPREQ_SET : GS_INLINE_DROPREQ_RESET;
	return st->value ? GS_INLINE_ACQUIRE : GS_INLINE_RELEASE;
}

/* Step 3: the trampolines' code, for address tramp, in code (TRAMP_SIZE bytes): take_gil's
 * entry (record, the moved prologue, jump back), then each store (a release: record, the moved
 * store; an acquisition: the moved store, record; then the jump back); site_off[i] receives where store i's starts. Returns the length, 0 when an
 * instruction cannot be moved. Pure. */
static size_t emit_trampolines(uint8_t *code, const struct gs_inline_target *tg, uint64_t tramp, uint64_t ring,
			       uint32_t tid_off, size_t *site_off)
{
	size_t o, n;

	o = x86_emit_record(code, ring, NSLOTS, tid_off, GS_INLINE_WAIT, &tg->gil);
	n = x86_relocate(tg->prologue, tg->prologue_len, tg->entry, tramp + o, code + o);
	if (!n)
		return 0;
	o += n;
	if (!x86_emit_jmp(code + o, tramp + o, tg->entry + tg->prologue_len))
		return 0;
	o += 5;
	for (int i = 0; i < tg->nsites; i++) {
		const struct gs_inline_site *st = &tg->sites[i];
		uint64_t at = tramp + o;
		struct x86_ref ref;
		if (o + 256 > TRAMP_SIZE - 64)
			return 0;
		uint32_t kind = (uint32_t)site_kind(st) | (uint32_t)i << 8;
		site_off[i] = o;
		ref = store_ref(st);
		/* A release is recorded before its store, an acquisition after: a thread preempted
		 * between the two still holds the GIL, so no other thread's acquisition can be stamped
		 * before this release, nor this acquisition before the previous holder's release.
		 * Drop requests likewise: a request after its write (made under gil->mutex, as the
		 * release's store is, so its order with a release is exact), a reset before. */
		if (!st->value)
			o += x86_emit_record(code + o, ring, NSLOTS, tid_off, kind, &ref);
		at = tramp + o;
		n = x86_relocate(st->bytes, st->len, st->store, at, code + o);
		if (!n)
			return 0;
		o += n;
		if (st->value)
			o += x86_emit_record(code + o, ring, NSLOTS, tid_off, kind, &ref);
		if (!x86_emit_jmp(code + o, tramp + o, st->store + st->len))
			return 0;
		o += 5;
	}
	return o;
}

/* Step 4: jumps over the moved instructions (the process is stopped, single-threaded); nops
 * fill the rest of what was moved. 0 or -errno (ptrace). */
static int patch_jumps(pid_t pid, const struct gs_inline_target *tg, uint64_t tramp, const size_t *site_off)
{
	uint64_t entry = tg->entry;
	uint8_t jmp[24];
	int err;

	memset(jmp, 0x90, sizeof(jmp));
	x86_emit_jmp(jmp, entry, tramp);
	if ((err = gs_ptrace_write(pid, entry, jmp, tg->prologue_len)) < 0)
		return err;
	gs_handover_step("pokes");
	for (int i = 0; i < tg->nsites; i++) {
		const struct gs_inline_site *st = &tg->sites[i];
		uint64_t store = st->store;
		memset(jmp, 0x90, sizeof(jmp));
		x86_emit_jmp(jmp, store, tramp + site_off[i]);
		if ((err = gs_ptrace_write(pid, store, jmp, st->len)) < 0)
			return err;
	}
	return 0;
}

int gs_inline_setup(struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg, const void *perf_meta,
		    int *pending_sig, char *why, size_t whylen)
{
	struct span sp = { tg->image, 0, 0 };
	struct remote t = { .pid = pid, .pending_sig = pending_sig, .why = why, .whylen = whylen };
	uint64_t tramp = 0, ring = 0;
	uint8_t *code = NULL;
	size_t o, site_off[GS_INLINE_MAX_SITES] = { 0 };
	uint32_t tid_off;
	int err;

	memset(il, 0, sizeof(*il));
	il->memfd = -1;
	if ((err = tsc_calibrate(il, perf_meta, why, whylen)) < 0 || (err = check_patchable(tg, why, whylen)) < 0)
		goto fail;
	if (find_tid_offset(pid, &tid_off) < 0) {
		snprintf(why, whylen, "cannot find the thread id in the C library's thread control block");
		err = -ENOTSUP;
		goto fail;
	}
	gs_maps_foreach(pid, span_cb, &sp);
	if (!sp.lo) {
		snprintf(why, whylen, "%s is not mapped", tg->image);
		err = -ENOENT;
		goto fail;
	}
	t.scratch = tg->entry; /* take_gil's first bytes: restored after each remote call */
	if ((err = map_trampoline_page(&t, &sp, &tramp)) < 0 || (err = map_ring(&t, il, tramp, &ring)) < 0)
		goto fail;
	code = gs_calloc(1, TRAMP_SIZE);
	o = emit_trampolines(code, tg, tramp, ring, tid_off, site_off);
	if (!o) {
		snprintf(why, whylen, "an instruction to move into a trampoline cannot be relocated");
		err = -ENOTSUP;
		goto fail;
	}
	t.ptrace_failed = 1; /* from here on, every failure is a ptrace one */
	if ((err = gs_ptrace_write(pid, tramp, code, o)) < 0 || (err = patch_jumps(pid, tg, tramp, site_off)) < 0)
		goto fail;
	il->trampolines = tramp;
	il->nprobes = 1 + tg->nsites;
	il->settled_ns = gs_now_ns();
	il->ref_tsc = x86_rdtsc();
	il->ref_ns = gs_now_ns();
	free(code);
	return 0;

fail:
	if (t.ptrace_failed && (why[0] == '\0' || err == -ESRCH))
		snprintf(why, whylen, "cannot set inline probes up in process %d: %s", (int)pid, strerror(-err));
	free(code);
	gs_inline_close(il);
	return err ? err : -EIO;
}

/* Between the previous and the current anchor, interpolate (exact at both ends); outside,
 * extrapolate from the nearer one with the rate. */
static uint64_t to_ns(const struct gs_inline *il, uint64_t tsc)
{
	double d;
	if (il->prev_tsc && tsc >= il->prev_tsc && tsc <= il->ref_tsc && il->ref_tsc > il->prev_tsc)
		return il->prev_ns + (uint64_t)((double)(tsc - il->prev_tsc) * (double)(il->ref_ns - il->prev_ns) /
						(double)(il->ref_tsc - il->prev_tsc));
	if (il->prev_tsc && tsc < il->prev_tsc)
		d = (double)(int64_t)(tsc - il->prev_tsc) * il->ns_per_tick, d += (double)il->prev_ns;
	else
		d = (double)(int64_t)(tsc - il->ref_tsc) * il->ns_per_tick + (double)il->ref_ns;
	/* the TSC comes from memory the program can write: a wild value must not make the
	 * conversion undefined (and a time before the clock's start means 0, not 2^64 - x) */
	if (!(d >= 0.0))
		return 0;
	if (d >= 9223372036854775807.0)
		return INT64_MAX;
	return (uint64_t)d;
}

size_t gs_inline_drain(struct gs_inline *il, void (*cb)(const struct gs_inline_event *e, void *arg), void *arg)
{
	volatile uint64_t *hdr = (volatile uint64_t *)il->map;
	size_t n = 0;
	uint64_t t0, t1, now;

	if (!il->map)
		return 0;
	/* re-anchor the conversion: TSC read around CLOCK_MONOTONIC, the tightest of a few tries (a
	 * preemption between the reads would put the anchor off by up to its length) */
	t0 = x86_rdtsc();
	now = gs_now_ns();
	t1 = x86_rdtsc();
	for (int k = 0; k < 4 && t1 - t0 > 4000; k++) {
		uint64_t a = x86_rdtsc(), n2 = gs_now_ns(), b = x86_rdtsc();
		if (b - a < t1 - t0) {
			t0 = a;
			now = n2;
			t1 = b;
		}
	}
	il->prev_tsc = il->ref_tsc;
	il->prev_ns = il->ref_ns;
	il->ref_tsc = t0 + (t1 - t0) / 2;
	il->ref_ns = now;
	if (!il->kernel_rate && now - il->cal_ns > 100000000ull && il->ref_tsc > il->cal_tsc)
		il->ns_per_tick = (double)(now - il->cal_ns) / (double)(il->ref_tsc - il->cal_tsc);
	for (;;) {
		const uint8_t *slot = il->map + X86_RING_HDR + (il->tail & (il->nslots - 1)) * X86_SLOT_SIZE;
		uint64_t seq = __atomic_load_n((const uint64_t *)slot, __ATOMIC_ACQUIRE);
		struct gs_inline_event e;
		uint64_t tsc;
		uint32_t code;
		if (seq != il->tail + 1) {
			uint64_t head = __atomic_load_n(&hdr[X86_RING_HEAD_OFF / 8], __ATOMIC_ACQUIRE);
			if (head <= il->tail) {
				il->stuck_since = 0;
				il->settled_ns = now; /* empty: what comes next is reserved (and stamped) after now */
				break;
			}
			/* reserved but not committed: a writer in the middle (or killed in the middle) */
			if (!il->stuck_since) {
				il->stuck_since = now;
				break;
			}
			if (now - il->stuck_since < 200000000ull)
				break;
			il->skipped++;
			il->tail++;
			il->stuck_since = 0;
			continue;
		}
		il->stuck_since = 0;
		memcpy(&tsc, slot + 8, 8);
		memcpy(&e.tid, slot + 16, 4);
		memcpy(&code, slot + 20, 4);
		memcpy(&e.gil, slot + 24, 8);
		e.time = to_ns(il, tsc);
		/* Slot order is the GIL's own order (a release takes its slot before its store, an
		 * acquisition after its own): the conversion, piecewise linear between anchors, must not
		 * put an event before the one in the slot ahead of it. */
		if (e.time < il->last_ns) {
			e.time = il->last_ns;
			il->clamped++;
		}
		il->last_ns = e.time;
		e.kind = (enum gs_inline_kind)(code & 0xff);
		e.site = code >> 8;
		il->tail++;
		cb(&e, arg);
		if (++n % 4096 == 0) /* a long drain gives space back as it goes */
			__atomic_store_n(&hdr[X86_RING_TAIL_OFF / 8], il->tail, __ATOMIC_RELEASE);
	}
	/* the space read is given back once per drain: a store per event would take the cache line
	 * the writers' next reservations need */
	__atomic_store_n(&hdr[X86_RING_TAIL_OFF / 8], il->tail, __ATOMIC_RELEASE);
	return n;
}

uint64_t gs_inline_lost(const struct gs_inline *il)
{
	if (!il->map)
		return 0;
	return __atomic_load_n((const uint64_t *)(il->map + X86_RING_LOST_OFF), __ATOMIC_ACQUIRE) + il->skipped;
}

void gs_inline_close(struct gs_inline *il)
{
	if (il->map)
		munmap(il->map, il->size);
	if (il->memfd >= 0)
		close(il->memfd);
	il->map = NULL;
	il->memfd = -1;
}
