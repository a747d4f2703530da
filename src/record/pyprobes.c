/* pyprobes.c - a CPython process's GIL probes (see pyprobes.h). */
#define _GNU_SOURCE
#include "record/pyprobes.h"
#include "base/procfs.h"
#include "base/recfile.h"
#include "base/util.h"
#include "probe/tracefs.h"
#include "probe/x86.h"
#include "record/ring_decode.h"

#include <dirent.h>
#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROBE_SAMPLE (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU)

void gs_pyprobes_init(struct gs_pyprobes *p, const char *tracefs, int watchpoint, int allow_inline)
{
	memset(p, 0, sizeof(*p));
	p->tracefs = tracefs;
	p->use_watchpoint = watchpoint;
	p->use_inline = allow_inline && !watchpoint;
	p->il.memfd = -1;
}

int gs_pyprobes_have_uprobes(const struct gs_pyprobes *p) { return p->tp_take_gil > 0; }

/* The drop request's uprobes, after each of its writes: optional (without them forced drops are not
 * told apart, or the watchpoint tells them), so a failure is a warning. */
static void define_dropreq_uprobes(struct gs_pyprobes *p)
{
	const struct gs_pyimage *img = &p->py.img;
	int err = 0;
	for (int i = 0; i < img->dropreq.nsites && !err; i++) {
		const struct gs_dropreq_site *d = &img->dropreq.sites[i];
		/* img->file: the target's own file (procfs.h), as the GIL uprobes use */
		err = gs_uprobe_add(p->tracefs, p->group, d->value ? "gil_dropreq" : "gil_dropreset", img->file,
				    d->offset);
	}
	if (img->dropreq.nset && !err) {
		p->tp_dropreq_set = gs_tracefs_event_id(p->tracefs, p->group, "gil_dropreq");
		p->tp_dropreq_reset =
			img->dropreq.nreset ? gs_tracefs_event_id(p->tracefs, p->group, "gil_dropreset") : 0;
	}
	if (err < 0 || p->tp_dropreq_set < 0 || p->tp_dropreq_reset < 0) {
		gs_warn("cannot define the GIL drop request's uprobes in %s: %s", img->path,
			strerror(err < 0 ? -err : ENOENT));
		p->tp_dropreq_set = p->tp_dropreq_reset = 0;
	}
}

/* The store-site uprobes: after each store to gil->locked. */
static int define_store_uprobes(struct gs_pyprobes *p, char *why, size_t whylen)
{
	const struct gs_pyimage *img = &p->py.img;
	for (int i = 0; i < img->nsites; i++) {
		const struct gs_site *st = &img->sites[i];
		const char *ev = st->value ? "gil_take" : "gil_drop";
		int err = gs_uprobe_add(p->tracefs, p->group, ev, img->file, st->offset);
		if (err < 0) {
			snprintf(why, whylen, "cannot define the %s uprobe at %.1024s:%#lx: %s", ev, img->path,
				 (unsigned long)st->offset, strerror(-err));
			return err;
		}
	}
	define_dropreq_uprobes(p);
	p->tp_acquire = gs_tracefs_event_id(p->tracefs, p->group, "gil_take");
	p->tp_release = gs_tracefs_event_id(p->tracefs, p->group, "gil_drop");
	if (p->tp_acquire < 0 || p->tp_release < 0) {
		snprintf(why, whylen, "the GIL store-site uprobes have no event id");
		return -ENOENT;
	}
	return 0;
}

/* Defines the uprobes: take_gil, and after each store to gil->locked. 0, or -errno with why. */
static int define_uprobes(struct gs_pyprobes *p, char *why, size_t whylen)
{
	int err;
	snprintf(p->group, sizeof(p->group), "gilscope_%d", (int)getpid());
	if (!p->uprobe_defined) {
		err = gs_uprobe_add(p->tracefs, p->group, "take_gil", p->py.img.file, p->py.img.take_gil_offset);
		if (err < 0) {
			snprintf(why, whylen, "cannot define the take_gil uprobe in %s/uprobe_events: %s%s", p->tracefs,
				 strerror(-err), err == -EINVAL ? " (paths with blanks cannot be probed)" : "");
			return err;
		}
		p->uprobe_defined = 1;
	}
	p->tp_take_gil = gs_tracefs_event_id(p->tracefs, p->group, "take_gil");
	if (p->tp_take_gil < 0) {
		snprintf(why, whylen, "the take_gil uprobe has no event id: %s", strerror((int)-p->tp_take_gil));
		return (int)p->tp_take_gil;
	}
	if (!p->use_watchpoint && (p->py.img.nacquire == 0 || p->py.img.nrelease == 0)) {
		gs_warn("could not find every instruction that takes and releases the GIL in %s; using a hardware "
			"watchpoint instead (exact, but slow in virtual machines)",
			p->py.img.path);
		p->use_watchpoint = 1;
	}
	return p->use_watchpoint ? 0 : define_store_uprobes(p, why, whylen);
}

