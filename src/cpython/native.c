/* native.c - native stacks with libdwfl (see native.h). */
#define _GNU_SOURCE
#include "cpython/native.h"
#include "base/procfs.h"
#include "base/util.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct symcache {
	uint64_t pc; /* 0: empty */
	const char *name, *module;
	unsigned flags;
};

struct mapsym {
	uint64_t start, end;
	char *name;
};

struct sample {
	const uint64_t *regs;
	const uint8_t *stack;
	size_t len;
	uint64_t sp;
};

struct gs_native {
	pid_t pid;
	uid_t uid; /* the target's user: who may write its perf map */
	Dwfl *dwfl;
	Dwfl_Callbacks cbs;
	char *debuginfo_path;
	struct sample cur; /* the sample being unwound */
	uint64_t *pcs, *sps;
	int npcs, maxpcs;
	uint64_t last_bp; /* the frame pointer register of the last frame unwound */
	int read_failed;  /* the unwinding wanted memory beyond the copy */
	int last_bp_known;
	struct symcache *cache; /* open addressing by pc */
	size_t cache_cap, cache_n;
	char **strings; /* interned names (open addressing by hash), freed at the end */
	size_t nstrings, cap_strings;
	struct mapsym *perfmap; /* sorted by start */
	size_t nperfmap;
	off_t perfmap_size; /* size when last read */
	uint64_t perfmap_checked_ns, reported_ns;
	struct mapsym *hints;
	size_t nhints;
	uint64_t unwinds, truncated, unknown;
};

/* perf sample register order (x86_glibc.h) -> DWARF x86-64 numbering (rax rdx rcx rbx rsi rdi rbp rsp r8-r15) */
enum {
	P_AX = GS_X86_PERF_AX,
	P_BX = GS_X86_PERF_BX,
	P_CX = GS_X86_PERF_CX,
	P_DX = GS_X86_PERF_DX,
	P_SI = GS_X86_PERF_SI,
	P_DI = GS_X86_PERF_DI,
	P_BP = GS_X86_PERF_BP,
	P_SP = GS_X86_PERF_SP,
	P_IP = GS_X86_PERF_IP,
	P_R8 = GS_X86_PERF_R8
};

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **targ)
{
	(void)dwfl;
	(void)arg;
	(void)targ;
	return 0; /* only get_thread is used */
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **targ)
{
	(void)dwfl;
	(void)tid;
	*targ = arg;
	return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct gs_native *n = arg;
	(void)dwfl;
	/* only the copy: live memory has moved on since the sample */
	if (addr < n->cur.sp || addr - n->cur.sp > n->cur.len || n->cur.len - (addr - n->cur.sp) < 8) {
		n->read_failed = 1;
		return false;
	}
	memcpy(result, n->cur.stack + (addr - n->cur.sp), 8);
	return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct gs_native *n = arg;
	const uint64_t *r = n->cur.regs;
	Dwarf_Word d[16] = { r[P_AX], r[P_DX], r[P_CX], r[P_BX], r[P_SI], r[P_DI], r[P_BP], r[P_SP] };
	for (int i = 0; i < 8; i++)
		d[8 + i] = r[P_R8 + i];
	if (!dwfl_thread_state_registers(thread, 0, 16, d))
		return false;
	dwfl_thread_state_register_pc(thread, r[P_IP]);
	return true;
}

static const Dwfl_Thread_Callbacks thread_cbs = {
	.next_thread = cb_next_thread,
	.get_thread = cb_get_thread,
	.memory_read = cb_memory_read,
	.set_initial_registers = cb_set_initial_registers,
};

/* The module's file as the process sees it (gs_proc_open_mapped), not what its path names in
 * gilscope's mount namespace. */
struct module_file {
	const char *name;
	uint64_t low, high;
	pid_t pid;
	int fd;
	char path[PATH_MAX];
};

static int module_map_cb(const struct gs_map *m, void *arg)
{
	struct module_file *f = arg;
	size_t n = strlen(f->name);
	if (n > 10 && strcmp(f->name + n - 10, " (deleted)") == 0)
		n -= 10;
	if (m->start < f->low || m->start >= f->high || strlen(m->path) != n || strncmp(m->path, f->name, n) != 0)
		return 0;
	f->fd = gs_proc_open_mapped(f->pid, m, f->path, sizeof(f->path));
	return f->fd >= 0;
}

