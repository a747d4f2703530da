/* inline.c - inline GIL probes (see inline.h). The machine code is built by x86.c, the remote
 * system calls go through ptrace.c, every write into the tracee through the guardian (tracer.h). */
#define _GNU_SOURCE
#include "probe/inline.h"
#include "probe/inject.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/ptrace.h"
#include "probe/ringmem.h"
#include "probe/ringpin.h"
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

/* Slots per ring up to 8 CPUs, 256 MiB in all beyond: 32 MiB, 0.4 s of the busiest program on
 * one CPU, more than STUCK_NS of it (a writer preempted mid-slot stops the reader of its ring
 * for that long: with 2^19 slots a ring filled on this 2-CPU VM under load, 22,648 lost). */
#define NSLOTS (1u << 20)
#define STUCK_NS 200000000ull /* a reserved slot not committed after this long is skipped */
#define TRAMP_SIZE GS_INLINE_TRAMP_SIZE

static uint64_t anchor(struct gs_inline *il);

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

/* The default ops: the guardian (ptrace.h, tracer.h). */
static int guardian_syscall(void *ctx, pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret,
			    int *pending_sig)
{
	(void)ctx;
	return gs_ptrace_syscall(pid, scratch, nr, args, ret, pending_sig);
}

static int guardian_write(void *ctx, pid_t pid, uint64_t addr, const void *src, size_t len)
{
	(void)ctx;
	return gs_ptrace_write(pid, addr, src, len);
}

static int guardian_fs_base(void *ctx, pid_t pid, uint64_t *fs)
{
	(void)ctx;
	return gs_ptrace_fs_base(pid, fs);
}

static const struct gs_inline_ops guardian_ops = { guardian_syscall, guardian_write, guardian_fs_base, NULL };

/* A stopped tracee that system calls are run in (at scratch: take_gil's first bytes, restored
 * after each call). */
struct remote {
	const struct gs_inline_ops *ops;
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
	*err = t->ops->syscall(t->ops->ctx, t->pid, t->scratch, nr, args, &ret, t->pending_sig);
	return ret;
}

/* Offset of the thread id in the thread's TCB (glibc's struct pthread.tid, x86_glibc.h), checked
 * against the main thread: the value at %fs:off must be its tid as the thread knows it, the id
 * of its own PID namespace (the last of NSpid: pid itself when the process is in gilscope's
 * namespace, 1 for `unshare --pid --fork python3`; the recorder's tidmap turns the ids the
 * probes write back into host ones). */
static int find_tid_offset(const struct gs_inline_ops *ops, pid_t pid, uint32_t *off)
{
	uint64_t fs;
	uint32_t v, ids[32], own = (uint32_t)pid;
	static const uint32_t candidates[] = GS_GLIBC_PTHREAD_TID_CANDIDATES;
	int n = gs_task_nspid(pid, ids, (int)GS_ARRAY_SIZE(ids));
	if (n >= 1 && ids[0] == (uint32_t)pid)
		own = ids[n - 1];
	if (ops->fs_base(ops->ctx, pid, &fs) < 0 || fs == 0)
		return -ENOENT;
	for (size_t i = 0; i < GS_ARRAY_SIZE(candidates); i++)
		if (gs_mem_read(pid, fs + candidates[i], &v, 4) == 0 && v == own) {
			*off = candidates[i];
			return 0;
		}
	return -ENOENT;
}

/* The CPUs that may ever run the program: the last of /sys/devices/system/cpu/possible, plus 1
 * (CPU numbers are the rings' indexes); the configured count when it cannot be read. */
static unsigned possible_cpus(void)
{
	char buf[256];
	long n = sysconf(_SC_NPROCESSORS_CONF);
	ssize_t len = -1;
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (len > 0) {
		const char *p;
		buf[len] = '\0';
		while (len > 0 && (buf[len - 1] < '0' || buf[len - 1] > '9'))
			buf[--len] = '\0';
		for (p = buf + len; p > buf && p[-1] >= '0' && p[-1] <= '9'; p--)
			;
		if (*p)
			n = strtol(p, NULL, 10) + 1;
	}
	return n > 0 && n <= (long)X86_RING_MAX ? (unsigned)n : X86_RING_MAX;
}

static int in_range(uint64_t a, uint64_t b)
{
	int64_t d = (int64_t)(a - b);
	return d < 0x7ff00000 && d > -0x7ff00000;
}