/* Can the inline probes see every drop request (each set instruction long enough for a jump)? */
static int inline_requests(const struct gs_pyimage *img)
{
	for (int i = 0; i < img->dropreq.nsites; i++)
		if (img->dropreq.sites[i].value && img->dropreq.sites[i].len < 5)
			return 0;
	return img->dropreq.nset > 0 && img->nsites + img->dropreq.nsites <= GS_INLINE_MAX_SITES;
}

/* What the inline probes patch, from what python.c found, in the process's addresses. */
static void inline_target(const struct gs_python *py, struct gs_inline_target *tg, struct gs_inline_site *sites)
{
	const struct gs_pyimage *img = &py->img;
	const struct gs_pylayout *l = &img->layout;
	memset(tg, 0, sizeof(*tg));
	tg->image = img->path;
	tg->entry = img->take_gil_vaddr + py->bias;
	tg->prologue = img->prologue;
	tg->prologue_len = img->prologue_len;
	if (l->gil_home == GS_GIL_IN_RUNTIME) {
		tg->gil.kind = X86_REF_ABS;
		tg->gil.abs = py->runtime + l->gil + l->gil_locked;
	} else {
		/* take_gil(tstate): tstate->interp->ceval.gil, then its `locked` */
		tg->gil.kind = X86_REF_CHAIN;
		tg->gil.c0 = l->tstate_interp;
		tg->gil.c1 = l->interp_ceval_gil;
		tg->gil.add = l->gil_locked;
	}
	memset(sites, 0, GS_INLINE_MAX_SITES * sizeof(*sites));
	for (int i = 0; i < img->nsites && i < GS_INLINE_MAX_SITES; i++) {
		sites[i].store = img->sites[i].store + py->bias;
		sites[i].len = img->sites[i].store_len;
		memcpy(sites[i].bytes, img->sites[i].store_bytes, sizeof(sites[i].bytes));
		sites[i].value = img->sites[i].value;
	}
	tg->sites = sites;
	tg->nsites = img->nsites < GS_INLINE_MAX_SITES ? img->nsites : GS_INLINE_MAX_SITES;
	tg->nacquire = img->nacquire;
	tg->nrelease = img->nrelease;
	/* then the drop request's writes (their events tell forced drops apart) */
	for (int i = 0; i < img->dropreq.nsites && tg->nsites < GS_INLINE_MAX_SITES && inline_requests(img); i++) {
		const struct gs_dropreq_site *d = &img->dropreq.sites[i];
		struct gs_inline_site *s;
		if (d->len < 5)
			continue; /* a reset too short to patch: its event is informative only */
		s = &sites[tg->nsites++];
		s->store = d->insn + py->bias;
		s->len = d->len;
		memcpy(s->bytes, d->bytes, sizeof(s->bytes));
		s->value = d->value;
		s->dropreq = 1;
	}
}

int gs_pyprobes_find(struct gs_pyprobes *p, pid_t pid, char *why, size_t whylen)
{
	int err = gs_python_find_cached(pid, &p->py, p->cache, why, whylen);
	if (err == 0)
		inline_target(&p->py, &p->tg, p->isites);
	return err;
}

int gs_pyprobes_locate(struct gs_pyprobes *p, pid_t pid, int may_inline, const struct gs_evlist *el, int *pending_sig,
		       char *why, size_t whylen)
{
	int err = gs_pyprobes_find(p, pid, why, whylen);
	if (err < 0)
		return err;
	if (may_inline && p->use_inline) {
		err = gs_inline_setup(&p->il, pid, &p->tg, gs_evlist_meta_page(el), pending_sig, why, whylen);
		if (err == 0 || p->inline_only)
			return err;
		gs_warn("inline GIL probes unavailable (%s); using uprobes", why);
		why[0] = '\0';
	}
	p->use_inline = 0;
	return define_uprobes(p, why, whylen);
}