static int find_elf_cb(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base, char **file_name,
		       Elf **elfp)
{
	const struct gs_native *n = *userdata;
	struct module_file f = { .name = name, .fd = -1 };
	Dwarf_Addr low = 0, high = 0;
	if (n && name[0] == '/') {
		dwfl_module_info(mod, NULL, &low, &high, NULL, NULL, NULL, NULL);
		f.low = low;
		f.high = high;
		f.pid = n->pid;
		gs_maps_foreach(n->pid, module_map_cb, &f);
		if (f.fd >= 0) {
			*file_name = gs_strdup(f.path);
			return f.fd;
		}
	}
	return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

static int set_userdata(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base, void *arg)
{
	(void)mod, (void)name, (void)base;
	if (!*userdata)
		*userdata = arg;
	return DWARF_CB_OK;
}

static int report_modules(struct gs_native *n)
{
	dwfl_report_begin_add(n->dwfl);
	if (dwfl_linux_proc_report(n->dwfl, n->pid) != 0) {
		dwfl_report_end(n->dwfl, NULL, NULL);
		return -ESRCH;
	}
	if (dwfl_report_end(n->dwfl, NULL, NULL) != 0)
		return -EINVAL;
	dwfl_getmodules(n->dwfl, set_userdata, n, 0);
	n->reported_ns = gs_now_ns();
	return 0;
}

struct gs_native *gs_native_new(pid_t pid, char *why, size_t whylen)
{
	struct gs_native *n = gs_calloc(1, sizeof(*n));
	char path[64];
	struct stat st;

	n->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	n->uid = stat(path, &st) == 0 ? st.st_uid : 0;
	n->debuginfo_path = gs_strdup("-:.debug:/usr/lib/debug");
	n->cbs.find_elf = find_elf_cb;
	n->cbs.find_debuginfo = dwfl_standard_find_debuginfo;
	n->cbs.debuginfo_path = &n->debuginfo_path;
	n->dwfl = dwfl_begin(&n->cbs);
	if (!n->dwfl) {
		snprintf(why, whylen, "libdwfl: %s", dwfl_errmsg(-1));
		goto fail;
	}
	if (report_modules(n) < 0) {
		snprintf(why, whylen, "cannot read the memory map of process %d: %s", (int)pid, dwfl_errmsg(-1));
		goto fail;
	}
	if (!dwfl_attach_state(n->dwfl, NULL, pid, &thread_cbs, n)) {
		snprintf(why, whylen, "libdwfl cannot unwind this process: %s", dwfl_errmsg(-1));
		goto fail;
	}
	n->cache_cap = 4096;
	n->cache = gs_calloc(n->cache_cap, sizeof(*n->cache));
	return n;
fail:
	gs_native_free(n);
	return NULL;
}

void gs_native_free(struct gs_native *n)
{
	if (!n)
		return;
	if (n->dwfl)
		dwfl_end(n->dwfl);
	for (size_t i = 0; i < n->cap_strings; i++)
		free(n->strings[i]);
	free(n->strings);
	for (size_t i = 0; i < n->nperfmap; i++)
		free(n->perfmap[i].name);
	free(n->perfmap);
	for (size_t i = 0; i < n->nhints; i++)
		free(n->hints[i].name);
	free(n->hints);
	free(n->cache);
	free(n->debuginfo_path);
	free(n);
}

void gs_native_hint(struct gs_native *n, uint64_t start, uint64_t end, const char *name)
{
	if (!n || start >= end || n->nhints >= 64)
		return;
	n->hints = gs_realloc_array(n->hints, n->nhints + 1, sizeof(*n->hints));
	n->hints[n->nhints].start = start;
	n->hints[n->nhints].end = end;
	n->hints[n->nhints].name = gs_strdup(name);
	n->nhints++;
}

static int frame_cb(Dwfl_Frame *f, void *arg)
{
	struct gs_native *n = arg;
	Dwarf_Addr pc;
	bool activation = false;
	if (!dwfl_frame_pc(f, &pc, &activation) || !pc)
		return DWARF_CB_ABORT;
	if (n->npcs >= n->maxpcs)
		return DWARF_CB_ABORT;
	/* a return address names the instruction after the call: step back into the call */
	n->pcs[n->npcs] = activation || n->npcs == 0 ? pc : pc - 1;
	{
		Dwarf_Word sp = 0, bp = 0;
		if (dwfl_frame_reg(f, 7, &sp) != 0)
			sp = n->npcs ? n->sps[n->npcs - 1] : n->cur.sp;
		n->sps[n->npcs] = sp;
		n->last_bp_known = dwfl_frame_reg(f, 6, &bp) == 0;
		n->last_bp = bp;
	}
	n->npcs++;
	return DWARF_CB_OK;
}

/* Where CFI gives out (code without it, or unwinding rules libdwfl cannot follow), frame
 * pointers may go on: CPython 3.15 and code built with -fno-omit-frame-pointer keep the chain
 * [bp] = caller's bp, [bp + 8] = return address. Only within the copy, only upwards. 0 when the
 * chain ends cleanly (a zero frame pointer), -1 when it leaves the copy. */
static int fp_continue(struct gs_native *n)
{
	uint64_t bp = n->last_bp, prev_sp = n->sps[n->npcs - 1];
	int steps = 0;
	while (n->npcs < n->maxpcs) {
		uint64_t next, ret;
		if (!bp) /* the outermost frame clears it; before any step it only means no frame pointer */
			return steps ? 0 : -1;
		if (bp < prev_sp || bp < n->cur.sp || bp - n->cur.sp > n->cur.len || n->cur.len - (bp - n->cur.sp) < 16)
			return -1;
		memcpy(&next, n->cur.stack + (bp - n->cur.sp), 8);
		memcpy(&ret, n->cur.stack + (bp - n->cur.sp) + 8, 8);
		if (!ret)
			return 0;
		if (next && next <= bp)
			return -1;
		n->pcs[n->npcs] = ret - 1;
		n->sps[n->npcs] = bp + 16;
		n->npcs++;
		prev_sp = bp + 16;
		bp = next;
		steps++;
	}
	return -1;
}

static int is_root(const char *name)
{
	static const char *const roots[] = { "_start", "__clone3",     "__clone",           "clone",
					     "clone3", "start_thread", "__libc_start_main", "__libc_start_call_main" };
	size_t len = strcspn(name, "@"); /* __libc_start_main@@GLIBC_2.34 */
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		if (strlen(roots[i]) == len && strncmp(name, roots[i], len) == 0)
			return 1;
	return 0;
}

int gs_native_unwind(struct gs_native *n, uint32_t tid, const uint64_t *regs, const uint8_t *stack, size_t len,
		     uint64_t *pcs, uint64_t *sps, int max, int *complete)
{
	int rc;
	*complete = 0;
	if (!n || !regs || max <= 0)
		return 0;
	n->cur.regs = regs;
	n->cur.stack = stack;
	n->cur.len = stack ? len : 0;
	n->cur.sp = regs[P_SP];
	n->pcs = pcs;
	n->sps = sps;
	n->npcs = 0;
	n->maxpcs = max;
	n->unwinds++;
	if (!regs[P_IP])
		return 0;
	/* a module mapped since the last report (dlopen): report again, at most every 100 ms */
	if (!dwfl_addrmodule(n->dwfl, regs[P_IP]) && gs_now_ns() - n->reported_ns > 100000000ull)
		report_modules(n);
	n->last_bp_known = 0;
	n->read_failed = 0;
	rc = dwfl_getthread_frames(n->dwfl, (pid_t)tid, frame_cb, n);
	/* libdwfl takes a return address it could not read for the end of the stack */
	if (rc == 0 && n->read_failed)
		rc = -1;
	if (rc != 0 && n->npcs > 0 && n->last_bp_known)
		rc = fp_continue(n);
	/* libdwfl also stops, without an error, where it finds no CFI (libffi's closures, JIT
	 * code): a stack is complete only when it ends where threads start */
	if (rc == 0 && n->npcs > 0) {
		const char *name, *module;
		unsigned flags;
		gs_native_symbol(n, n->pcs[n->npcs - 1], &name, &module, &flags);
		if (!is_root(name))
			rc = -1;
	}
	if (rc == 0)
		*complete = 1;
	else
		n->truncated++;
	n->cur.stack = NULL;
	n->pcs = NULL;
	n->sps = NULL;
	return n->npcs;
}

int gs_native_merge(const unsigned *flags, const uint64_t *sps, int npc, int complete, const uint8_t *entry,
		    const uint64_t *entry_addr, int n, int *out, int max, int *mismatch, uint8_t *is_eval_out)
{
	int m = 0, pi = 0, evals = 0, groups = 0;
	for (int i = 0; i < n; i++)
		groups += entry[i] != 0;
	if (n && !entry[n - 1])
		groups++; /* the Python walk stopped early: the rest is one group */
	for (int k = 0; k < npc && m < max; k++) {
		int is_eval = 0;
		if (pi < n) {
			/* the entry address of the next group, if known */
			uint64_t addr = 0;
			for (int i = pi; i < n; i++)
				if (entry[i]) {
					addr = entry_addr ? entry_addr[i] : 0;
					break;
				}
			if (addr && sps && addr >= sps[0] && k + 1 < npc)
				is_eval = addr < sps[k + 1];
			else
				is_eval = (flags[k] & GS_NATFRAME_EVAL) != 0;
		} else {
			is_eval = (flags[k] & GS_NATFRAME_EVAL) != 0;
		}
		if (is_eval_out)
			is_eval_out[k] = (uint8_t)is_eval;
		if (is_eval) {
			evals++;
			while (pi < n && m < max) {
				int last = entry[pi] != 0;
				out[m++] = -(pi + 1);
				pi++;
				if (last)
					break;
			}
		}
		if (m < max)
			out[m++] = k;
	}
	while (pi < n && m < max) {
		out[m++] = -(pi + 1);
		pi++;
	}
	*mismatch = npc > 0 && complete && evals != groups;
	return m;
}

/* ---- /tmp/perf-PID.map ---------------------------------------------------------------------- */

int gs_perfmap_parse_line(const char *line, uint64_t *start, uint64_t *size, const char **name)
{
	const char *p;
	if (line[0] == '0' && (line[1] == 'x' || line[1] == 'X'))
		line += 2;
	p = gs_parse_hex(line, start);
	if (!p || *p != ' ')
		return -EINVAL;
	p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	p = gs_parse_hex(p, size);
	if (!p || *p != ' ' || !*size || *start + *size < *start)
		return -EINVAL;
	p++;
	if (!*p || *p == '\n')
		return -EINVAL;
	*name = p;
	return 0;
}

static int mapsym_cmp(const void *x, const void *y)
{
	const struct mapsym *a = x, *b = y;
	return a->start < b->start ? -1 : a->start > b->start;
}

/* (Re)reads the map when it grew; refuses links and files others could have written. */
static void perfmap_load(struct gs_native *n)
{
	char path[64], line[1024];
	struct stat st;
	FILE *f;
	int fd;
	uint64_t now = gs_now_ns();

	if (now - n->perfmap_checked_ns < 50000000ull)
		return;
	n->perfmap_checked_ns = now;
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)n->pid);
	/* written by the traced program: only its own user's (or root's) file, not a link, not
	 * writable by others */
	fd = gs_open_owned_nofollow(path, n->uid);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size == n->perfmap_size || st.st_size > (64 << 20)) {
		close(fd);
		return;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return;
	}
	for (size_t i = 0; i < n->nperfmap; i++)
		free(n->perfmap[i].name);
	n->nperfmap = 0;
	while (fgets(line, sizeof(line), f) && n->nperfmap < 1000000) {
		uint64_t start, size;
		const char *name;
		size_t len;
		if (gs_perfmap_parse_line(line, &start, &size, &name) < 0)
			continue;
		len = strcspn(name, "\n");
		n->perfmap = gs_realloc_array(n->perfmap, n->nperfmap + 1, sizeof(*n->perfmap));
		n->perfmap[n->nperfmap].start = start;
		n->perfmap[n->nperfmap].end = start + size;
		n->perfmap[n->nperfmap].name = strndup(name, len);
		if (!n->perfmap[n->nperfmap].name)
			break;
		n->nperfmap++;
	}
	n->perfmap_size = st.st_size;
	fclose(f);
	qsort(n->perfmap, n->nperfmap, sizeof(*n->perfmap), mapsym_cmp);
}

