/* python.c - CPython detection and GIL location, from ELF files and /proc. */
#define _GNU_SOURCE
#include "cpython/python.h"
#include "cpython/imgcache.h"
#include "cpython/elfsym.h"
#include "base/procfs.h"
#include "base/util.h"
#include "probe/x86.h"
#include "probe/x86_glibc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Direct branch targets in the first instructions of a function: the first call and the
 * first unconditional jump leaving [start, start+size). */
static int first_branch(const struct gs_elf *elf, uint64_t start, uint64_t size, enum x86_kind kind, uint64_t *target)
{
	uint8_t buf[256];
	size_t n = size && size < sizeof(buf) ? size : sizeof(buf);
	uint64_t off = 0;

	while (n > 16 && gs_elf_read(elf, start, buf, n) < 0)
		n /= 2;
	if (n <= 16 && gs_elf_read(elf, start, buf, n) < 0)
		return -EFAULT;
	while (off < n) {
		struct x86_insn in;
		unsigned len = x86_decode(buf + off, n - off, start + off, &in);
		if (!len)
			return -EINVAL;
		if (in.kind == kind &&
		    (kind != X86_JMP_REL || !size || in.target < start || in.target >= start + size)) {
			*target = in.target;
			return 0;
		}
		if (in.kind == X86_RET && kind == X86_CALL_REL)
			return -ENOENT;
		off += len;
	}
	return -ENOENT;
}

/* Does the code at target reach the function whose GOT slot is slot (a PLT stub)? */
static int is_plt_stub_for(const struct gs_elf *elf, uint64_t target, uint64_t slot)
{
	uint8_t buf[32];
	uint64_t off = 0;
	if (gs_elf_read(elf, target, buf, sizeof(buf)) < 0)
		return 0;
	for (int i = 0; i < 3 && off < sizeof(buf); i++) {
		struct x86_insn in;
		unsigned len = x86_decode(buf + off, sizeof(buf) - off, target + off, &in);
		if (!len)
			return 0;
		if (in.kind == X86_JMP_IND_RIP)
			return in.mem_addr == slot;
		off += len;
	}
	return 0;
}

struct scan_result {
	int calls_timedwait;
	int locked_store; /* found `movl $1, X` where X is the layout's locked field */
};

/* Linear sweep of [start, end): looks for a call to pthread_cond_timedwait (directly, or in a
 * direct callee when depth > 0: unoptimised builds wrap it in PyCOND_TIMEDWAIT) and for the
 * `locked = 1` store. */
static void scan_function(const struct gs_elf *elf, uint64_t start, uint64_t end, uint64_t timedwait_slot,
			  uint64_t locked_vaddr, uint32_t locked_runtime_off, int depth, struct scan_result *r)
{
	size_t n;
	uint8_t *buf;
	uint64_t off = 0;

	if (end <= start || end - start > (1u << 16))
		end = start + 4096;
	n = (size_t)(end - start);
	buf = gs_malloc(n);
	while (n > 64 && gs_elf_read(elf, start, buf, n) < 0)
		n -= 64;
	while (off < n && !(r->calls_timedwait && r->locked_store)) {
		struct x86_insn in;
		unsigned len = x86_decode(buf + off, n - off, start + off, &in);
		if (!len) {
			off++;
			continue;
		}
		if (in.kind == X86_CALL_REL && timedwait_slot) {
			if (is_plt_stub_for(elf, in.target, timedwait_slot)) {
				r->calls_timedwait = 1;
			} else if (depth > 0) {
				uint64_t cs, ce;
				struct scan_result sub = { 0 };
				if (gs_elf_function_bounds(elf, in.target, &cs, &ce) == 0 && cs == in.target &&
				    ce - cs < 4096) {
					scan_function(elf, cs, ce, timedwait_slot, 0, 0, depth - 1, &sub);
					r->calls_timedwait |= sub.calls_timedwait;
				}
			}
		}
		if (in.kind == X86_CALL_IND_RIP && timedwait_slot && in.mem_addr == timedwait_slot)
			r->calls_timedwait = 1;
		if (locked_runtime_off && in.kind == X86_STORE_IMM && in.imm == 1 && in.width == 4 &&
		    ((in.rip_relative && in.mem_addr == locked_vaddr) ||
		     (!in.rip_relative && (uint64_t)in.disp == locked_runtime_off)))
			r->locked_store = 1;
		off += len;
	}
	free(buf);
}

/* 3.9, 3.10: no Py_Version. The minor version from the file name (python3.X, libpython3.X),
 * the full one from the PY_VERSION string ("3.X.Y") in the read-only data. */