/* The TSC's rate: the kernel's when perf publishes it, else measured against CLOCK_MONOTONIC for
 * 5 ms (refined while recording). 0 or -ENOTSUP. */
/* The TSC's rate, when the kernel does not publish it, is measured once per gilscope process (5 ms
 * of busy waiting): a recording of a process tree sets inline probes up in every CPython it
 * starts, and the machine's TSC rate is the same for all of them (each refines it from its own
 * calibration start, cal_*). */
static double measured_ns_per_tick;

static int tsc_calibrate(struct gs_inline *il, const struct perf_event_mmap_page *pm, char *why, size_t whylen)
{
	if (pm && pm->cap_user_time && pm->time_shift < 63 && pm->time_mult) {
		il->ns_per_tick = (double)pm->time_mult / (double)(1ull << pm->time_shift);
		il->kernel_rate = 1;
	} else if (measured_ns_per_tick > 0) {
		il->ns_per_tick = measured_ns_per_tick;
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
		measured_ns_per_tick = il->ns_per_tick;
	}
	il->cal_tsc = x86_rdtsc();
	il->cal_ns = gs_now_ns();
	return 0;
}

/* Whether take_gil's prologue and every GIL store can be replaced by a 5-byte jump. 0 or -ENOTSUP. */
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

/* Where the trampoline page may go, within a jump of every patched instruction (the
 * interpreter's mappings span sp), in the order tried: how many (at most 4, in out). */
static size_t tramp_candidates(const struct span *sp, uint64_t *out)
{
	const uint64_t cands[] = { sp->lo - 0x1000000, sp->lo - 0x8000000, sp->hi + 0x10000000, sp->hi + 0x40000000 };
	size_t n = 0;
	for (size_t i = 0; i < GS_ARRAY_SIZE(cands); i++) {
		uint64_t a = cands[i] & ~0xfffull;
		if (a >= 0x10000 && in_range(a, sp->lo) && in_range(a + TRAMP_SIZE, sp->hi))
			out[n++] = a;
	}
	return n;
}

size_t gs_inline_tramp_candidates(pid_t pid, const char *image, uint64_t *out)
{
	struct span sp = { image, 0, 0 };
	gs_maps_foreach(pid, span_cb, &sp);
	return sp.lo ? tramp_candidates(&sp, out) : 0;
}

int gs_inline_straddles(const struct gs_inline_target *tg)
{
	if ((tg->entry ^ (tg->entry + tg->prologue_len - 1)) >> 12)
		return 1;
	for (int i = 0; i < tg->nsites; i++)
		if ((tg->sites[i].store ^ (tg->sites[i].store + tg->sites[i].len - 1)) >> 12)
			return 1;
	return 0;
}