/* The code inline probes change: take_gil's prologue and each GIL store. Returns the count. */
static size_t patch_ranges(const struct gs_inline_target *tg, struct gs_range *r)
{
	size_t n = 0;
	r[n].lo = tg->entry;
	r[n++].hi = tg->entry + tg->prologue_len;
	for (int i = 0; i < tg->nsites && i < GS_INLINE_MAX_SITES; i++) {
		r[n].lo = tg->sites[i].store;
		r[n++].hi = tg->sites[i].store + tg->sites[i].len;
	}
	return n;
}

/* nr(a0, a1) in the held process: its result, or -errno. */
static int remote_call(struct gs_threads *ts, long nr, uint64_t a0, uint64_t a1)
{
	uint64_t args[6] = { a0, a1, 0, 0, 0, 0 };
	int64_t ret = 0;
	int err = gs_inject_syscall(ts, nr, args, &ret);
	return err < 0 ? err : (int)ret;
}

struct ring_maps {
	pid_t pid;
	uint64_t start[8], len[8];
	ino_t inode; /* 0: any gilscope ring */
	int n;
};

static int ring_map_cb(const struct gs_map *m, void *arg)
{
	struct ring_maps *rm = arg;
	char path[96];
	struct stat st;
	if (strcmp(m->path, "/memfd:gilscope-ring") != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)rm->pid, (unsigned long long)m->start,
		 (unsigned long long)m->end);
	if (rm->inode && (stat(path, &st) < 0 || st.st_ino != rm->inode))
		return 0;
	if (rm->n < (int)GS_ARRAY_SIZE(rm->start)) {
		rm->start[rm->n] = m->start;
		rm->len[rm->n++] = m->end - m->start;
	}
	return 0;
}

/* Closes every descriptor of the held process on a gilscope ring (a set-up killed between the
 * ring's creation and its close). 0 or -errno. */
static int close_ring_fds(struct gs_threads *ts)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int err = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)ts->pid);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)) && err >= 0) {
		uint64_t fd;
		ssize_t n;
		if (gs_parse_u64(de->d_name, &fd) < 0 || fd > 0x7fffffff)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)ts->pid, (int)fd);
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		if (strncmp(link, "/memfd:gilscope-ring", 20) == 0)
			err = remote_call(ts, SYS_close, fd, 0);
	}
	closedir(d);
	return err;
}

/* Unmaps every gilscope ring of the held process, then closes its descriptors on one. */
static int drop_rings(struct gs_threads *ts)
{
	struct ring_maps rm = { .pid = ts->pid };
	int err = 0;
	gs_maps_foreach(ts->pid, ring_map_cb, &rm);
	for (int i = 0; i < rm.n && err >= 0; i++)
		err = remote_call(ts, SYS_munmap, rm.start[i], rm.len[i]);
	gs_test_point("rings unmapped");
	return err < 0 ? err : close_ring_fds(ts);
}

int gs_pyprobes_unpatch(const struct gs_pyprobes *p, struct gs_threads *ts, uint64_t tramp, char *why, size_t whylen)
{
	const struct gs_inline_target *tg = &p->tg;
	struct gs_range r[GS_INLINE_MAX_SITES + 1];
	size_t n = patch_ranges(tg, r);
	int err;

	if ((err = gs_threads_settle(ts, r, n, 0, why, whylen)) < 0)
		return err;
	gs_test_point("settled out of the patched code");
	/* one write per instruction: cut anywhere, every jump is whole or gone */
	err = gs_mem_write(ts->pid, tg->entry, tg->prologue, tg->prologue_len);
	for (int i = 0; i < tg->nsites && i < GS_INLINE_MAX_SITES && err == 0; i++) {
		gs_test_point("an instruction restored");
		err = gs_mem_write(ts->pid, tg->sites[i].store, tg->sites[i].bytes, tg->sites[i].len);
	}
	if (err < 0) {
		snprintf(why, whylen, "cannot restore the code of process %d: %s", (int)ts->pid, strerror(-err));
		return err;
	}
	gs_test_point("code restored");
	/* the code is the file's again: what is left is for the threads still inside a trampoline */
	r[0].lo = tramp;
	r[0].hi = tramp + GS_INLINE_TRAMP_SIZE;
	if ((err = gs_threads_settle(ts, r, 1, 1, why, whylen)) < 0)
		return err;
	/* the rings first: the page with the owner mark goes last, so that a gilscope killed in
	 * between leaves a page the next one recognises */
	if ((err = drop_rings(ts)) >= 0)
		err = remote_call(ts, SYS_munmap, tramp, GS_INLINE_TRAMP_SIZE);
	if (err < 0)
		snprintf(why, whylen, "cannot unmap the trampolines or the ring in process %d: %s", (int)ts->pid,
			 strerror(-err));
	else
		gs_test_point("trampolines unmapped");
	return err;
}