static int version_from_strings(struct gs_pyimage *img, const struct gs_elf *elf, const char *path)
{
	const char *base = strrchr(path, '/'), *p;
	uint64_t minor = 0, a, size;
	char want[16];
	uint8_t *buf;
	base = base ? base + 1 : path;
	p = strstr(base, "python3.");
	if (!p)
		return -1;
	p += 8;
	while (*p >= '0' && *p <= '9' && minor < 100)
		minor = minor * 10 + (uint64_t)(*p++ - '0');
	if (!minor || minor >= 100)
		return -1;
	img->major = 3;
	img->minor = (unsigned)minor;
	snprintf(img->version, sizeof(img->version), "3.%u", img->minor);
	snprintf(want, sizeof(want), "3.%u.", img->minor);
	if (gs_elf_section(elf, ".rodata", &a, &size) < 0 || size > (64u << 20))
		return 0;
	buf = gs_malloc(size);
	if (gs_elf_read(elf, a, buf, size) == 0) {
		size_t wl = strlen(want);
		for (size_t i = 1; i + wl + 2 < size; i++) {
			size_t j = i + wl, k;
			if (buf[i - 1] != 0 || memcmp(buf + i, want, wl) != 0 || buf[j] < '0' || buf[j] > '9')
				continue;
			for (k = j; k < size && k < j + 8 && buf[k] >= '0' && buf[k] <= '9'; k++)
				;
			if (k < size && buf[k] == 0) {
				img->micro = 0;
				for (size_t m = j; m < k; m++)
					img->micro = img->micro * 10 + (unsigned)(buf[m] - '0');
				snprintf(img->version, sizeof(img->version), "3.%u.%u", img->minor, img->micro);
				break;
			}
		}
	}
	free(buf);
	return 0;
}

/* take_gil in a stripped image: PyEval_AcquireLock ends in a tail jump to it, and the first
 * direct call of PyEval_RestoreThread goes to it. Both must agree. */
static int take_gil_by_calls(const struct gs_elf *elf, uint64_t *a1, uint64_t *a2)
{
	uint64_t s1, s2, size;
	int ok1 = gs_elf_dynsym(elf, "PyEval_AcquireLock", &s1, &size) == 0 &&
		  first_branch(elf, s1, size, X86_JMP_REL, a1) == 0;
	int ok2 = gs_elf_dynsym(elf, "PyEval_RestoreThread", &s2, &size) == 0 &&
		  first_branch(elf, s2, size, X86_CALL_REL, a2) == 0;
	if (!ok1)
		*a1 = 0;
	return ok1 && ok2 && *a1 == *a2 ? 0 : -ENOENT;
}

int gs_pyimage_take_gil_by_calls(const char *path, uint64_t *addr)
{
	struct gs_elf *elf;
	uint64_t a2 = 0;
	int err = gs_elf_open(path, &elf);
	if (err < 0)
		return err;
	err = take_gil_by_calls(elf, addr, &a2);
	gs_elf_free(elf);
	return err == 0 || *addr ? 0 : err;
}

static void add_site(struct gs_pyimage *img, const struct gs_elf *elf, uint64_t after, int value, uint64_t store,
		     unsigned store_len)
{
	uint64_t off;
	struct gs_site *st;
	for (int i = 0; i < img->nsites; i++)
		if (img->sites[i].vaddr == after)
			return;
	if (img->nsites >= GS_MAX_SITES || gs_elf_vaddr_to_offset(elf, after, &off) < 0 || store_len > 15)
		return;
	st = &img->sites[img->nsites];
	st->vaddr = after;
	st->offset = off;
	st->value = value;
	st->store = store;
	st->store_len = store_len;
	if (gs_elf_read(elf, store, st->store_bytes, store_len) < 0)
		st->store_len = 0;
	img->nsites++;
	if (value)
		img->nacquire++;
	else
		img->nrelease++;
}

/* The ways an instruction can address gil->locked: RIP-relative to its static address (abs, 0
 * when it has none), or base + one of the displacements of `locked` from the structures the
 * GIL code works from (the runtime, the ceval struct, the interpreter, the GIL struct). */
struct locked_ref {
	uint64_t abs;
	uint64_t disps[4];
	int ndisps;
};

static void locked_refs(const struct gs_pyimage *img, struct locked_ref *lr)
{
	const struct gs_pylayout *l = &img->layout;
	memset(lr, 0, sizeof(*lr));
	lr->disps[lr->ndisps++] = l->gil_locked;
	if (l->gil_home == GS_GIL_IN_RUNTIME) {
		lr->abs = img->runtime_vaddr + l->gil + l->gil_locked;
		lr->disps[lr->ndisps++] = l->gil + l->gil_locked;
		lr->disps[lr->ndisps++] = l->ceval_gil + l->gil_locked;
	} else if (l->interp_gil) {
		lr->disps[lr->ndisps++] = l->interp_gil + l->gil_locked;
		if (l->main_interp)
			lr->abs = img->runtime_vaddr + l->main_interp + l->interp_gil + l->gil_locked;
	}
}