static const struct mapsym *mapsym_find(const struct mapsym *v, size_t count, uint64_t pc)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].start <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && pc < v[lo - 1].end)
		return &v[lo - 1];
	return NULL;
}

/* ---- symbols ---------------------------------------------------------------------------------- */

/* One copy of each name, whatever the number of addresses that carry it. */
static const char *keep(struct gs_native *n, const char *s)
{
	size_t h;
	if ((n->nstrings + 1) * 2 > n->cap_strings) {
		size_t ncap = n->cap_strings ? n->cap_strings * 2 : 1024;
		char **nt = gs_calloc(ncap, sizeof(char *));
		for (size_t i = 0; i < n->cap_strings; i++)
			if (n->strings[i]) {
				size_t j = (size_t)gs_fnv1a(GS_FNV1A_INIT, n->strings[i]) & (ncap - 1);
				while (nt[j])
					j = (j + 1) & (ncap - 1);
				nt[j] = n->strings[i];
			}
		free(n->strings);
		n->strings = nt;
		n->cap_strings = ncap;
	}
	h = (size_t)gs_fnv1a(GS_FNV1A_INIT, s) & (n->cap_strings - 1);
	while (n->strings[h]) {
		if (strcmp(n->strings[h], s) == 0)
			return n->strings[h];
		h = (h + 1) & (n->cap_strings - 1);
	}
	n->nstrings++;
	return n->strings[h] = gs_strdup(s);
}