/* Step 1: the trampoline page (tramp_candidates). 0 and *tramp, or -errno. */
static int map_trampoline_page(struct remote *t, const struct span *sp, uint64_t *tramp)
{
	uint64_t cands[4];
	size_t ncands = tramp_candidates(sp, cands);
	int err = 0;
	int64_t r;

	*tramp = 0;
	for (size_t i = 0; i < ncands && !*tramp; i++) {
		uint64_t a = cands[i];
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

/* The target's descriptor tfd as gilscope's own (il->memfd), mapped here (il->map): it must be
 * the ring's memfd (the target is stopped: its table cannot change meanwhile). 0 or -errno. */
static int open_target_ring(struct remote *t, struct gs_inline *il, int64_t tfd)
{
	char path[64], link[64];
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)t->pid, (int)tfd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	if (strncmp(link, "/memfd:gilscope-ring", 20) != 0 || (il->memfd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(t->why, t->whylen, "cannot open the ring created in process %d (%s)", (int)t->pid, path);
		return -EIO;
	}
	il->map = mmap(NULL, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, il->memfd, 0);
	if (il->map == MAP_FAILED) {
		il->map = NULL;
		snprintf(t->why, t->whylen, "cannot map the shared ring: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Can pid make a file of size bytes? 1 or 0. Its RLIMIT_FSIZE (the soft "Max file size" of
 * /proc/PID/limits) must allow it: beyond, ftruncate fails and sends it SIGXFSZ, which kills it. */
static int fsize_allows(pid_t pid, uint64_t size)
{
	char path[64], buf[4096];
	const char *p;
	uint64_t lim = 0;
	long n;
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	n = gs_read_file(path, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (!(p = strstr(buf, "Max file size")))
		return 1;
	for (p += 13; *p == ' '; p++)
		;
	if (strncmp(p, "unlimited", 9) == 0)
		return 1;
	for (; *p >= '0' && *p <= '9' && lim < (1ull << 60); p++)
		lim = lim * 10 + (uint64_t)(*p - '0');
	return lim >= size;
}

/* The ring made by the target: a memfd it creates (its name at name_at) and sizes, that gilscope
 * opens. 0 and its descriptor in *tfd (-1: none made), or -errno. */
static int ring_by_target(struct remote *t, struct gs_inline *il, uint64_t name_at, int64_t *tfd)
{
	int err;
	int64_t r;
	*tfd = rcall(t, SYS_memfd_create, name_at, 1u /* MFD_CLOEXEC */, 0, 0, 0, 0, &err);
	if (err < 0 || *tfd < 0) {
		if (err == 0)
			snprintf(t->why, t->whylen, "the target cannot create the shared ring: %s",
				 strerror((int)-*tfd));
		err = err ? err : (int)*tfd;
		*tfd = -1;
		return err;
	}
	r = rcall(t, SYS_ftruncate, (uint64_t)*tfd, il->size, 0, 0, 0, 0, &err);
	if (err == 0 && r < 0) {
		snprintf(t->why, t->whylen, "the target cannot size the shared ring: %s", strerror((int)-r));
		err = (int)r;
	}
	return err < 0 ? err : open_target_ring(t, il, *tfd);
}

/* The ring made by gilscope (a target whose file size limit is below the ring's: see
 * fsize_allows), that the target opens by the owner mark's path (its user must be gilscope's).
 * 0 and its descriptor in *tfd (-1: none opened), or -errno. */
static int ring_by_gilscope(struct remote *t, struct gs_inline *il, uint64_t mark_at, int64_t *tfd)
{
	char path[64];
	int err;
	*tfd = -1;
	il->memfd = (int)syscall(SYS_memfd_create, "gilscope-ring", 1u /* MFD_CLOEXEC */);
	if (il->memfd < 0 || ftruncate(il->memfd, (off_t)il->size) < 0 ||
	    (il->map = mmap(NULL, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, il->memfd, 0)) == MAP_FAILED) {
		il->map = NULL;
		snprintf(t->why, t->whylen, "cannot create the shared ring: %s", strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), il->memfd);
	if ((err = t->ops->write(t->ops->ctx, t->pid, mark_at, path, strlen(path) + 1)) < 0)
		return err;
	*tfd = rcall(t, SYS_open, mark_at, O_RDWR | O_CLOEXEC, 0, 0, 0, 0, &err);
	if (err == 0 && *tfd < 0) {
		snprintf(t->why, t->whylen, "the target cannot open the shared ring: %s", strerror((int)-*tfd));
		err = (int)*tfd;
	}
	if (err < 0)
		*tfd = -1;
	return err;
}

/* Step 2: the ring, a memfd the target creates itself (so that whatever its user, it may map
 * it; made by gilscope when the target's file size limit is too low), that gilscope maps too; the
 * owner mark, the path of gilscope's descriptor, is written at the end of the trampoline page.
 * Each step leaves the target whole if gilscope is killed after it: a provisional mark
 * ("/proc/PID/fd/0", never a ring: its owner is taken for gone) says whose the page is from the
 * first moment, a descriptor left in the target is one the next gilscope closes (record/pyprobes.h,
 * gs_pyprobes_scrub). 0 and *ring, or -errno. */
static int map_ring(struct remote *t, struct gs_inline *il, const struct x86_ring_geom *g, uint64_t tramp,
		    uint64_t *ring)
{
	static const char name[] = "gilscope-ring";
	const uint64_t name_at = tramp + GS_INLINE_OWNER_OFF - 32, mark_at = tramp + GS_INLINE_OWNER_OFF;
	char path[64];
	int err, cerr = 0;
	int64_t r = 0, tfd;

	il->size = x86_ring_size(g);
	il->nslots = g->nslots;
	il->nrings = g->nrings;
	il->rings = gs_calloc(g->nrings, sizeof(*il->rings));
	snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)getpid());
	if ((err = t->ops->write(t->ops->ctx, t->pid, mark_at, path, strlen(path) + 1)) < 0 ||
	    (err = t->ops->write(t->ops->ctx, t->pid, name_at, name, sizeof(name))) < 0) {
		t->ptrace_failed = 1;
		return err;
	}
	gs_test_point("provisional mark written");
	if (fsize_allows(t->pid, il->size))
		err = ring_by_target(t, il, name_at, &tfd);
	else
		err = ring_by_gilscope(t, il, mark_at, &tfd);
	if (err == 0) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), il->memfd);
		if ((err = t->ops->write(t->ops->ctx, t->pid, mark_at, path, strlen(path) + 1)) == 0)
			gs_test_point("owner mark written");
	}
	if (err == 0)
		r = rcall(t, SYS_mmap, 0, il->size, PROT_READ | PROT_WRITE, MAP_SHARED, (uint64_t)tfd, 0, &err);
	if (tfd >= 0 && err != -ESRCH) { /* its descriptor goes whatever happened: the mapping (or nothing) stays */
		rcall(t, SYS_close, (uint64_t)tfd, 0, 0, 0, 0, 0, &cerr);
		err = err ? err : cerr;
	}
	if (err == 0 && r < 0 && r > -4096) {
		snprintf(t->why, t->whylen, "the target cannot map the shared ring: %s", strerror((int)-r));
		err = (int)r;
	}
	if (err < 0) {
		t->ptrace_failed = !t->why[0];
		return err;
	}
	gs_test_point("ring mapped");
	*ring = (uint64_t)r;
	return 0;
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
static size_t emit_trampolines(uint8_t *code, const struct gs_inline_target *tg, uint64_t tramp,
			       const struct x86_ring_geom *g, uint32_t tid_off, size_t *site_off)
{
	size_t o, n;

	o = x86_emit_record(code, g, tid_off, GS_INLINE_WAIT, &tg->gil, 0);
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
		if (o + 256 > GS_INLINE_OWNER_OFF)
			return 0;
		uint32_t kind = (uint32_t)site_kind(st) | (uint32_t)i << 8;
		site_off[i] = o;
		ref = store_ref(st);
		/* A release is recorded before its store, an acquisition after (its TSC read after an
		 * lfence): a thread preempted between the two still holds the GIL, so no other
		 * thread's acquisition can be stamped before this release, nor this acquisition before
		 * the previous holder's release, whatever CPUs (rings) they ran on. Drop requests
		 * likewise: a request after its write (made under gil->mutex, as the release's store
		 * is, so its order with a release is exact), a reset before. */
		if (!st->value)
			o += x86_emit_record(code + o, g, tid_off, kind, &ref, 0);
		at = tramp + o;
		n = x86_relocate(st->bytes, st->len, st->store, at, code + o);
		if (!n)
			return 0;
		o += n;
		if (st->value)
			o += x86_emit_record(code + o, g, tid_off, kind, &ref, 1);
		if (!x86_emit_jmp(code + o, tramp + o, st->store + st->len))
			return 0;
		o += 5;
	}
	return o;
}