static int refs_locked(const struct locked_ref *lr, const struct x86_insn *in)
{
	if (in->rip_relative)
		return lr->abs && in->mem_addr == lr->abs;
	for (int i = 0; i < lr->ndisps; i++)
		if ((uint64_t)in->disp == lr->disps[i])
			return in->base_reg != X86_REG_NONE;
	return 0;
}

static int is_locked_store(const struct locked_ref *lr, const struct x86_insn *in, int value)
{
	return in->kind == X86_STORE_IMM && in->width == 4 && in->imm == value && refs_locked(lr, in);
}

struct swept {
	uint64_t addr;
	unsigned len;
	struct x86_insn in;
};

/* Decodes a whole function from its entry. Returns the number of instructions (0 on failure);
 * *v is allocated. Stops at the first undecodable byte rather than guess. */
static size_t sweep(const struct gs_elf *elf, uint64_t start, uint64_t end, struct swept **v)
{
	uint8_t *buf;
	size_t n, nv = 0;
	uint64_t off = 0;

	*v = NULL;
	if (end <= start || end - start > (1u << 16))
		return 0;
	n = (size_t)(end - start);
	buf = gs_malloc(n);
	if (gs_elf_read(elf, start, buf, n) < 0) {
		free(buf);
		return 0;
	}
	*v = gs_calloc(n, sizeof(**v));
	while (off < n) {
		unsigned len = x86_decode(buf + off, n - off, start + off, &(*v)[nv].in);
		if (!len)
			break;
		(*v)[nv].addr = start + off;
		(*v)[nv].len = len;
		nv++;
		off += len;
	}
	free(buf);
	return nv;
}

/* Where to put the uprobe for the store at index i: the first direct branch, call or return
 * after it (x86 uprobes emulate those, while any other instruction needs a single step, i.e.
 * a debug trap that costs microseconds in a virtual machine), provided no jump in the function
 * lands between the store and that instruction (every path reaching the probe did the store).
 * Otherwise the instruction right after the store. */
static uint64_t probe_point(const struct swept *v, size_t n, size_t i)
{
	size_t j;
	for (j = i + 1; j < n && j <= i + 8; j++) {
		enum x86_kind k = v[j].in.kind;
		if (k == X86_CALL_REL || k == X86_JMP_REL || k == X86_JCC_REL || k == X86_RET)
			break;
	}
	if (j < n && j <= i + 8) {
		for (size_t k = 0; k < n; k++) {
			enum x86_kind kk = v[k].in.kind;
			if ((kk == X86_JMP_REL || kk == X86_JCC_REL || kk == X86_CALL_REL) &&
			    v[k].in.target > v[i].addr && v[k].in.target <= v[j].addr)
				return i + 1 < n ? v[i + 1].addr : v[i].addr + v[i].len;
		}
		return v[j].addr;
	}
	return i + 1 < n ? v[i + 1].addr : v[i].addr + v[i].len;
}

static void site_at(struct gs_pyimage *img, const struct gs_elf *elf, const struct swept *v, size_t n, size_t i,
		    int value)
{
	add_site(img, elf, probe_point(v, n, i), value, v[i].addr, v[i].len);
}

/* The GIL is taken by the `locked = 1` store in take_gil. */
static void find_acquire_sites(struct gs_pyimage *img, const struct gs_elf *elf, const struct locked_ref *lr)
{
	uint64_t fs, fe;
	struct swept *v;
	size_t n;
	if (gs_elf_function_bounds(elf, img->take_gil_vaddr, &fs, &fe) < 0)
		return;
	n = sweep(elf, fs, fe, &v);
	for (size_t i = 0; i < n; i++)
		if (is_locked_store(lr, &v[i].in, 1))
			site_at(img, elf, v, n, i, 1);
	free(v);
}

/* The address of a PLT stub that jumps through GOT slot `slot` (.plt or .plt.sec). */
static uint64_t plt_stub(const struct gs_elf *elf, uint64_t slot)
{
	static const char *const secs[] = { ".plt.sec", ".plt" };
	for (size_t s = 0; s < GS_ARRAY_SIZE(secs); s++) {
		uint64_t a, size, off = 0;
		uint8_t *buf;
		if (gs_elf_section(elf, secs[s], &a, &size) < 0 || size > (1u << 22))
			continue;
		buf = gs_malloc(size);
		if (gs_elf_read(elf, a, buf, size) < 0) {
			free(buf);
			continue;
		}
		while (off < size) {
			struct x86_insn in;
			unsigned len = x86_decode(buf + off, size - off, a + off, &in);
			if (!len) {
				off++;
				continue;
			}
			if (in.kind == X86_JMP_IND_RIP && in.mem_addr == slot) {
				uint64_t at = a + off;
				static const uint8_t endbr[4] = { 0xf3, 0x0f, 0x1e, 0xfa };
				if (off >= 4 && memcmp(buf + off - 4, endbr, 4) == 0)
					at -= 4;
				free(buf);
				return at;
			}
			off += len;
		}
		free(buf);
	}
	return 0;
}