struct orphan_scan {
	pid_t pid;
	uint64_t cands[4], found[4];
	size_t ncands, nfound;
};

static int orphan_cb(const struct gs_map *m, void *arg)
{
	struct orphan_scan *os = arg;
	static uint8_t page[GS_INLINE_TRAMP_SIZE];
	int zero = 1;
	if (m->path[0] || strcmp(m->perms, "rwxp") != 0 || m->end - m->start != GS_INLINE_TRAMP_SIZE)
		return 0;
	for (size_t i = 0; i < os->ncands; i++)
		if (os->cands[i] == m->start && gs_mem_read(os->pid, m->start, page, sizeof(page)) == 0) {
			for (size_t k = 0; k < sizeof(page) && zero; k++)
				zero = page[k] == 0;
			if (zero && os->nfound < GS_ARRAY_SIZE(os->found))
				os->found[os->nfound++] = m->start;
		}
	return 0;
}

int gs_pyprobes_scrub(const struct gs_pyprobes *p, struct gs_threads *ts, char *why, size_t whylen)
{
	struct orphan_scan os = { .pid = ts->pid };
	uint64_t tramp;
	pid_t owner;
	int alive, err = 0;

	if (gs_inject_find_probes(ts->pid, &tramp, &owner, &alive) != 1) {
		/* no marked page: a ring, a descriptor or a blank page are what a killed set-up left */
		if ((err = drop_rings(ts)) >= 0 && p->tg.image) {
			os.ncands = gs_inline_tramp_candidates(ts->pid, p->tg.image, os.cands);
			gs_maps_foreach(ts->pid, orphan_cb, &os);
			for (size_t i = 0; i < os.nfound && err >= 0; i++)
				err = remote_call(ts, SYS_munmap, os.found[i], GS_INLINE_TRAMP_SIZE);
		}
	}
	if (err < 0)
		snprintf(why, whylen, "cannot remove what a killed gilscope left in process %d: %s", (int)ts->pid,
			 strerror(-err));
	return err < 0 ? err : 0;
}

int gs_pyprobes_attach(struct gs_pyprobes *p, struct gs_threads *ts, const struct gs_evlist *el, char *why,
		       size_t whylen)
{
	struct gs_range r[GS_INLINE_MAX_SITES + 1];
	struct gs_inline_ops ops;
	int err;

	if (!p->use_inline && p->inline_only) {
		snprintf(why, whylen, "inline GIL probes are turned off (--uprobes, --gil-watchpoint)");
		return -ENOTSUP;
	}
	if (!p->use_inline)
		return define_uprobes(p, why, whylen);
	gs_inject_ops(ts, &ops);
	if (gs_inline_straddles(&p->tg)) {
		snprintf(why, whylen,
			 "take_gil's prologue or a GIL store crosses a page boundary, which one write "
			 "cannot patch whole");
		err = -ENOTSUP;
	} else
		err = gs_inline_map(&p->il, ts->pid, &p->tg, gs_evlist_meta_page(el), &ops, NULL, why, whylen);
	if (err == 0)
		err = gs_threads_settle(ts, r, patch_ranges(&p->tg, r), 0, why, whylen);
	if (err == 0 && (err = gs_inline_patch(&p->il, ts->pid, &p->tg, &ops)) < 0)
		snprintf(why, whylen, "cannot patch process %d: %s", (int)ts->pid, strerror(-err));
	if (err == 0)
		return 0;
	/* nothing patched (a failed patch wrote nothing, or only the jumps the file's bytes replace) */
	gs_mem_write(ts->pid, p->tg.entry, p->tg.prologue, p->tg.prologue_len);
	for (int i = 0; i < p->tg.nsites && i < GS_INLINE_MAX_SITES; i++)
		gs_mem_write(ts->pid, p->tg.sites[i].store, p->tg.sites[i].bytes, p->tg.sites[i].len);
	if (p->il.trampolines) {
		drop_rings(ts);
		remote_call(ts, SYS_munmap, p->il.trampolines, GS_INLINE_TRAMP_SIZE);
	}
	gs_inline_close(&p->il);
	memset(&p->il, 0, sizeof(p->il));
	p->il.memfd = -1;
	if (p->inline_only)
		return err; /* a CPython other than the first: the uprobes' names are the first one's */
	gs_warn("inline GIL probes unavailable (%s); using uprobes", why);
	why[0] = '\0';
	p->use_inline = 0;
	return define_uprobes(p, why, whylen);
}