/* Step 4: jumps over the moved instructions (the process is stopped; no thread inside them); nops
 * fill the rest of what was moved. 0 or -errno (ptrace). */
int gs_inline_patch(const struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg,
		    const struct gs_inline_ops *ops)
{
	const size_t *site_off = il->site_off;
	uint64_t tramp = il->trampolines;
	uint64_t entry = tg->entry;
	uint8_t jmp[24];
	int err;

	memset(jmp, 0x90, sizeof(jmp));
	x86_emit_jmp(jmp, entry, tramp);
	if (!ops)
		ops = &guardian_ops;
	if ((err = ops->write(ops->ctx, pid, entry, jmp, tg->prologue_len)) < 0)
		return err;
	gs_handover_step("pokes");
	gs_test_point("take_gil patched");
	for (int i = 0; i < tg->nsites; i++) {
		const struct gs_inline_site *st = &tg->sites[i];
		uint64_t store = st->store;
		memset(jmp, 0x90, sizeof(jmp));
		x86_emit_jmp(jmp, store, tramp + site_off[i]);
		if ((err = ops->write(ops->ctx, pid, store, jmp, st->len)) < 0)
			return err;
		gs_test_point("a GIL store patched");
	}
	return 0;
}

int gs_inline_map(struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg, const void *perf_meta,
		  const struct gs_inline_ops *ops, int *pending_sig, char *why, size_t whylen)
{
	struct span sp = { tg->image, 0, 0 };
	struct remote t = { .pid = pid, .pending_sig = pending_sig, .why = why, .whylen = whylen };
	uint64_t tramp = 0;
	unsigned ncpus = possible_cpus();
	struct x86_ring_geom g = x86_ring_geom_for(ncpus, (uint64_t)NSLOTS * (ncpus < 8 ? ncpus : 8));
	uint8_t *code = NULL;
	size_t o;
	uint32_t tid_off;
	int err;

	memset(il, 0, sizeof(*il));
	il->memfd = -1;
	t.ops = ops ? ops : &guardian_ops;
	if ((err = tsc_calibrate(il, perf_meta, why, whylen)) < 0 || (err = check_patchable(tg, why, whylen)) < 0)
		goto fail;
	if (find_tid_offset(t.ops, pid, &tid_off) < 0) {
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
	if ((err = map_trampoline_page(&t, &sp, &tramp)) < 0)
		goto fail;
	il->trampolines = tramp;
	gs_test_point("trampoline page mapped");
	if ((err = map_ring(&t, il, &g, tramp, &g.base)) < 0)
		goto fail;
	il->ring_addr = g.base;
	code = gs_calloc(1, TRAMP_SIZE);
	o = emit_trampolines(code, tg, tramp, &g, tid_off, il->site_off);
	if (!o) {
		snprintf(why, whylen, "an instruction to move into a trampoline cannot be relocated");
		err = -ENOTSUP;
		goto fail;
	}
	t.ptrace_failed = 1; /* from here on, every failure is a ptrace one */
	if ((err = t.ops->write(t.ops->ctx, pid, tramp, code, o)) < 0)
		goto fail;
	gs_test_point("trampolines written");
	il->nprobes = 1 + tg->nsites;
	il->settled_ns = gs_now_ns();
	(void)anchor(il);
	free(code);
	return 0;

fail:
	if (t.ptrace_failed && (why[0] == '\0' || err == -ESRCH))
		snprintf(why, whylen, "cannot set inline probes up in process %d: %s", (int)pid, strerror(-err));
	free(code);
	gs_inline_close(il);
	return err ? err : -EIO;
}

int gs_inline_setup(struct gs_inline *il, pid_t pid, const struct gs_inline_target *tg, const void *perf_meta,
		    int *pending_sig, char *why, size_t whylen)
{
	int err = gs_inline_map(il, pid, tg, perf_meta, NULL, pending_sig, why, whylen);
	if (err < 0)
		return err;
	if ((err = gs_inline_patch(il, pid, tg, NULL)) < 0) {
		snprintf(why, whylen, "cannot set inline probes up in process %d: %s", (int)pid, strerror(-err));
		gs_inline_close(il);
	}
	return err;
}

/* One committed slot, copied out of its ring. */
struct gs_inline_slot {
	uint64_t tsc, gil;
	uint32_t tid, code;
};

/* ns0 + (tsc - tsc0) * rate, in range: the TSC comes from memory the program can write, a wild
 * value must not make the conversion undefined (and a time before the clock's start means 0,
 * not 2^64 - x). */
static uint64_t line(uint64_t tsc0, uint64_t ns0, uint64_t tsc, double rate)
{
	double d = (double)(int64_t)(tsc - tsc0) * rate + (double)ns0;
	if (!(d >= 0.0))
		return 0;
	if (d >= 9223372036854775807.0)
		return INT64_MAX;
	return (uint64_t)d;
}

#define ANCHOR(il, i) ((il)->anchors[((il)->first_anchor + (i)) % GS_INLINE_ANCHORS])

/* The TSC's time: between two anchors, interpolated (exact at both); before the oldest or after
 * the newest, extrapolated with the rate. Monotonic in tsc. */
static uint64_t to_ns(struct gs_inline *il, uint64_t tsc)
{
	unsigned lo = 0, hi;
	if (tsc - il->hint_tsc < il->hint_span) /* mostly the last bracket; as signed: all below 2^62 */
		return il->hint_ns + (uint64_t)(int64_t)((double)(int64_t)(tsc - il->hint_tsc) * il->slope);
	if (il->nanchors == 0)
		return line(il->ref_tsc, il->ref_ns, tsc, il->ns_per_tick);
	if (tsc < ANCHOR(il, 0).tsc)
		return line(ANCHOR(il, 0).tsc, ANCHOR(il, 0).ns, tsc, il->ns_per_tick);
	hi = il->nanchors - 1;
	if (tsc >= ANCHOR(il, hi).tsc)
		return line(ANCHOR(il, hi).tsc, ANCHOR(il, hi).ns, tsc, il->ns_per_tick);
	while (hi - lo > 1) { /* ANCHOR(lo).tsc <= tsc < ANCHOR(hi).tsc */
		unsigned mid = lo + (hi - lo) / 2;
		if (ANCHOR(il, mid).tsc <= tsc)
			lo = mid;
		else
			hi = mid;
	}
	il->slope = (double)(ANCHOR(il, hi).ns - ANCHOR(il, lo).ns) / (double)(ANCHOR(il, hi).tsc - ANCHOR(il, lo).tsc);
	il->hint_tsc = ANCHOR(il, lo).tsc;
	il->hint_ns = ANCHOR(il, lo).ns;
	il->hint_span = il->slope > 0 && ANCHOR(il, hi).ns - il->hint_ns < 1ull << 62
				? ANCHOR(il, hi).tsc - il->hint_tsc
				: 0; /* 0: no fast path */
	return ANCHOR(il, lo).ns + (uint64_t)((double)(tsc - ANCHOR(il, lo).tsc) * il->slope);
}

/* Re-anchors the conversion: TSC read around CLOCK_MONOTONIC, the tightest of a few tries (a
 * preemption between the reads would put the anchor off by up to its length). Returns now. */
static uint64_t anchor(struct gs_inline *il)
{
	uint64_t t0 = x86_rdtsc(), now = gs_now_ns(), t1 = x86_rdtsc();
	for (int k = 0; k < 4 && t1 - t0 > 4000; k++) {
		uint64_t a = x86_rdtsc(), n2 = gs_now_ns(), b = x86_rdtsc();
		if (b - a < t1 - t0) {
			t0 = a;
			now = n2;
			t1 = b;
		}
	}
	t0 += (t1 - t0) / 2;
	if (il->nanchors && (t0 <= il->ref_tsc || now < il->ref_ns))
		return now; /* not after the newest: the line stays as it is */
	il->ref_tsc = t0;
	il->ref_ns = now;
	il->hint_span = 0;
	il->slope = 0;
	if (il->nanchors == GS_INLINE_ANCHORS)
		il->first_anchor = (il->first_anchor + 1) % GS_INLINE_ANCHORS;
	else
		il->nanchors++;
	ANCHOR(il, il->nanchors - 1).tsc = t0;
	ANCHOR(il, il->nanchors - 1).ns = now;
	if (!il->kernel_rate && now - il->cal_ns > 100000000ull && il->ref_tsc > il->cal_tsc)
		il->ns_per_tick = (double)(now - il->cal_ns) / (double)(il->ref_tsc - il->cal_tsc);
	return now;
}

static int batch_room(struct gs_inline *il, size_t n)
{
	size_t cap = il->batch_cap ? il->batch_cap : 4096;
	struct gs_inline_slot *b;
	if (n < il->batch_cap)
		return 0;
	while (cap <= n)
		cap *= 2;
	b = realloc(il->batch, cap * sizeof(*b));
	if (!b)
		return -ENOMEM;
	il->batch = b;
	il->batch_cap = cap;
	return 0;
}

/* Copies ring r's committed slots (seq == tail + 1: the ring is the program's memory), in slot order, to il->batch
 * from n (one ring's worth at most: the writers may not keep the reader), gives their space back; the new end. */
static size_t read_ring(struct gs_inline *il, uint32_t r, uint64_t now, size_t n)
{
	struct gs_inline_ring *st = &il->rings[r];
	uint8_t *ring = il->map + (size_t)r * X86_RING_STRIDE(il->nslots);
	uint64_t *head = (uint64_t *)(ring + X86_RING_HEAD_OFF), start = st->tail;

	while (st->tail - start < il->nslots && batch_room(il, n) == 0) {
		const uint8_t *slot = ring + X86_RING_RHDR + (st->tail & (il->nslots - 1)) * X86_SLOT_SIZE;
		uint64_t seq = __atomic_load_n((const uint64_t *)slot, __ATOMIC_ACQUIRE);
		struct gs_inline_slot *e = &il->batch[n];
		if (seq != st->tail + 1) {
			if (__atomic_load_n(head, __ATOMIC_ACQUIRE) - st->tail - 1 >= il->nslots) {
				st->stuck_since = 0; /* empty: what comes next is reserved (and stamped) after now */
				st->settled_ns = now;
				break;
			}
			/* reserved but not committed: a writer in the middle (or killed in the middle) */
			if (!st->stuck_since)
				st->stuck_since = now;
			if (now - st->stuck_since < STUCK_NS)
				break;
			il->skipped++;
			gs_ringpin_add(st, st->tail, now, &il->pins_expired);
			st->tail++;
			st->stuck_since = 0;
			continue;
		}
		st->stuck_since = 0;
		memcpy(&e->tsc, slot + 8, 8);
		memcpy(&e->tid, slot + 16, 4);
		memcpy(&e->code, slot + 20, 4);
		memcpy(&e->gil, slot + 24, 8);
		st->tail++;
		n++;
	}
	if (il->memfd >= 0) /* our map: its pages allocated ahead of its writers */
		gs_ringmem_ahead(ring + X86_RING_RHDR, il->nslots * X86_SLOT_SIZE, &st->ready, *head, X86_SLOT_SIZE);
	/* the space read is given back once per drain, on the reader's own line, up to a pinned slot */
	__atomic_store_n((uint64_t *)(ring + X86_RING_TAIL_OFF),
			 gs_ringpin_release(st, ring, il->nslots, now, &il->pins_expired), __ATOMIC_RELEASE);
	return n;
}

/* Gives one event at time t, at or after *floor (the watermark given before, then the time of the
 * event given before it: only a wild TSC in the program's memory or a rate that changed move one). */
static void deliver(struct gs_inline *il, const struct gs_inline_slot *s, uint64_t t, uint64_t *floor,
		    void (*cb)(const struct gs_inline_event *e, void *arg), void *arg)
{
	struct gs_inline_event e = { .time = t,
				     .tid = s->tid,
				     .gil = s->gil,
				     .kind = (enum gs_inline_kind)(s->code & 0xff),
				     .site = s->code >> 8 };
	if (e.time < *floor) {
		e.time = *floor;
		il->clamped++;
	}
	il->last_ns = *floor = e.time;
	cb(&e, arg);
}

/* Keeps e for the next drain. 0, or -ENOMEM (then it is given now). */
static int carry(struct gs_inline *il, const struct gs_inline_slot *e)
{
	if (il->ncarry == il->carry_cap) {
		size_t cap = il->carry_cap ? 2 * il->carry_cap : 256;
		struct gs_inline_slot *c = realloc(il->carry, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		il->carry = c;
		il->carry_cap = cap;
	}
	il->carry[il->ncarry++] = *e;
	return 0;
}

/* Reads every ring into il->batch after the events carried from the drain before; *nrun runs,
 * each in TSC order, [run[i], end[i]). Returns the batch's length. */
static size_t read_rings(struct gs_inline *il, uint64_t now, size_t *run, size_t *end, size_t *nrun, uint64_t *settled)
{
	size_t n = 0;

	*nrun = 0;
	*settled = UINT64_MAX;
	if (il->ncarry && batch_room(il, il->ncarry) == 0) {
		memcpy(il->batch, il->carry, il->ncarry * sizeof(*il->carry)); /* sorted when kept */
		run[0] = 0;
		end[0] = n = il->ncarry;
		*nrun = 1;
		il->ncarry = 0;
	}
	for (uint32_t r = 0; r < il->nrings; r++) {
		size_t from = n;
		n = read_ring(il, r, now, n);
		if (il->rings[r].settled_ns < *settled)
			*settled = il->rings[r].settled_ns;
		if (n == from)
			continue;
		/* a ring's slots are nearly in TSC order (not when a writer was preempted between its
		 * reservation and its rdtsc): an insertion sort, linear on sorted slots */
		for (size_t i = from + 1; i < n; i++) {
			struct gs_inline_slot e = il->batch[i];
			size_t j = i;
			for (; j > from && il->batch[j - 1].tsc > e.tsc; j--)
				il->batch[j] = il->batch[j - 1];
			il->batch[j] = e;
		}
		run[*nrun] = from;
		end[(*nrun)++] = n;
	}
	return n;
}

static inline int slot_before(const struct gs_inline *il, size_t i, size_t j) /* older TSC, or as old, read first */
{
	uint64_t a = il->batch[i].tsc, b = il->batch[j].tsc;
	return a < b || (a == b && i < j);
}

size_t gs_inline_drain(struct gs_inline *il, int final, void (*cb)(const struct gs_inline_event *e, void *arg),
		       void *arg)
{
	uint64_t now, floor = il->last_ns, settled, horizon;
	size_t given = 0, *run, nrun, *end;

	if (!il->map || !il->rings)
		return 0;
	/* nothing given now may be older than the watermark the last drain promised (the merge has
	 * written out everything before it): a slot that became readable late, or a TSC the newer
	 * anchors convert a little earlier, is given at that watermark (counted as clamped) */
	if (il->settled_ns > floor)
		floor = il->settled_ns;
	now = anchor(il);
	/* a wild TSC (more than a second ahead) is given now: kept, it could wait forever */
	horizon = il->ref_tsc + (uint64_t)(1e9 / (il->ns_per_tick > 1e-6 ? il->ns_per_tick : 1e-6));
	run = gs_calloc(2 * ((size_t)il->nrings + 1), sizeof(*run));
	end = run + il->nrings + 1;
	read_rings(il, now, run, end, &nrun, &settled);
	if (settled != UINT64_MAX && settled > il->settled_ns)
		il->settled_ns = settled;
	/* the runs merged by TSC (ties: the one read first); given: what is older than the new
	 * watermark (every event read later is newer), so that the events given by successive
	 * drains are in time order; kept for the next drain: the rest */
	while (nrun > 0) {
		size_t best = 0, next = SIZE_MAX; /* next: the run whose head bounds best's run */
		for (size_t j = 1; j < nrun; j++)
			if (slot_before(il, run[j], run[best]))
				best = j;
		for (size_t j = 0; j < nrun; j++)
			if (j != best && (next == SIZE_MAX || slot_before(il, run[j], run[next])))
				next = j;
		do {
			const struct gs_inline_slot *e = &il->batch[run[best]++];
			uint64_t t = to_ns(il, e->tsc);
			if (!final && t >= il->settled_ns && e->tsc < horizon && carry(il, e) == 0)
				continue;
			deliver(il, e, t, &floor, cb, arg);
			given++;
		} while (run[best] < end[best] && (next == SIZE_MAX || slot_before(il, run[best], run[next])));
		if (run[best] == end[best]) {
			run[best] = run[--nrun];
			end[best] = end[nrun];
		}
	}
	free(run);
	return given;
}

int gs_inline_reader_init(struct gs_inline *il, uint8_t *map, uint32_t nrings, uint64_t nslots)
{
	memset(il, 0, sizeof(*il));
	il->memfd = -1;
	il->rings = calloc(nrings ? nrings : 1, sizeof(*il->rings));
	if (!il->rings)
		return -ENOMEM;
	il->map = map;
	il->nrings = nrings;
	il->nslots = nslots;
	il->size = (size_t)nrings * X86_RING_STRIDE(nslots);
	il->ns_per_tick = 1.0;
	il->cal_tsc = x86_rdtsc();
	il->cal_ns = il->settled_ns = gs_now_ns();
	(void)anchor(il);
	return 0;
}

uint64_t gs_inline_lost(const struct gs_inline *il)
{
	uint64_t lost = il->skipped;
	if (!il->map)
		return 0;
	for (uint32_t r = 0; r < il->nrings; r++)
		lost += __atomic_load_n(
			(const uint64_t *)(il->map + (size_t)r * X86_RING_STRIDE(il->nslots) + X86_RING_LOST_OFF),
			__ATOMIC_ACQUIRE);
	return lost;
}

void gs_inline_close(struct gs_inline *il)
{
	if (il->map && il->memfd >= 0)
		munmap(il->map, il->size);
	if (il->memfd >= 0)
		close(il->memfd);
	free(il->rings);
	free(il->batch);
	free(il->carry);
	il->carry = NULL;
	il->ncarry = il->carry_cap = 0;
	il->rings = NULL;
	il->batch = NULL;
	il->batch_cap = 0;
	il->map = NULL;
	il->memfd = -1;
}