/* Every copy of drop_gil (out of line or inlined into PyEval_SaveThread and friends) ends a
 * hold with `locked = 0` and then signals gil->cond, which lies 16 bytes after `locked`: find
 * each call to pthread_cond_signal whose argument is computed from the same base as a preceding
 * `locked = 0` store, at that store's displacement + 16. */
static void release_sites_in(struct gs_pyimage *img, const struct gs_elf *elf, const struct locked_ref *lr, uint64_t fs,
			     uint64_t fe, uint64_t stub, uint64_t slot, uint64_t mutex_lock_stub)
{
	struct swept *v;
	size_t n = sweep(elf, fs, fe, &v);
	for (size_t c = 0; c < n; c++) {
		const struct x86_insn *call = &v[c].in;
		const struct x86_insn *arg = NULL;
		if (!((call->kind == X86_CALL_REL && stub && call->target == stub) ||
		      (call->kind == X86_CALL_IND_RIP && slot && call->mem_addr == slot)))
			continue;
		for (size_t k = c; k-- > 0 && k + 6 >= c;)
			if ((v[k].in.kind == X86_LEA || v[k].in.kind == X86_MOV_IMM) && v[k].in.reg == 7) {
				arg = &v[k].in;
				break;
			}
		if (!arg)
			continue;
		int found = 0;
		for (size_t k = c; k-- > 0 && k + 8 >= c;) {
			const struct x86_insn *st = &v[k].in;
			int match = 0;
			if (!is_locked_store(lr, st, 0))
				continue;
			if (st->rip_relative)
				match = (arg->kind == X86_MOV_IMM && (uint64_t)arg->imm == st->mem_addr + 16) ||
					(arg->kind == X86_LEA && arg->rip_relative &&
					 arg->mem_addr == st->mem_addr + 16);
			else
				match = arg->kind == X86_LEA && arg->base_reg == st->base_reg &&
					arg->disp == st->disp + 16;
			if (match) {
				site_at(img, elf, v, n, k, 0);
				found = 1;
				break;
			}
		}
		if (found || arg->kind != X86_LEA || arg->rip_relative)
			continue;
		/* The compiler may keep &gil->locked in a register of its own: `movl $0, (%reg)` just
		 * before signalling the GIL's condition variable (lea cond(%base), cond = 16 bytes after
		 * a `locked` displacement), after locking the GIL's mutex: drop_gil's shape. */
		{
			int cond_of_gil = 0, locked_mutex = 0;
			for (int d = 0; d < lr->ndisps; d++)
				cond_of_gil |= (uint64_t)arg->disp == lr->disps[d] + 16;
			for (size_t k = c; k-- > 0 && k + 12 >= c;)
				if (v[k].in.kind == X86_CALL_REL && v[k].in.target == mutex_lock_stub &&
				    mutex_lock_stub)
					locked_mutex = 1;
			if (!cond_of_gil || !locked_mutex)
				continue;
			for (size_t k = c; k-- > 0 && k + 8 >= c;) {
				const struct x86_insn *st = &v[k].in;
				if (v[k].in.kind == X86_CALL_REL)
					break; /* not past the mutex lock */
				if (st->kind == X86_STORE_IMM && st->width == 4 && st->imm == 0 && st->disp == 0 &&
				    st->base_reg >= 0 && st->base_reg < 16) {
					site_at(img, elf, v, n, k, 0);
					break;
				}
			}
		}
	}
	free(v);
}

