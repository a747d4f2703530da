/* python.c - CPython detection and GIL location, from ELF files and /proc. */
#define _GNU_SOURCE
#include "python.h"
#include "elfsym.h"
#include "procfs.h"
#include "util.h"
#include "x86.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Direct branch targets in the first instructions of a function: the first call and the
 * first unconditional jump leaving [start, start+size). */
static int first_branch(const struct gs_elf *elf, uint64_t start, uint64_t size, enum x86_kind kind,
			uint64_t *target)
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
		if (in.kind == kind && (kind != X86_JMP_REL || !size || in.target < start || in.target >= start + size)) {
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

/* take_gil in a stripped image: PyEval_AcquireLock ends in a tail jump to it, and the first
 * direct call of PyEval_RestoreThread goes to it. Both must agree. */
static int take_gil_by_calls(const struct gs_elf *elf, uint64_t *a1, uint64_t *a2)
{
	uint64_t s1, s2, size;
	int ok1 = gs_elf_dynsym(elf, "PyEval_AcquireLock", &s1, &size) == 0 &&
		  first_branch(elf, s1, size, X86_JMP_REL, a1) == 0;
	int ok2 = gs_elf_dynsym(elf, "PyEval_RestoreThread", &s2, &size) == 0 &&
		  first_branch(elf, s2, size, X86_CALL_REL, a2) == 0;
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
	return err;
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

/* Is the store to `locked`? RIP-relative to its static address, or base+displacement with the
 * displacement of `locked` from the runtime, the ceval struct or the GIL struct (the bases
 * take_gil and drop_gil work from). */
static int stores_locked(const struct gs_pyimage *img, const struct x86_insn *in, int allow_base)
{
	const struct gs_pylayout *l = img->layout;
	uint64_t locked = img->runtime_vaddr + l->gil + l->gil_locked;
	if (in->kind != X86_STORE_IMM || in->width != 4 || (in->imm != 0 && in->imm != 1))
		return 0;
	if (in->rip_relative)
		return in->mem_addr == locked;
	return allow_base && ((uint64_t)in->disp == l->gil + l->gil_locked ||
			      (uint64_t)in->disp == l->ceval_gil + l->gil_locked || (uint64_t)in->disp == l->gil_locked);
}

struct swept {
	uint64_t addr;
	unsigned len;
	enum x86_kind kind;
	uint64_t target;
	int store_value; /* -1: not a store to locked */
};

/* Where to put the uprobe for a store at index i: the first direct branch, call or return
 * after it (x86 uprobes emulate those, while any other instruction needs a single step, i.e.
 * a debug trap that costs microseconds in a virtual machine), provided no jump in the function
 * lands between the store and that instruction (every path reaching the probe did the store).
 * Otherwise the instruction right after the store. */
static uint64_t probe_point(const struct swept *v, size_t n, size_t i)
{
	size_t j;
	for (j = i + 1; j < n && j <= i + 8; j++) {
		if (v[j].kind == X86_CALL_REL || v[j].kind == X86_JMP_REL || v[j].kind == X86_JCC_REL ||
		    v[j].kind == X86_RET)
			break;
	}
	if (j < n && j <= i + 8) {
		for (size_t k = 0; k < n; k++) {
			if ((v[k].kind == X86_JMP_REL || v[k].kind == X86_JCC_REL || v[k].kind == X86_CALL_REL) &&
			    v[k].target > v[i].addr && v[k].target <= v[j].addr)
				return i + 1 < n ? v[i + 1].addr : v[i].addr + v[i].len;
		}
		return v[j].addr;
	}
	return i + 1 < n ? v[i + 1].addr : v[i].addr + v[i].len;
}

/* Sweeps one function from its entry, recording the stores to `locked` as sites. Returns 1
 * when an instruction starts exactly at must_have (0: no such check), else 0. */
static int sweep_function(struct gs_pyimage *img, const struct gs_elf *elf, uint64_t start, uint64_t end,
			  int allow_base, uint64_t must_have)
{
	uint8_t *buf;
	size_t n, nv = 0;
	uint64_t off = 0;
	int hit = 0;
	struct swept *v;

	if (end <= start || end - start > (1u << 16))
		return 0;
	n = (size_t)(end - start);
	buf = gs_malloc(n);
	v = gs_calloc(n, sizeof(*v));
	if (gs_elf_read(elf, start, buf, n) < 0)
		goto out;
	while (off < n) {
		struct x86_insn in;
		unsigned len = x86_decode(buf + off, n - off, start + off, &in);
		if (!len)
			break; /* lost sync: stop rather than guess */
		if (must_have && start + off == must_have)
			hit = 1;
		v[nv].addr = start + off;
		v[nv].len = len;
		v[nv].kind = in.kind;
		v[nv].target = in.target;
		v[nv].store_value = stores_locked(img, &in, allow_base) ? (int)in.imm : -1;
		nv++;
		off += len;
	}
	if (must_have && !hit)
		goto out;
	for (size_t i = 0; i < nv; i++)
		if (v[i].store_value >= 0)
			add_site(img, elf, probe_point(v, nv, i), v[i].store_value, v[i].addr, v[i].len);
out:
	free(v);
	free(buf);
	return hit;
}

/* Every instruction storing 0 or 1 to gil->locked: in take_gil and the out-of-line drop_gil
 * (any base register), and anywhere in the image through a RIP-relative store to its static
 * address (drop_gil inlined into PyEval_SaveThread and friends in static builds). */
static void find_sites(struct gs_pyimage *img, const struct gs_elf *elf)
{
	const struct gs_pylayout *l = img->layout;
	uint64_t locked = img->runtime_vaddr + l->gil + l->gil_locked, fs, fe;
	size_t nseg = 0;

	if (gs_elf_function_bounds(elf, img->take_gil_vaddr, &fs, &fe) == 0)
		sweep_function(img, elf, fs, fe, 1, 0);
	/* a site found twice (base+disp and RIP-relative sweeps) is kept once by add_site */
	if (img->drop_gil_vaddr && gs_elf_function_bounds(elf, img->drop_gil_vaddr, &fs, &fe) == 0)
		sweep_function(img, elf, fs, fe, 1, 0);
	/* c7 05 disp32 imm32 = movl $imm32, disp32(%rip) */
	for (uint64_t seg = 0; gs_elf_exec_segment(elf, nseg, &seg, &fe) == 0; nseg++) {
		uint64_t size = fe - seg;
		uint8_t *buf;
		if (size > (256u << 20))
			continue;
		buf = gs_malloc(size);
		if (gs_elf_read(elf, seg, buf, size) == 0) {
			for (uint64_t i = 0; i + 10 <= size; i++) {
				int32_t disp, imm;
				const uint8_t *q = memchr(buf + i, 0xc7, size - i);
				if (!q)
					break;
				i = (uint64_t)(q - buf);
				if (i + 10 > size || buf[i + 1] != 0x05)
					continue;
				memcpy(&disp, buf + i + 2, 4);
				memcpy(&imm, buf + i + 6, 4);
				if (seg + i + 10 + (uint64_t)(int64_t)disp != locked || (imm != 0 && imm != 1))
					continue;
				/* only a real instruction boundary: the function's own sweep must land on it */
				if (gs_elf_function_bounds(elf, seg + i, &fs, &fe) == 0)
					sweep_function(img, elf, fs, fe, 0, seg + i);
			}
		}
		free(buf);
	}
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

int gs_pyimage_analyse(const char *path, struct gs_pyimage *img, char *why, size_t whylen)
{
	struct gs_elf *elf = NULL;
	uint64_t addr, size, vhex_addr, slot = 0;
	uint32_t vhex;
	int err;

	memset(img, 0, sizeof(*img));
	snprintf(img->path, sizeof(img->path), "%s", path);
	err = gs_elf_open(path, &elf);
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
	snprintf(img->build_id, sizeof(img->build_id), "%s", gs_elf_build_id(elf));
	img->debug = gs_elf_symbol(elf, "_Py_RefTotal", &addr, &size) == 0 ||
		     gs_elf_symbol(elf, "_Py_NegativeRefcount", &addr, &size) == 0;

	if (gs_elf_symbol(elf, "Py_Version", &vhex_addr, &size) == 0 &&
	    gs_elf_read(elf, vhex_addr, &vhex, sizeof(vhex)) == 0 && (vhex >> 24) == 3) {
		version_from_hex(img, vhex);
	} else {
		snprintf(why, whylen, "%s: a CPython older than 3.11 (no Py_Version); this gilscope supports 3.11",
			 path);
		err = -ENOTSUP;
		goto out;
	}
	img->layout = gs_pylayout_find(img->major, img->minor, img->debug);
	if (!img->layout) {
		snprintf(why, whylen, "CPython %s%s is not supported by this gilscope (supported: 3.11)", img->version,
			 img->debug ? " (debug build)" : "");
		err = -ENOTSUP;
		goto out;
	}

	/* take_gil: the symbol table when there is one, else the call targets of exported functions */
	if (gs_elf_symbol(elf, "take_gil", &img->take_gil_vaddr, &size) == 0 && !gs_elf_dynsym(elf, "take_gil", &addr, &size) == 0) {
		snprintf(img->take_gil_how, sizeof(img->take_gil_how), "symbol table");
	} else {
		uint64_t a1 = 0, a2 = 0;
		if (take_gil_by_calls(elf, &a1, &a2) == 0) {
			img->take_gil_vaddr = a1;
			snprintf(img->take_gil_how, sizeof(img->take_gil_how),
				 "call-target analysis (PyEval_AcquireLock and PyEval_RestoreThread agree)");
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
		uint32_t locked_off = img->layout->gil + img->layout->gil_locked;
		if (gs_elf_function_bounds(elf, img->take_gil_vaddr, &fs, &fe) < 0 || fs != img->take_gil_vaddr) {
			fs = img->take_gil_vaddr;
			fe = fs + 2048;
		}
		gs_elf_plt_slot(elf, "pthread_cond_timedwait", &slot);
		scan_function(elf, fs, fe, slot, img->runtime_vaddr + locked_off, locked_off, 1, &r);
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
	err = 0;
out:
	gs_elf_free(elf);
	return err;
}

struct find_ctx {
	pid_t pid;
	char exe[PATH_MAX];
	struct gs_python *py;
	char *why;
	size_t whylen;
	int result;
	char tried[8][PATH_MAX];
	int ntried;
};

static int is_candidate(const struct find_ctx *c, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return strcmp(path, c->exe) == 0 || strncmp(base, "libpython", 9) == 0;
}

static int find_cb(const struct gs_map *m, void *arg)
{
	struct find_ctx *c = arg;
	char why[512];
	int err;

	if (!m->path[0] || m->path[0] != '/' || !is_candidate(c, m->path))
		return 0;
	for (int i = 0; i < c->ntried; i++)
		if (strcmp(c->tried[i], m->path) == 0)
			return 0;
	if (c->ntried < 8)
		snprintf(c->tried[c->ntried++], PATH_MAX, "%s", m->path);
	if (m->deleted) {
		snprintf(c->why, c->whylen, "%s was deleted or replaced since the process started; restart it",
			 m->path);
		c->result = -ESTALE;
		return 0;
	}
	err = gs_pyimage_analyse(m->path, &c->py->img, why, sizeof(why));
	if (err == -ENOENT)
		return 0;
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

int gs_python_find(pid_t pid, struct gs_python *py, char *why, size_t whylen)
{
	struct find_ctx *c = gs_calloc(1, sizeof(*c));
	struct bias_ctx b = { 0 };
	const struct gs_pylayout *l;
	int err;

	memset(py, 0, sizeof(*py));
	py->pid = pid;
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
	if ((err = gs_elf_open(py->img.path, &b.elf)) < 0) {
		snprintf(why, whylen, "%s: %s", py->img.path, gs_elf_strerror(err));
		return err;
	}
	gs_maps_foreach(pid, bias_cb, &b);
	gs_elf_free(b.elf);
	if (!b.found) {
		snprintf(why, whylen, "cannot find where %s is loaded in process %d", py->img.path, (int)pid);
		return -ENOENT;
	}
	l = py->img.layout;
	py->bias = b.bias;
	py->runtime = py->img.runtime_vaddr + b.bias;
	py->gil_locked = py->runtime + l->gil + l->gil_locked;
	py->gil_last_holder = py->runtime + l->gil + l->gil_last_holder;
	py->drop_request = py->runtime + l->drop_request;
	return 0;
}

long gs_python_gil_holder(const struct gs_python *py)
{
	const struct gs_pylayout *l = py->img.layout;
	int32_t locked;
	uint64_t holder;
	uint64_t tid;
	int err;

	if ((err = gs_mem_read(py->pid, py->gil_locked, &locked, sizeof(locked))) < 0)
		return err;
	if (locked != 1)
		return 0;
	if ((err = gs_mem_read(py->pid, py->gil_last_holder, &holder, sizeof(holder))) < 0)
		return err;
	if (!holder)
		return -ENOENT;
	if ((err = gs_mem_read(py->pid, holder + l->tstate_native_tid, &tid, sizeof(tid))) < 0)
		return err;
	if (tid == 0 || tid > 0x7fffffff)
		return -ENOENT;
	return (long)tid;
}
