/* inline.c - inline GIL probes (see inline.h). The machine code is built by x86.c, the remote
 * system calls go through ptrace.c. */
#define _GNU_SOURCE
#include "probe/inline.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/ptrace.h"
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


static int64_t rcall(pid_t pid, uint64_t scratch, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
		     uint64_t a4, uint64_t a5, int *pending_sig, int *err)
{
	uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	int64_t ret = -1;
	*err = gs_ptrace_syscall(pid, scratch, nr, args, &ret, pending_sig);
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

int gs_inline_setup(struct gs_inline *il, pid_t pid, const struct gs_python *py, const void *perf_meta,
		    int *pending_sig, char *why, size_t whylen)
{
	const struct gs_pyimage *img = &py->img;
	const struct perf_event_mmap_page *pm = perf_meta;
	struct span sp = { img->path, 0, 0 };
	uint64_t scratch, tramp = 0, ring = 0, entry = img->take_gil_vaddr + py->bias;
	uint8_t *code = NULL;
	size_t o = 0, site_off[GS_MAX_SITES] = { 0 };
	uint32_t tid_off;
	int err = 0, rfd;
	int64_t r;
	char path[64];

	memset(il, 0, sizeof(*il));
	il->memfd = -1;
	if (pm && pm->cap_user_time && pm->time_shift < 63 && pm->time_mult) {
		il->ns_per_tick = (double)pm->time_mult / (double)(1ull << pm->time_shift);
		il->kernel_rate = 1;
	} else {
		/* measure the TSC rate against CLOCK_MONOTONIC for 5 ms; refined while recording */
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
	if (img->nacquire == 0 || img->nrelease == 0 || img->prologue_len < 5) {
		snprintf(why, whylen, "take_gil's prologue or the GIL stores cannot be moved");
		return -ENOTSUP;
	}
	for (int i = 0; i < img->nsites; i++)
		if (img->sites[i].store_len < 5) {
			snprintf(why, whylen, "a GIL store instruction is too short to patch");
			return -ENOTSUP;
		}
	if (find_tid_offset(pid, &tid_off) < 0) {
		snprintf(why, whylen, "cannot find the thread id in the C library's thread control block");
		return -ENOTSUP;
	}
	gs_maps_foreach(pid, span_cb, &sp);
	if (!sp.lo) {
		snprintf(why, whylen, "%s is not mapped", img->path);
		return -ENOENT;
	}
	scratch = entry; /* take_gil's first bytes: restored after each remote call */

	/* 1. the trampoline page, within a jump of every patched instruction */
	{
		const uint64_t cands[] = { sp.lo - 0x1000000, sp.lo - 0x8000000, sp.hi + 0x10000000, sp.hi + 0x40000000 };
		for (size_t i = 0; i < GS_ARRAY_SIZE(cands) && !tramp; i++) {
			uint64_t a = cands[i] & ~0xfffull;
			if (a < 0x10000 || !in_range(a, sp.lo) || !in_range(a + TRAMP_SIZE, sp.hi))
				continue;
			r = rcall(pid, scratch, SYS_mmap, a, TRAMP_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
				  MAP_PRIVATE | MAP_ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, (uint64_t)-1, 0,
				  pending_sig, &err);
			if (err < 0)
				goto fail_ptrace;
			if ((uint64_t)r == a)
				tramp = a;
			else if (r > 0 && (uint64_t)r < (uint64_t)-4096)
				rcall(pid, scratch, SYS_munmap, (uint64_t)r, TRAMP_SIZE, 0, 0, 0, 0, pending_sig, &err);
		}
		if (!tramp) {
			snprintf(why, whylen, "no room for trampolines within 2 GiB of %s", img->path);
			return -ENOMEM;
		}
	}
	/* 2. the ring: a memfd of ours, opened by the target through /proc */
	il->size = X86_RING_HDR + (size_t)NSLOTS * X86_SLOT_SIZE;
	il->nslots = NSLOTS;
	il->memfd = (int)syscall(SYS_memfd_create, "gilscope-ring", 1u /* MFD_CLOEXEC */);
	if (il->memfd < 0 || ftruncate(il->memfd, (off_t)il->size) < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot create the shared ring: %s", strerror(-err));
		goto fail;
	}
	il->map = mmap(NULL, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, il->memfd, 0);
	if (il->map == MAP_FAILED) {
		il->map = NULL;
		err = -errno;
		snprintf(why, whylen, "cannot map the shared ring: %s", strerror(-err));
		goto fail;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), il->memfd);
	if ((err = gs_mem_write(pid, tramp + TRAMP_SIZE - 64, path, strlen(path) + 1)) < 0)
		goto fail_ptrace;
	r = rcall(pid, scratch, SYS_open, tramp + TRAMP_SIZE - 64, O_RDWR | O_CLOEXEC, 0, 0, 0, 0, pending_sig, &err);
	if (err < 0)
		goto fail_ptrace;
	if (r < 0) {
		err = (int)r;
		snprintf(why, whylen, "the target cannot open the shared ring: %s", strerror((int)-r));
		goto fail;
	}
	rfd = (int)r;
	r = rcall(pid, scratch, SYS_mmap, 0, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, (uint64_t)rfd, 0,
		  pending_sig, &err);
	rcall(pid, scratch, SYS_close, (uint64_t)rfd, 0, 0, 0, 0, 0, pending_sig, &err);
	if (err < 0)
		goto fail_ptrace;
	if (r < 0 && r > -4096) {
		err = (int)r;
		snprintf(why, whylen, "the target cannot map the shared ring: %s", strerror((int)-r));
		goto fail;
	}
	ring = (uint64_t)r;

	/* 3. trampolines: take_gil's entry, then each store */
	code = gs_calloc(1, TRAMP_SIZE);
	{
		uint64_t t = tramp;
		size_t n;
		struct x86_ref eref = { 0 };
		const struct gs_pylayout *l = &img->layout;
		if (l->gil_home == GS_GIL_IN_RUNTIME) {
			eref.kind = X86_REF_ABS;
			eref.abs = py->runtime + l->gil + l->gil_locked;
		} else {
			/* take_gil(tstate): tstate->interp->ceval.gil, then its `locked` */
			eref.kind = X86_REF_CHAIN;
			eref.c0 = l->tstate_interp;
			eref.c1 = l->interp_ceval_gil;
			eref.add = l->gil_locked;
		}
		o = x86_emit_record(code, ring, NSLOTS, tid_off, GS_INLINE_WAIT, &eref);
		n = x86_relocate(img->prologue, img->prologue_len, entry, t + o, code + o);
		if (!n)
			goto unmovable;
		o += n;
		if (!x86_emit_jmp(code + o, t + o, entry + img->prologue_len))
			goto unmovable;
		o += 5;
		for (int i = 0; i < img->nsites; i++) {
			const struct gs_site *st = &img->sites[i];
			uint64_t at = tramp + o, store = st->store + py->bias;
			if (o + 256 > TRAMP_SIZE - 64)
				goto unmovable;
			site_off[i] = o;
			n = x86_relocate(st->store_bytes, st->store_len, store, at, code + o);
			if (!n)
				goto unmovable;
			o += n;
			{
				struct x86_insn in;
				struct x86_ref ref = { 0 };
				if (x86_decode(st->store_bytes, st->store_len, store, &in) == st->store_len) {
					if (in.rip_relative) {
						ref.kind = X86_REF_ABS;
						ref.abs = in.mem_addr;
					} else if (in.base_reg >= 0 && in.base_reg < 16 && in.base_reg != 4) {
						ref.kind = X86_REF_BASE;
						ref.base = in.base_reg;
						ref.disp = in.disp;
					}
				}
				o += x86_emit_record(code + o, ring, NSLOTS, tid_off,
						     (uint32_t)(st->value ? GS_INLINE_ACQUIRE : GS_INLINE_RELEASE) |
							     (uint32_t)i << 8,
						     &ref);
			}
			if (!x86_emit_jmp(code + o, tramp + o, store + st->store_len))
				goto unmovable;
			o += 5;
		}
	}
	if ((err = gs_mem_write(pid, tramp, code, o)) < 0)
		goto fail_ptrace;

	/* 4. patch: jumps over the moved instructions (the process is stopped, single-threaded) */
	{
		uint8_t jmp[24];
		/* the entry trampoline starts at tramp; nops fill the rest of what was moved */
		memset(jmp, 0x90, sizeof(jmp));
		x86_emit_jmp(jmp, entry, tramp);
		if ((err = gs_mem_write(pid, entry, jmp, img->prologue_len)) < 0)
			goto fail_ptrace;
		for (int i = 0; i < img->nsites; i++) {
			const struct gs_site *st = &img->sites[i];
			uint64_t store = st->store + py->bias;
			memset(jmp, 0x90, sizeof(jmp));
			x86_emit_jmp(jmp, store, tramp + site_off[i]);
			if ((err = gs_mem_write(pid, store, jmp, st->store_len)) < 0)
				goto fail_ptrace;
		}
	}
	il->trampolines = tramp;
	il->nprobes = 1 + img->nsites;
	il->ref_tsc = x86_rdtsc();
	il->ref_ns = gs_now_ns();
	free(code);
	return 0;

unmovable:
	snprintf(why, whylen, "an instruction to move into a trampoline cannot be relocated");
	err = -ENOTSUP;
	goto fail;
fail_ptrace:
	if (why[0] == '\0' || err == -ESRCH)
		snprintf(why, whylen, "cannot set inline probes up in process %d: %s", (int)pid, strerror(-err));
fail:
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
	/* re-anchor the conversion: TSC read around CLOCK_MONOTONIC */
	t0 = x86_rdtsc();
	now = gs_now_ns();
	t1 = x86_rdtsc();
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
			uint64_t head = __atomic_load_n(&hdr[0], __ATOMIC_ACQUIRE);
			if (head <= il->tail) {
				il->stuck_since = 0;
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
		e.kind = (enum gs_inline_kind)(code & 0xff);
		e.site = code >> 8;
		il->tail++;
		__atomic_store_n(&hdr[1], il->tail, __ATOMIC_RELEASE);
		cb(&e, arg);
		n++;
	}
	return n;
}

uint64_t gs_inline_lost(const struct gs_inline *il)
{
	if (!il->map)
		return 0;
	return __atomic_load_n((const uint64_t *)(il->map + 16), __ATOMIC_ACQUIRE) + il->skipped;
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