static void find_release_sites(struct gs_pyimage *img, const struct gs_elf *elf, const struct locked_ref *lr)
{
	uint64_t slot = 0, stub = 0, seg, segend, done_fs = 0, mslot = 0, mstub = 0;
	size_t nseg;

	if (gs_elf_plt_slot(elf, "pthread_cond_signal", &slot) < 0)
		return;
	stub = plt_stub(elf, slot);
	if (gs_elf_plt_slot(elf, "pthread_mutex_lock", &mslot) == 0)
		mstub = plt_stub(elf, mslot);
	for (nseg = 0; gs_elf_exec_segment(elf, nseg, &seg, &segend) == 0; nseg++) {
		uint64_t size = segend - seg;
		uint8_t *buf;
		if (size > (256u << 20))
			continue;
		buf = gs_malloc(size);
		if (gs_elf_read(elf, seg, buf, size) == 0) {
			for (uint64_t i = 0; i + 6 <= size; i++) {
				int32_t rel;
				uint64_t fs, fe;
				int hit = 0;
				if (buf[i] == 0xe8 && stub) {
					memcpy(&rel, buf + i + 1, 4);
					hit = seg + i + 5 + (uint64_t)(int64_t)rel == stub;
				} else if (buf[i] == 0xff && buf[i + 1] == 0x15) {
					memcpy(&rel, buf + i + 2, 4);
					hit = seg + i + 6 + (uint64_t)(int64_t)rel == slot;
				}
				if (!hit || gs_elf_function_bounds(elf, seg + i, &fs, &fe) < 0 || fs == done_fs)
					continue;
				done_fs = fs; /* one sweep per function */
				release_sites_in(img, elf, lr, fs, fe, stub, slot, mstub);
			}
		}
		free(buf);
	}
}

static void find_sites(struct gs_pyimage *img, const struct gs_elf *elf)
{
	struct locked_ref lr;
	locked_refs(img, &lr);
	find_acquire_sites(img, elf, &lr);
	find_release_sites(img, elf, &lr);
}

/* take_gil's relocatable prologue (see gs_pyimage.prologue). */
static void find_prologue(struct gs_pyimage *img, const struct gs_elf *elf)
{
	uint8_t buf[4096];
	uint64_t fs, fe, off = 0, n;
	unsigned len = 0;

	if (gs_elf_function_bounds(elf, img->take_gil_vaddr, &fs, &fe) < 0 || fs != img->take_gil_vaddr)
		return;
	n = fe - fs < sizeof(buf) ? fe - fs : sizeof(buf);
	if (gs_elf_read(elf, fs, buf, n) < 0)
		return;
	while (len < 5) {
		struct x86_insn in;
		unsigned l = x86_decode(buf + len, n - len, fs + len, &in);
		if (!l || in.kind != X86_OTHER || in.rip_relative || len + l > sizeof(img->prologue))
			return;
		len += l;
	}
	/* no jump inside the function may land within the moved bytes (after the entry) */
	while (off < n) {
		struct x86_insn in;
		unsigned l = x86_decode(buf + off, n - off, fs + off, &in);
		if (!l)
			break;
		if ((in.kind == X86_JMP_REL || in.kind == X86_JCC_REL) && in.target > fs && in.target < fs + len)
			return;
		off += l;
	}
	memcpy(img->prologue, buf, len);
	img->prologue_len = len;
}

static void version_from_hex(struct gs_pyimage *img, uint32_t hex)
{
	img->major = hex >> 24;
	img->minor = (hex >> 16) & 0xff;
	img->micro = (hex >> 8) & 0xff;
	unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
	const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
	if (*lv)
		snprintf(img->version, sizeof(img->version), "%u.%u.%u%s%u", img->major, img->minor, img->micro, lv,
			 serial);
	else
		snprintf(img->version, sizeof(img->version), "%u.%u.%u", img->major, img->minor, img->micro);
}

/* The layout of img's version: the table row, completed from _Py_DebugOffsets (3.13+). 0, or
 * -ENOTSUP with a sentence in why (unknown version, untrustworthy or free-threaded layout). */
static int layout_of(struct gs_pyimage *img, const struct gs_elf *elf, char *why, size_t whylen)
{
	const struct gs_pylayout *row = gs_pylayout_find(img->major, img->minor, img->debug);
	uint8_t dobuf[GS_PYLAYOUT_DEBUG_OFFSETS_LEN];
	size_t dolen = sizeof(dobuf);
	const char *reason = "cannot read _PyRuntime";
	int rd;

	if (!row) {
		snprintf(why, whylen,
			 "CPython %s%s is not supported by this gilscope (supported: 3.9 to 3.15 release builds, "
			 "3.11 debug builds)",
			 img->version, img->debug ? " (debug build)" : "");
		return -ENOTSUP;
	}
	img->layout = *row;
	snprintf(img->layout_source, sizeof(img->layout_source), "built-in table");
	if (!img->layout.debug_offsets)
		return 0;
	rd = gs_elf_read(elf, img->runtime_vaddr, dobuf, dolen);
	if (rd < 0) {
		dolen = 512; /* enough for the GIL's numbers (the stack walker's are then missing) */
		rd = gs_elf_read(elf, img->runtime_vaddr, dobuf, dolen);
	}
	if (rd < 0 || gs_pylayout_from_debug_offsets(&img->layout, dobuf, dolen, img->major, img->minor,
						     &img->free_threaded, &reason) < 0) {
		snprintf(why, whylen, "CPython %s: %s; gilscope cannot trust its layout", img->version, reason);
		return -ENOTSUP;
	}
	snprintf(img->layout_source, sizeof(img->layout_source), "_Py_DebugOffsets");
	if (img->free_threaded) {
		snprintf(why, whylen,
			 "CPython %s is a free-threaded build: this gilscope records thread states only for it",
			 img->version);
		return -ENOTSUP;
	}
	return 0;
}