/* GCC's link-time clones say nothing to the reader: take_gil.lto_priv.0 is take_gil. */
static const char *clean_name(const char *sym, char *buf, size_t len)
{
	const char *lto = strstr(sym, ".lto_priv.");
	size_t o = 0;
	if (!lto)
		return sym;
	while (*sym && o + 1 < len) {
		if (strncmp(sym, ".lto_priv.", 10) == 0) {
			sym += 10;
			while (*sym >= '0' && *sym <= '9')
				sym++;
			continue;
		}
		buf[o++] = *sym++;
	}
	buf[o] = '\0';
	return buf;
}

static int is_eval(const char *name)
{
	return strcmp(name, "_PyEval_EvalFrameDefault") == 0 || strcmp(name, "PyEval_EvalFrameDefault") == 0;
}

/* Returns 1 when the answer may change (an address in no module, not in the perf map yet). */
static int lookup(struct gs_native *n, uint64_t pc, struct symcache *e)
{
	Dwfl_Module *mod = dwfl_addrmodule(n->dwfl, pc);
	const char *sym = NULL, *modname = NULL;
	char buf[512];
	GElf_Off off = 0;
	GElf_Sym s;

	e->flags = 0;
	memset(&s, 0, sizeof(s));
	if (mod) {
		const char *mainfile = NULL;
		modname = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, &mainfile, NULL);
		if (mainfile && strncmp(mainfile, "/proc/", 6) != 0) /* not the name find_elf_cb opened it by */
			modname = mainfile;
		sym = dwfl_module_addrinfo(mod, pc, &off, &s, NULL, NULL, NULL);
	}
	if (!sym)
		for (size_t i = 0; i < n->nhints; i++)
			if (pc >= n->hints[i].start && pc < n->hints[i].end)
				sym = n->hints[i].name;
	if (!sym && !mod) {
		const struct mapsym *m = mapsym_find(n->perfmap, n->nperfmap, pc);
		if (!m) {
			perfmap_load(n);
			m = mapsym_find(n->perfmap, n->nperfmap, pc);
		}
		if (m) {
			sym = m->name;
			modname = "[perf-map]";
			if (strncmp(sym, "py::", 4) == 0)
				e->flags |= GS_NATFRAME_TRAMPOLINE;
		}
	}
	if (modname) {
		const char *slash = strrchr(modname, '/');
		modname = slash ? slash + 1 : modname;
	}
	e->module = keep(n, modname ? modname : "[unknown]");
	if (!sym) {
		n->unknown++;
		snprintf(buf, sizeof(buf), "0x%" PRIx64, pc);
		e->name = keep(n, buf);
		return !mod; /* JIT code or trampolines the perf map may name later */
	}
	e->name = keep(n, clean_name(sym, buf, sizeof(buf)));
	if (is_eval(e->name))
		e->flags |= GS_NATFRAME_EVAL;
	return 0;
}