/* Unpatches one process (held here, let go after). 0 or -errno with why. */
static int detach_one(const struct gs_pyprobes *p, pid_t pid, char *why, size_t whylen)
{
	struct gs_threads ts = { 0 };
	uint64_t tramp;
	pid_t owner;
	int alive, err;
	/* a process that exec()'d since runs another image: nothing of these probes is in it, and
	 * their bytes written there would corrupt its code */
	if (gs_inject_find_probes(pid, &tramp, &owner, &alive) != 1 || owner != getpid() || tramp != p->il.trampolines)
		return 0;
	err = gs_threads_seize(&ts, pid, why, whylen);
	if (err == 0)
		err = gs_pyprobes_unpatch(p, &ts, p->il.trampolines, why, whylen);
	gs_threads_release(&ts);
	return err;
}

/* Processes other than the target that map this recording's ring: children forked meanwhile. */
static size_t ring_sharers(const struct gs_pyprobes *p, ino_t inode, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;
	while (d && (de = readdir(d)) && n < max) {
		uint64_t v;
		struct ring_maps rm = { .inode = inode };
		if (gs_parse_u64(de->d_name, &v) < 0 || v == 0 || v > 0x7fffffff || (pid_t)v == p->py.pid ||
		    (pid_t)v == getpid())
			continue;
		rm.pid = (pid_t)v;
		gs_maps_foreach((pid_t)v, ring_map_cb, &rm);
		if (rm.n)
			out[n++] = (pid_t)v;
	}
	if (d)
		closedir(d);
	return n;
}

void gs_pyprobes_rings_shared(struct gs_pyprobes *const *ps, size_t n, int *shared)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	ino_t *ino = gs_calloc(n ? n : 1, sizeof(*ino));
	struct stat st;
	for (size_t i = 0; i < n; i++) {
		shared[i] = 0;
		if (ps[i]->il.memfd >= 0 && fstat(ps[i]->il.memfd, &st) == 0)
			ino[i] = st.st_ino;
	}
	while (d && (de = readdir(d))) {
		struct ring_maps rm = { .inode = 0 }; /* every gilscope ring it maps: whose, by inode below */
		char path[96];
		uint64_t v;
		if (gs_parse_u64(de->d_name, &v) < 0 || v == 0 || v > 0x7fffffff || (pid_t)v == getpid())
			continue;
		rm.pid = (pid_t)v;
		gs_maps_foreach(rm.pid, ring_map_cb, &rm);
		for (int m = 0; m < rm.n; m++) {
			snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)rm.pid,
				 (unsigned long long)rm.start[m], (unsigned long long)(rm.start[m] + rm.len[m]));
			if (stat(path, &st) < 0)
				continue;
			for (size_t i = 0; i < n; i++)
				if (ino[i] && st.st_ino == ino[i] && rm.pid != ps[i]->py.pid)
					shared[i] = 1;
		}
	}
	if (d)
		closedir(d);
	free(ino);
}