int gs_pyimage_analyse(const char *path, struct gs_pyimage *img, char *why, size_t whylen)
{
	return gs_pyimage_analyse_as(path, path, img, why, whylen);
}

/* "/proc/PID/root" for a file named through /proc/PID/ (gs_proc_open_mapped), else NULL. */
static const char *sysroot_of(const char *file, char *buf, size_t len)
{
	const char *p = file + 6;
	if (strncmp(file, "/proc/", 6) != 0 || *p < '1' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p != '/' || (size_t)(p - file) + 6 > len)
		return NULL;
	snprintf(buf, len, "%.*sroot", (int)(p - file + 1), file);
	return buf;
}

int gs_pyimage_analyse_as(const char *file, const char *path, struct gs_pyimage *img, char *why, size_t whylen)
{
	char sysroot[64];
	struct gs_elf *elf = NULL;
	uint64_t addr, size, vhex_addr, slot = 0;
	uint32_t vhex;
	int err;

	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", path);
	snprintf(img->file, sizeof(img->file), "%s", file);
	err = gs_elf_open_in(file, sysroot_of(file, sysroot, sizeof(sysroot)), &elf);
	if (err < 0) {
		snprintf(why, whylen, "%s: %s", path, gs_elf_strerror(err));
		return err == -GS_ENOTELF ? -ENOENT : err;
	}
	if (gs_elf_symbol(elf, "_PyRuntime", &img->runtime_vaddr, &size) < 0) {
		snprintf(why, whylen, "%s does not contain a CPython runtime (no _PyRuntime symbol)", path);
		err = -ENOENT;
		goto out;
	}
	img->shared = gs_elf_dynsym(elf, "Py_Main", &addr, &size) == 0 && gs_elf_is_pie_or_dyn(elf) &&
		      strstr(path, "libpython") != NULL;
	img->stripped = !gs_elf_has_symtab(elf);
	snprintf(img->symbols_from, sizeof(img->symbols_from), "%s", gs_elf_symbols_from(elf));
	snprintf(img->build_id, sizeof(img->build_id), "%s", gs_elf_build_id(elf));
	img->debug = gs_elf_symbol(elf, "_Py_RefTotal", &addr, &size) == 0 ||
		     gs_elf_symbol(elf, "_Py_NegativeRefcount", &addr, &size) == 0;

	if (gs_elf_symbol(elf, "Py_Version", &vhex_addr, &size) == 0 &&
	    gs_elf_read(elf, vhex_addr, &vhex, sizeof(vhex)) == 0 && (vhex >> 24) == 3) {
		version_from_hex(img, vhex);
	} else if (version_from_strings(img, elf, path) < 0) {
		snprintf(why, whylen, "%s: a CPython whose version cannot be read (no Py_Version, no version string)",
			 path);
		err = -ENOTSUP;
		goto out;
	}
	if ((err = layout_of(img, elf, why, whylen)) < 0)
		goto out;
	img->have_layout = 1;

	/* take_gil: the symbol table when there is one, else the call targets of exported functions */
	if (gs_elf_symbol(elf, "take_gil", &img->take_gil_vaddr, &size) == 0 &&
	    gs_elf_dynsym(elf, "take_gil", &addr, &size) != 0) {
		snprintf(img->take_gil_how, sizeof(img->take_gil_how), "%s", gs_elf_symbols_from(elf));
	} else {
		uint64_t a1 = 0, a2 = 0;
		if (take_gil_by_calls(elf, &a1, &a2) == 0) {
			img->take_gil_vaddr = a1;
			snprintf(img->take_gil_how, sizeof(img->take_gil_how),
				 "call-target analysis (PyEval_AcquireLock and PyEval_RestoreThread agree)");
		} else if (a1) {
			/* 3.13+: PyEval_RestoreThread goes through _PyThreadState_Attach; the tail jump of
			 * PyEval_AcquireLock alone, validated below (it must wait on the condition variable) */
			img->take_gil_vaddr = a1;
			snprintf(img->take_gil_how, sizeof(img->take_gil_how),
				 "call-target analysis (PyEval_AcquireLock's tail jump)");
		} else {
			snprintf(why, whylen,
				 "%s is stripped and take_gil could not be located from PyEval_AcquireLock / "
				 "PyEval_RestoreThread (targets %#lx / %#lx); install the interpreter's debug symbols",
				 path, (unsigned long)a1, (unsigned long)a2);
			err = -ENOTSUP;
			goto out;
		}
	}
	if (gs_elf_vaddr_to_offset(elf, img->take_gil_vaddr, &img->take_gil_offset) < 0) {
		snprintf(why, whylen, "%s: take_gil at %#lx is outside every loadable segment", path,
			 (unsigned long)img->take_gil_vaddr);
		err = -GS_ECORRUPT;
		goto out;
	}

	/* Validate: take_gil waits on pthread_cond_timedwait and stores locked = 1. */
	{
		uint64_t fs, fe;
		struct scan_result r = { 0 };
		const struct gs_pylayout *l = &img->layout;
		uint32_t locked_off = l->gil_home == GS_GIL_IN_RUNTIME ? l->gil + l->gil_locked : l->gil_locked;
		if (gs_elf_function_bounds(elf, img->take_gil_vaddr, &fs, &fe) < 0 || fs != img->take_gil_vaddr) {
			fs = img->take_gil_vaddr;
			fe = fs + 2048;
		}
		gs_elf_plt_slot(elf, "pthread_cond_timedwait", &slot);
		scan_function(elf, fs, fe, slot, l->gil_home == GS_GIL_IN_RUNTIME ? img->runtime_vaddr + locked_off : 0,
			      locked_off, 1, &r);
		if (slot && !r.calls_timedwait) {
			snprintf(why, whylen,
				 "%s: the function found as take_gil (%#lx) does not wait on pthread_cond_timedwait; "
				 "refusing to trace the wrong function",
				 path, (unsigned long)img->take_gil_vaddr);
			err = -ENOTSUP;
			goto out;
		}
		img->layout_checked = r.locked_store;
	}
	/* the out-of-line drop_gil: its symbol, or PyEval_ReleaseLock's tail jump */
	if (gs_elf_symbol(elf, "drop_gil", &addr, &size) == 0) {
		img->drop_gil_vaddr = addr;
	} else {
		uint64_t s1;
		if (gs_elf_dynsym(elf, "PyEval_ReleaseLock", &s1, &size) == 0)
			first_branch(elf, s1, size, X86_JMP_REL, &img->drop_gil_vaddr);
	}
	find_sites(img, elf);
	find_prologue(img, elf);
	gs_dropreq_find(elf, &img->layout, img->take_gil_vaddr, img->drop_gil_vaddr, &img->dropreq);
	err = 0;
out:
	gs_elf_free(elf);
	return err;
}