void gs_native_symbol(struct gs_native *n, uint64_t pc, const char **name, const char **module, unsigned *flags)
{
	size_t h;
	if ((n->cache_n + 1) * 2 > n->cache_cap) {
		/* full: start over (the names stay allocated for the callers) */
		memset(n->cache, 0, n->cache_cap * sizeof(*n->cache));
		n->cache_n = 0;
	}
	h = (size_t)(pc * 0x9e3779b97f4a7c15ull >> 20) & (n->cache_cap - 1);
	while (n->cache[h].pc && n->cache[h].pc != pc)
		h = (h + 1) & (n->cache_cap - 1);
	if (!n->cache[h].pc) {
		if (lookup(n, pc, &n->cache[h])) {
			*name = n->cache[h].name; /* not cached: asked again next time */
			*module = n->cache[h].module;
			*flags = n->cache[h].flags;
			return;
		}
		n->cache[h].pc = pc;
		n->cache_n++;
	}
	*name = n->cache[h].name;
	*module = n->cache[h].module;
	*flags = n->cache[h].flags;
}

void gs_native_stats(const struct gs_native *n, uint64_t *unwinds, uint64_t *truncated, uint64_t *unknown)
{
	*unwinds = n ? n->unwinds : 0;
	*truncated = n ? n->truncated : 0;
	*unknown = n ? n->unknown : 0;
}