/* Has pid ended (gone, or a zombie: one that ends while it is detached cannot be seized)? */
static int ended(pid_t pid)
{
	char path[64], buf[512], *rp;
	long n;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = gs_read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

void gs_pyprobes_detach(struct gs_pyprobes *p, int target_gone)
{
	char why[1024] = "";
	pid_t kids[64];
	struct stat st;
	size_t nkids = 0;

	if (!p->use_inline || !p->il.trampolines)
		return;
	if (p->il.memfd >= 0 && fstat(p->il.memfd, &st) == 0)
		nkids = ring_sharers(p, st.st_ino, kids, GS_ARRAY_SIZE(kids));
	if (!target_gone && kill(p->py.pid, 0) == 0 && detach_one(p, p->py.pid, why, sizeof(why)) < 0 &&
	    !ended(p->py.pid))
		gs_warn("%s; the inline probes stay in process %d (harmless: their events are dropped)", why,
			(int)p->py.pid);
	for (size_t i = 0; i < nkids; i++)
		if (detach_one(p, kids[i], why, sizeof(why)) < 0 && !ended(kids[i]))
			gs_warn("%s; the inline probes stay in child process %d (harmless: their events are dropped)",
				why, (int)kids[i]);
}

/* The watchpoint on gil_drop_request: optional, only forced drops need it (a debugger may hold
 * the debug registers), so a refusal is a warning, once. */
static void open_drop_request(struct gs_pyprobes *p, struct gs_evlist *el, struct perf_event_attr *a, pid_t tid)
{
	char w[512];
	int err;
	if ((p->use_inline && inline_requests(&p->py.img)) || p->tp_dropreq_set > 0)
		return; /* the drop request's writes are probed: no debug register, no trap */
	if (!p->py.drop_request)
		return; /* not at a static address in this version: forced drops are not told apart */
	a->bp_addr = p->py.drop_request;
	err = gs_evlist_open(el, a, tid, GS_PK_BP_DROPREQ, "a hardware watchpoint on the GIL drop request", w,
			     sizeof(w));
	if (err < 0 && !p->drop_warned) {
		gs_warn("%s: forced drops will not be told apart", w);
		p->drop_warned = 1;
	}
}

int gs_pyprobes_open(struct gs_pyprobes *p, struct gs_evlist *el, pid_t tid, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int err;
	if (!p->use_inline) {
		gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)p->tp_take_gil, PROBE_SAMPLE);
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_TAKE_GIL, "the take_gil uprobe", why, whylen)) < 0)
			return err;
	}
	if (!p->use_inline && !p->use_watchpoint) {
		gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)p->tp_acquire, PROBE_SAMPLE);
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_ACQUIRE, "the GIL acquisition uprobes", why, whylen)) < 0)
			return err;
		gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)p->tp_release, PROBE_SAMPLE);
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_RELEASE, "the GIL release uprobes", why, whylen)) < 0)
			return err;
	}
	if (!p->use_inline && p->tp_dropreq_set > 0) {
		gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)p->tp_dropreq_set, PROBE_SAMPLE);
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_REQ_SET, "the GIL drop request uprobes", why, whylen)) < 0)
			return err;
	}
	if (!p->use_inline && p->tp_dropreq_reset > 0) {
		gs_evlist_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)p->tp_dropreq_reset, PROBE_SAMPLE);
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_REQ_RESET, "the GIL drop request reset uprobes", why,
					  whylen)) < 0)
			return err;
	}
	gs_evlist_attr(&a, PERF_TYPE_BREAKPOINT, 0, PROBE_SAMPLE);
	a.bp_type = HW_BREAKPOINT_W;
	a.bp_len = HW_BREAKPOINT_LEN_4;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	if (!p->use_inline && p->use_watchpoint) {
		if (p->py.img.layout.gil_home != GS_GIL_IN_RUNTIME) {
			snprintf(why, whylen,
				 "--gil-watchpoint needs the GIL at a static address (CPython 3.9 to 3.11)");
			return -ENOTSUP;
		}
		a.bp_addr = p->py.runtime + p->py.img.layout.gil + p->py.img.layout.gil_locked;
		if ((err = gs_evlist_open(el, &a, tid, GS_PK_BP_LOCKED, "a hardware watchpoint on the GIL", why,
					  whylen)) < 0)
			return err;
	}
	open_drop_request(p, el, &a, tid);
	return 0;
}