struct find_ctx {
	struct gs_pyimage_cache *cache;
	pid_t pid;
	char exe[PATH_MAX];
	uint64_t exe_ino; /* the executable's inode and device (/proc/PID/exe), 0 unknown */
	dev_t exe_dev;
	struct gs_python *py;
	char *why;
	size_t whylen;
	int result;
	char tried[8][PATH_MAX];
	int ntried;
};

/* The executable's device and inode: its mappings, whatever their path. */
static void exe_identity(struct find_ctx *c)
{
	char exe[64];
	struct stat st;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)c->pid);
	if (stat(exe, &st) == 0) {
		c->exe_ino = (uint64_t)st.st_ino;
		c->exe_dev = st.st_dev;
	}
}

static int is_candidate(const struct find_ctx *c, const struct gs_map *m)
{
	const char *base = strrchr(m->path, '/');
	base = base ? base + 1 : m->path;
	if (c->exe_ino && m->inode == c->exe_ino && m->dev_major == major(c->exe_dev) &&
	    m->dev_minor == minor(c->exe_dev))
		return 1;
	return strcmp(m->path, c->exe) == 0 || strncmp(base, "libpython", 9) == 0;
}

static int find_cb(const struct gs_map *m, void *arg)
{
	struct find_ctx *c = arg;
	char why[512] = "", file[PATH_MAX];
	int err, fd;

	if (!m->path[0] || m->path[0] != '/' || !is_candidate(c, m))
		return 0;
	for (int i = 0; i < c->ntried; i++)
		if (strcmp(c->tried[i], m->path) == 0)
			return 0;
	if (c->ntried < 8)
		snprintf(c->tried[c->ntried++], PATH_MAX, "%s", m->path);
	if ((fd = gs_proc_open_mapped(c->pid, m, file, sizeof(file))) < 0) {
		/* said unless a runtime is found in another file */
		snprintf(c->why, c->whylen, "cannot read %s as process %d maps it: %s", m->path, (int)c->pid,
			 gs_proc_mapped_strerror(fd, m));
		c->result = -ESTALE;
		return 0;
	}
	err = gs_pyimage_cache_analyse(c->cache, fd, file, m->path, &c->py->img, why, sizeof(why));
	close(fd);
	if (err == -ENOENT)
		return 0;
	if (err < 0) /* (why is written on failure only) */
		snprintf(c->why, c->whylen, "%s", why);
	c->result = err;
	return 1; /* the runtime is here (supported or not) */
}