void gs_pyprobes_meta(const struct gs_pyprobes *p, const struct gs_emit *e)
{
	const struct gs_pyimage *img = &p->py.img;
	uint32_t pid = (uint32_t)p->py.pid;
	char build[192], mech[1024];
	char drops[160];
	if ((p->use_inline && inline_requests(img)) || (!p->use_inline && p->tp_dropreq_set > 0))
		snprintf(drops, sizeof(drops), ", %s the %d writes of the drop request (%d request, %d reset)",
			 p->use_inline ? "and" : "and after", img->dropreq.nsites, img->dropreq.nset,
			 img->dropreq.nreset);
	else
		snprintf(drops, sizeof(drops), "%s",
			 p->py.drop_request ? ", hardware watchpoint on gil_drop_request"
					    : "; forced drops not told apart in this version");
	snprintf(build, sizeof(build), "%s, %s%s, layout from %s%s", img->shared ? "shared libpython" : "static",
		 img->stripped ? "stripped" : "symbols", img->debug ? ", debug build" : "", img->layout_source,
		 img->layout_checked ? "" : " (unverified)");
	if (p->use_inline)
		snprintf(mech, sizeof(mech),
			 "inline probes on take_gil and the %d stores to gil->locked (%d take, %d release; take_gil "
			 "found by %s)%s",
			 img->nsites, img->nacquire, img->nrelease, img->take_gil_how, drops);
	else if (p->use_watchpoint)
		snprintf(mech, sizeof(mech),
			 "hardware write watchpoints on gil->locked and gil_drop_request, uprobe on take_gil "
			 "(found by %s)",
			 img->take_gil_how);
	else
		snprintf(mech, sizeof(mech),
			 "uprobes after the %d stores to gil->locked (%d take, %d release) and on take_gil (found by "
			 "%s)%s",
			 img->nsites, img->nacquire, img->nrelease, img->take_gil_how, drops);
	gs_emit_meta(e, pid, "python.version", img->version);
	gs_emit_meta(e, pid, "python.path", img->path);
	gs_emit_meta(e, pid, "python.build", build);
	gs_emit_meta(e, pid, "python.build_id", img->build_id);
	gs_emit_meta(e, pid, "mechanism", mech);
	gs_emit_meta(e, pid, "python.layout", img->layout_source);
	gs_emit_meta_u64(e, pid, "python.forced_drops_told_apart", (uint64_t)gs_pyprobes_tells_forced_drops(p));
}

int32_t gs_pyprobes_stored_value(struct gs_pyprobes *p, uint32_t pid, uint64_t ip)
{
	uint8_t buf[15];
	struct x86_insn in;
	int32_t v = GS_VALUE_UNKNOWN;
	for (size_t i = 0; i < p->nsites; i++)
		if (p->sites[i].ip == ip && (p->sites[i].pid == pid || p->sites[i].value != GS_VALUE_UNKNOWN))
			return p->sites[i].value;
	if (gs_mem_read((pid_t)pid, ip - sizeof(buf), buf, sizeof(buf)) == 0 &&
	    x86_store_ending_at(buf, sizeof(buf), ip, &in) == 1 && in.width == 4)
		v = (int32_t)in.imm;
	if (p->nsites < GS_ARRAY_SIZE(p->sites)) {
		p->sites[p->nsites].pid = pid;
		p->sites[p->nsites].ip = ip;
		p->sites[p->nsites].value = v;
		p->nsites++;
	}
	return v;
}

uint64_t gs_pyprobes_site_ip(const struct gs_pyprobes *p, unsigned site)
{
	const struct gs_pyimage *img = &p->py.img;
	if (site < (unsigned)img->nsites)
		return img->sites[site].store + p->py.bias;
	site -= (unsigned)img->nsites;
	for (int i = 0; i < img->dropreq.nsites; i++) /* as inline_target numbers them */
		if (img->dropreq.sites[i].len >= 5 && site-- == 0)
			return img->dropreq.sites[i].insn + p->py.bias;
	return 0;
}

int gs_pyprobes_tells_forced_drops(const struct gs_pyprobes *p)
{
	if (p->use_inline)
		return inline_requests(&p->py.img) || p->py.drop_request != 0;
	return p->tp_dropreq_set > 0 || p->py.drop_request != 0;
}

void gs_pyprobes_remove(struct gs_pyprobes *p)
{
	static const char *const events[] = { "take_gil", "gil_take", "gil_drop", "gil_dropreq", "gil_dropreset" };
	int failed = 0;
	for (size_t i = 0; i < GS_ARRAY_SIZE(events); i++) {
		int err = gs_uprobe_del(p->tracefs, p->group, events[i]);
		if (err < 0 && err != -ENOENT && !(i > 0 && p->use_watchpoint) && i < 3)
			failed = 1;
	}
	if (failed)
		gs_warn("could not remove the uprobes of group %s; the next gilscope run removes them", p->group);
	p->uprobe_defined = 0;
}