/* Second pass: the bias of the image, from the mapping with the lowest file offset. */
struct bias_ctx {
	const char *path;
	struct gs_elf *elf;
	uint64_t bias;
	int found;
};

static int bias_cb(const struct gs_map *m, void *arg)
{
	struct bias_ctx *b = arg;
	if (b->found || strcmp(m->path, b->path) != 0)
		return 0;
	if (gs_elf_load_bias(b->elf, m->start, m->offset, &b->bias) == 0)
		b->found = 1;
	return 0;
}

int gs_python_find_cached(pid_t pid, struct gs_python *py, struct gs_pyimage_cache *cache, char *why, size_t whylen)
{
	struct find_ctx *c = gs_calloc(1, sizeof(*c));
	struct bias_ctx b = { 0 };
	const struct gs_pylayout *l;
	int err;

	memset(py, 0, sizeof(*py));
	py->pid = pid;
	c->cache = cache;
	c->pid = pid;
	c->py = py;
	c->why = why;
	c->whylen = whylen;
	c->result = -ENOENT;
	snprintf(why, whylen, "no CPython runtime found in the process");
	if ((err = gs_proc_exe(pid, c->exe, sizeof(c->exe))) < 0) {
		snprintf(why, whylen, "cannot read /proc/%d/exe: %s", (int)pid, strerror(-err));
		free(c);
		return err;
	}
	exe_identity(c);
	err = gs_maps_foreach(pid, find_cb, c);
	if (err < 0) {
		snprintf(why, whylen, "cannot read /proc/%d/maps: %s", (int)pid, strerror(-err));
		free(c);
		return err;
	}
	err = c->result;
	free(c);
	if (err < 0)
		return err;

	b.path = py->img.path;
	if ((err = gs_elf_open(py->img.file, &b.elf)) < 0) {
		snprintf(why, whylen, "%s: %s", py->img.file, gs_elf_strerror(err));
		return err;
	}
	gs_maps_foreach(pid, bias_cb, &b);
	gs_elf_free(b.elf);
	if (!b.found) {
		snprintf(why, whylen, "cannot find where %s is loaded in process %d", py->img.path, (int)pid);
		return -ENOENT;
	}
	l = &py->img.layout;
	py->bias = b.bias;
	py->runtime = py->img.runtime_vaddr + b.bias;
	py->drop_request = l->drop_request ? py->runtime + l->drop_request : 0;
	return 0;
}

long gs_gil_holder_walk(const struct gs_pylayout *l, uint64_t runtime, gs_mem_reader read, void *ctx)
{
	int32_t locked;
	uint64_t gil, holder, tid = 0;
	int err;

	if (l->gil_home == GS_GIL_IN_RUNTIME) {
		gil = runtime + l->gil;
	} else {
		uint64_t interp;
		if ((err = read(ctx, runtime + l->interp_main, &interp, 8)) < 0)
			return err;
		if (!interp)
			return -ENOENT; /* not initialised */
		if ((err = read(ctx, interp + l->interp_ceval_gil, &gil, 8)) < 0)
			return err;
	}
	if ((err = read(ctx, gil + l->gil_locked, &locked, sizeof(locked))) < 0)
		return err;
	if (locked != 1)
		return 0;
	if ((err = read(ctx, gil + l->gil_last_holder, &holder, sizeof(holder))) < 0)
		return err;
	if (!holder)
		return -ENOENT;
	if (l->tstate_native_tid) {
		err = read(ctx, holder + l->tstate_native_tid, &tid, sizeof(tid));
	} else {
		/* 3.9, 3.10: thread_id is pthread_self(); glibc keeps the TID in struct pthread (x86_glibc.h) */
		uint64_t pt;
		uint32_t t32 = 0;
		err = read(ctx, holder + l->tstate_thread_id, &pt, 8);
		if (!err)
			err = read(ctx, pt + GS_GLIBC_PTHREAD_TID_OFFSET, &t32, 4);
		tid = t32;
	}
	if (err < 0)
		return err;
	if (tid == 0 || tid > 0x7fffffff)
		return -ENOENT;
	return (long)tid;
}

static int proc_reader(void *ctx, uint64_t addr, void *dst, size_t len)
{
	return gs_mem_read(*(pid_t *)ctx, addr, dst, len);
}

long gs_python_gil_holder(const struct gs_python *py)
{
	pid_t pid = py->pid;
	return gs_gil_holder_walk(&py->img.layout, py->runtime, proc_reader, &pid);
}
