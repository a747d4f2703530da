/* stacks.c - Python and native stack samples as interned records (see stacks.h). */
#define _GNU_SOURCE
#include "record/stacks.h"
#include "base/procfs.h"
#include "base/util.h"
#include "cpython/elfsym.h"
#include "cpython/native.h"
#include "cpython/pystack.h"
#include "record/intern.h"
#include "record/natsample.h"
#include "record/tnames.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* One CPython process sampled. */
struct proc {
	const struct gs_python *py;
	struct gs_pystacks *walker;
	struct gs_tnames *names; /* Python thread names, the switch interval */
	pid_t pid;
	struct gs_python *own; /* a fork()ed child's: its parent's layout with its pid (NULL: py is the caller's) */
	uint64_t key;          /* mixed into its code objects' addresses: frames of two processes never share an id */
};

struct gs_stacks {
	const struct gs_python *py; /* the first CPython's: the native sampler's */
	struct gs_emit emit;
	unsigned hz;
	struct proc *procs; /* the processes still running, nprocs of them */
	size_t nprocs, nkeys;
	struct gs_natsampler *nat; /* --native, the first CPython's threads (NULL: off) */
	struct gs_intern *ids;
	struct gs_tidmap *tidmap;
	uint64_t gone_errors, gone_named, gone_failed; /* the counts of the processes dropped */
	uint64_t samples, unattributed;
	uint64_t event_samples; /* stacks read after a counter's occurrence (--sample-event) */
	uint64_t nat_merged, nat_frozen, nat_mismatch, nat_missing, nat_frozen_mismatch;
};

static int read_target(void *ctx, uint64_t addr, void *dst, size_t len)
{
	return gs_mem_read(*(pid_t *)ctx, addr, dst, len);
}

/* gs_mem_vreader on the target: one process_vm_readv; the pieces read whole before the first that
 * is not (the kernel copies in order and stops at the first fault). */
static int read_vec(void *ctx, const struct gs_memv *v, int n)
{
	struct iovec local[256] = { { 0 } }, remote[256] = { { 0 } };
	ssize_t got;
	int k = 0;
	if (n <= 0)
		return 0;
	if (n > 256)
		n = 256;
	for (int i = 0; i < n; i++) {
		local[i] = (struct iovec){ v[i].dst, v[i].len };
		remote[i] = (struct iovec){ (void *)(uintptr_t)v[i].addr, v[i].len };
	}
	got = process_vm_readv(*(pid_t *)ctx, local, (unsigned long)n, remote, (unsigned long)n, 0);
	if (got < 0)
		return -errno;
	while (k < n && (size_t)got >= v[k].len) {
		got -= (ssize_t)v[k].len;
		k++;
	}
	return k;
}

/* gs_mem_words_reader on the target: read_vec's pieces of one word, 256 a read. */
static int read_words(void *ctx, const uint64_t *addrs, uint64_t *out, int n)
{
	struct gs_memv v[256];
	int done = 0;
	while (done < n) {
		int k = n - done < 256 ? n - done : 256, got;
		for (int i = 0; i < k; i++)
			v[i] = (struct gs_memv){ addrs[done + i], &out[done + i], 8 };
		got = read_vec(ctx, v, k);
		if (got < 0)
			return done ? done : got;
		done += got;
		if (got < k)
			break; /* a word that cannot be read: those after it are the caller's to read */
	}
	return done;
}

/* A frame definition record: "name\0where\0" (both bounded), for the frame id. */
static void frame_def(struct gs_stacks *s, uint16_t type, int32_t arg, uint32_t id, const char *name, const char *where,
		      uint64_t now)
{
	struct gs_rec r = { .type = type, .time = now, .arg = arg, .arg64 = id };
	char buf[1600];
	size_t nl = strnlen(name, 1024), wl = strnlen(where, 512);
	memcpy(buf, name, nl);
	buf[nl] = '\0';
	memcpy(buf + nl + 1, where, wl);
	buf[nl + 1 + wl] = '\0';
	gs_emit_rec(&s->emit, &r, buf, nl + wl + 2);
}

/* The frame id of a Python frame, defined in the recording the first time it is seen. */
static uint32_t py_frame_id(struct gs_stacks *s, const struct proc *p, const struct gs_pyframe *f, uint64_t now)
{
	int fresh;
	uint32_t id =
		gs_intern_frame(s->ids, f->code ^ p->key, (uint64_t)(uint32_t)f->line | (uint64_t)f->gen << 32, &fresh);
	if (fresh) {
		const char *q = "?", *fn = "?";
		gs_pystacks_code(p->walker, f->code, &q, &fn);
		frame_def(s, GS_REC_PYFRAME, f->line, id, q, fn, now);
	}
	return id;
}

/* The frame id of a native function (named by symbol and module); *flags GS_NATFRAME_*. */
static uint32_t native_frame_id(struct gs_stacks *s, uint64_t pc, unsigned *flags, uint64_t now)
{
	const char *name, *module;
	uint64_t k;
	uint32_t id;
	int fresh;

	gs_native_symbol(gs_natsampler_native(s->nat), pc, &name, &module, flags);
	k = gs_fnv1a(gs_fnv1a(GS_FNV1A_INIT, name), module);
	/* key2 cannot be a Python frame's: line and generation are never both all ones */
	id = gs_intern_frame(s->ids, k, ~0ull, &fresh);
	if (fresh)
		frame_def(s, GS_REC_NATFRAME, (int32_t)*flags, id, name, module, now);
	return id;
}

/* The frame of the evaluation loop where no symbol names it. */
static uint32_t eval_frame_id(struct gs_stacks *s, uint64_t now)
{
	const char *slash = strrchr(s->py->img.path, '/');
	const char *module = slash ? slash + 1 : s->py->img.path;
	int fresh;
	uint32_t id = gs_intern_frame(s->ids, 0x45564c4f4f50ull /* "EVLOOP" */, ~0ull - 1, &fresh);
	if (fresh)
		frame_def(s, GS_REC_NATFRAME, GS_NATFRAME_EVAL, id, "_PyEval_EvalFrameDefault", module, now);
	return id;
}

/* -vv: a frozen pair whose stacks disagree, both written out. */
static void debug_mismatch(struct gs_stacks *s, const struct proc *p, uint32_t tid, const uint64_t *pcs, int npc,
			   const uint8_t *is_eval, const struct gs_pyframe *f, int n)
{
	char line[4096];
	size_t o = 0;
	for (int k = 0; k < npc && o < 3000; k++) {
		const char *nm, *mo;
		unsigned fl;
		gs_native_symbol(gs_natsampler_native(s->nat), pcs[k], &nm, &mo, &fl);
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s ", nm, is_eval[k] ? "*" : "");
	}
	for (int i = 0; i < n && o < 4000; i++) {
		const char *q = "?", *fn = "?";
		gs_pystacks_code(p->walker, f[i].code, &q, &fn);
		o += (size_t)snprintf(line + o, sizeof(line) - o, "| %s%s ", q, f[i].entry ? "+" : "");
	}
	gs_debug("mismatch tid %u: %s", tid, line);
}

/* The thread's native stack merged with its Python frames (see gs_native_merge). */
static int merge_native(struct gs_stacks *s, const struct proc *p, uint32_t tid, const struct gs_pyframe *f, int n,
			uint32_t *ids, uint64_t now)
{
	uint64_t pcs[GS_NATIVE_UNWIND_MAX_FRAMES], sps[GS_NATIVE_UNWIND_MAX_FRAMES], eaddr[GS_PYSTACK_MAX_FRAMES];
	uint32_t natids[GS_NATIVE_UNWIND_MAX_FRAMES] = { 0 };
	unsigned flags[GS_NATIVE_UNWIND_MAX_FRAMES];
	uint8_t entry[GS_PYSTACK_MAX_FRAMES], is_eval[GS_NATIVE_UNWIND_MAX_FRAMES];
	int plan[GS_RECFILE_MAX_STACK_FRAMES];
	int frozen, complete, npc, m, mismatch;

	npc = gs_natsampler_stack(s->nat, tid, pcs, sps, GS_NATIVE_UNWIND_MAX_FRAMES, &frozen, &complete);
	if (npc <= 0)
		s->nat_missing++;
	for (int k = 0; k < npc; k++)
		natids[k] = native_frame_id(s, pcs[k], &flags[k], now);
	for (int i = 0; i < n; i++) {
		entry[i] = (uint8_t)f[i].entry;
		eaddr[i] = f[i].entry_addr;
	}
	m = gs_native_merge(flags, sps, npc > 0 ? npc : 0, complete, entry, eaddr, n, plan, GS_RECFILE_MAX_STACK_FRAMES,
			    &mismatch, is_eval);
	for (int k = 0; k < npc; k++)
		if (is_eval[k] && !(flags[k] & GS_NATFRAME_EVAL)) /* found by its entry frame: a stripped build */
			natids[k] = eval_frame_id(s, now);
	if (mismatch && npc > 0) {
		/* the C stack has not as many calls of the loop as the Python one has entries: a
		 * running thread paired with an older copy. No interleaving is better than a wrong one */
		for (int i = 0; i < n; i++)
			ids[i] = py_frame_id(s, p, &f[i], now);
		m = n;
	} else {
		for (int j = 0; j < m; j++)
			ids[j] = plan[j] >= 0 ? natids[plan[j]] : py_frame_id(s, p, &f[-plan[j] - 1], now);
	}
	if (npc > 0) {
		s->nat_merged++;
		s->nat_frozen += frozen;
		s->nat_mismatch += mismatch;
		s->nat_frozen_mismatch += mismatch && frozen;
		if (mismatch && frozen && gs_verbose > 1)
			debug_mismatch(s, p, tid, pcs, npc, is_eval, f, n);
	}
	return m;
}

/* The id of the stack of frames ids[0, n) (0 for none), defined in the recording the first time
 * it is seen. */
static uint32_t stack_id(struct gs_stacks *s, const uint32_t *ids, int n, uint64_t now)
{
	int fresh;
	uint32_t id;
	if (!n)
		return 0;
	id = gs_intern_stack(s->ids, ids, n, &fresh);
	if (fresh) {
		struct gs_rec def = { .type = GS_REC_STACK, .time = now, .arg = n, .arg64 = id };
		gs_emit_rec(&s->emit, &def, ids, (size_t)n * sizeof(*ids));
	}
	return id;
}

/* Is tid a thread of process pid? */
static int own_thread(pid_t pid, uint32_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%u", (int)pid, tid);
	return access(path, F_OK) == 0;
}

struct walk {
	struct gs_stacks *s;
	struct proc *p;
};

static void on_stack(uint32_t tid, const struct gs_pyframe *f, int n, void *arg)
{
	struct gs_stacks *s = ((struct walk *)arg)->s;
	struct proc *p = ((struct walk *)arg)->p;
	uint32_t ids[GS_RECFILE_MAX_STACK_FRAMES];
	uint64_t now = gs_now_ns();
	struct gs_rec r = { 0 };

	/* the thread state keeps the id of the thread's own PID namespace */
	if (gs_tidmap_active(s->tidmap) && (tid = gs_tidmap_lookup(s->tidmap, tid, now)) == 0) {
		s->unattributed++;
		return;
	}
	if (p->own && tid != (uint32_t)p->pid && !own_thread(p->pid, tid))
		return; /* a fork()ed copy's thread state of its parent's thread, not yet cleared */
	gs_tnames_sample(p->names, p->walker, read_target, &p->pid, tid, f, n, now);
	if (s->nat && p->py == s->py) {
		n = merge_native(s, p, tid, f, n, ids, now);
	} else {
		for (int i = 0; i < n; i++)
			ids[i] = py_frame_id(s, p, &f[i], now);
	}
	r.arg64 = stack_id(s, ids, n, now);
	r.type = GS_REC_SAMPLE;
	r.pid = (uint32_t)p->pid;
	r.tid = tid;
	r.time = now;
	gs_emit_rec(&s->emit, &r, NULL, 0);
	s->samples++;
}

/* procs[i] is gone (or replaced by an exec): its counts kept, the last one takes its place. */
static void drop(struct gs_stacks *s, size_t i)
{
	struct proc *p = &s->procs[i];
	uint64_t walks = 0, errors = 0;
	gs_pystacks_stats(p->walker, &walks, &errors);
	s->gone_errors += errors;
	gs_tnames_counts(p->names, &s->gone_named, &s->gone_failed);
	gs_pystacks_free(p->walker);
	gs_tnames_free(p->names);
	free(p->own);
	gs_intern_forget(s->ids, p->key); /* its frames and stacks are never seen again */
	*p = s->procs[--s->nprocs];
}

typedef void (*stack_cb)(uint32_t tid, const struct gs_pyframe *f, int n, void *arg);

/* One process's walk (cb with a struct walk); 1 when the process is gone (then dropped). */
static int walk_proc(struct gs_stacks *s, size_t i, stack_cb cb, void *arg)
{
	int err = gs_pystacks_sample(s->procs[i].walker, read_target, &s->procs[i].pid, cb, arg);
	if (err == -ESRCH) {
		drop(s, i);
		return 1;
	}
	if (err < 0)
		gs_debug("process %d: stack sample failed: %s", (int)s->procs[i].pid, strerror(-err));
	return 0;
}

void gs_stacks_sample(struct gs_stacks *s)
{
	if (!s || !s->nprocs)
		return;
	gs_natsampler_drain(s->nat); /* the newest native copies, just before the Python reads */
	for (size_t i = 0; i < s->nprocs;) {
		struct walk w = { s, &s->procs[i] };
		gs_tnames_tick(w.p->names, read_target, &w.p->pid, gs_now_ns());
		if (!walk_proc(s, i, on_stack, &w))
			i++; /* else the last one took its place */
	}
}

struct event_walk {
	struct gs_stacks *s;
	struct proc *p;
	uint32_t tid;
	int counter, found;
	uint64_t time;
};

/* One thread's walk after a counter's occurrence: only the thread the event happened in counts,
 * its Python frames alone (the native copies are the sampler's, not of this instant). */
static void on_event_stack(uint32_t tid, const struct gs_pyframe *f, int n, void *arg)
{
	struct event_walk *w = arg;
	struct gs_stacks *s = w->s;
	uint32_t ids[GS_RECFILE_MAX_STACK_FRAMES];
	struct gs_rec r = { .type = GS_REC_CTR_STACK, .pid = (uint32_t)w->p->pid, .arg = w->counter, .time = w->time };

	if (gs_tidmap_active(s->tidmap) && (tid = gs_tidmap_lookup(s->tidmap, tid, gs_now_ns())) == 0)
		return;
	if (tid != w->tid || w->found)
		return;
	w->found = 1;
	if (n > GS_RECFILE_MAX_STACK_FRAMES)
		n = GS_RECFILE_MAX_STACK_FRAMES;
	for (int i = 0; i < n; i++)
		ids[i] = py_frame_id(s, w->p, &f[i], w->time);
	r.tid = tid;
	r.arg64 = stack_id(s, ids, n, w->time);
	gs_emit_rec(&s->emit, &r, NULL, 0);
}

int gs_stacks_event(struct gs_stacks *s, uint32_t pid, uint32_t tid, int counter, uint64_t time)
{
	struct event_walk w = { s, NULL, tid, counter, 0, time };
	for (size_t i = 0; s && i < s->nprocs; i++)
		if ((uint32_t)s->procs[i].pid == pid) {
			w.p = &s->procs[i];
			walk_proc(s, i, on_event_stack, &w);
			break;
		}
	if (!w.found)
		return -1;
	s->event_samples++;
	return 0;
}

/* take_gil and drop_gil are static: a stripped CPython names them only through what
 * python.c found (call-target analysis), bounded by their .eh_frame entries. */
static void native_hints(struct gs_stacks *s)
{
	const struct gs_python *py = s->py;
	const struct {
		uint64_t vaddr;
		const char *name;
	} fn[] = {
		{ py->img.take_gil_vaddr, "take_gil" },
		{ py->img.drop_gil_vaddr, "drop_gil" },
	};
	struct gs_elf *elf;
	if (gs_elf_open(py->img.file, &elf) < 0)
		return;
	for (size_t i = 0; i < GS_ARRAY_SIZE(fn); i++) {
		uint64_t start, end;
		if (fn[i].vaddr && gs_elf_function_bounds(elf, fn[i].vaddr, &start, &end) == 0 && start == fn[i].vaddr)
			gs_native_hint(gs_natsampler_native(s->nat), start + py->bias, end + py->bias, fn[i].name);
	}
	gs_elf_free(elf);
}

int gs_stacks_add(struct gs_stacks *s, const struct gs_python *py)
{
	struct gs_pystacks *walker;
	struct proc *p;
	char why[512];

	if (!s)
		return -1;
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == py->pid) { /* it exec'd another CPython */
			drop(s, i);
			break;
		}
	walker = gs_pystacks_new(py, why, sizeof(why));
	if (!walker) {
		gs_info("process %d: no Python stacks: %s", (int)py->pid, why);
		return -1;
	}
	gs_pystacks_set_words_reader(walker, read_words);
	gs_pystacks_set_vreader(walker, read_vec);
	s->procs = gs_realloc_array(s->procs, s->nprocs + 1, sizeof(*s->procs));
	p = &s->procs[s->nprocs++];
	p->py = py;
	p->walker = walker;
	p->pid = py->pid;
	p->names = gs_tnames_new(py, &s->emit);
	p->own = NULL;
	/* user-space addresses are below 2^48: the first process's keys are its addresses */
	p->key = (s->nkeys++ & 0xffff) << 48;
	return 0;
}

/* pid's AT_RANDOM (the address of its 16 random bytes: set anew at each exec), 0 if unknown. */
static uint64_t at_random(pid_t pid)
{
	char path[64];
	uint64_t v[128];
	long n;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	n = gs_read_file(path, (char *)v, sizeof(v));
	for (long i = 0; n > 0 && i + 1 < n / 8; i += 2)
		if (v[i] == 25 /* AT_RANDOM */)
			return v[i + 1];
	return 0;
}

void gs_stacks_forked(struct gs_stacks *s, pid_t child, pid_t parent)
{
	struct gs_python *py;
	uint64_t r;
	size_t i;
	if (!s)
		return;
	for (i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == child)
			return; /* it exec'd CPython and was set up already */
	for (i = 0; i < s->nprocs && s->procs[i].pid != parent; i++)
		;
	if (i == s->nprocs || (r = at_random(child)) == 0 || r != at_random(parent))
		return; /* not a sampled CPython's child, gone, or exec'd since */
	py = gs_malloc(sizeof(*py));
	*py = *s->procs[i].py;
	py->pid = child;
	if (gs_stacks_add(s, py) < 0) {
		free(py);
		return;
	}
	s->procs[s->nprocs - 1].own = py;
}

void gs_stacks_exec(struct gs_stacks *s, pid_t pid)
{
	for (size_t i = 0; s && i < s->nprocs; i++)
		if (s->procs[i].pid == pid && s->procs[i].own) {
			drop(s, i);
			return;
		}
}

void gs_stacks_forget(struct gs_stacks *s, const struct gs_python *py)
{
	for (size_t i = 0; s && i < s->nprocs; i++)
		if (s->procs[i].py == py) {
			drop(s, i);
			return;
		}
}

struct gs_stacks *gs_stacks_start(const struct gs_python *py, const struct gs_stacks_opts *o,
				  const struct gs_emit *emit)
{
	struct gs_stacks *s;
	char why[512];

	if (!o->sample_hz && !o->event_stacks)
		return NULL;
	s = gs_calloc(1, sizeof(*s));
	s->py = py;
	s->emit = *emit;
	s->hz = o->sample_hz;
	s->ids = gs_intern_new();
	s->tidmap = o->tidmap;
	if (gs_stacks_add(s, py) < 0) {
		gs_intern_free(s->ids);
		free(s);
		return NULL;
	}
	if (o->native) {
		s->nat = gs_natsampler_open(py->pid, o->ncpu, o->tp_switch, o->sample_hz,
					    o->native_stack ? o->native_stack : GS_NATSAMPLE_DEFAULT_STACK, why,
					    sizeof(why));
		if (!s->nat) {
			gs_warn("no native stacks: %s", why);
		} else {
			native_hints(s);
			gs_emit_meta(&s->emit, 0, "native", "1");
		}
	}
	return s;
}

void gs_stacks_thread_exited(struct gs_stacks *s, uint32_t tid)
{
	for (size_t i = 0; s && i < s->nprocs; i++) /* thread ids are the host's: one process has it */
		gs_tnames_forget(s->procs[i].names, tid);
}

void gs_stacks_finish(struct gs_stacks *s)
{
	char buf[512];
	uint64_t errors, named, failed;
	if (!s)
		return;
	errors = s->gone_errors;
	named = s->gone_named;
	failed = s->gone_failed;
	for (size_t i = 0; i < s->nprocs; i++) {
		uint64_t w = 0, e = 0;
		gs_pystacks_stats(s->procs[i].walker, &w, &e);
		errors += e;
		gs_tnames_counts(s->procs[i].names, &named, &failed);
	}
	gs_emit_meta_u64(&s->emit, 0, "names.read", named);
	gs_emit_meta_u64(&s->emit, 0, "names.failed", failed);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)s->samples);
	gs_emit_meta(&s->emit, 0, "stacks.samples", buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)errors);
	gs_emit_meta(&s->emit, 0, "stacks.errors", buf);
	snprintf(buf, sizeof(buf), "%u", s->hz);
	gs_emit_meta(&s->emit, 0, "stacks.rate_hz", buf);
	if (s->event_samples)
		gs_emit_meta_u64(&s->emit, 0, "stacks.event_samples", s->event_samples);
	if (s->unattributed) /* Python threads of another PID namespace whose host id was not found */
		gs_emit_meta_u64(&s->emit, 0, "stacks.unattributed", s->unattributed);
	if (s->nat) {
		struct gs_natsampler_stats ns;
		gs_natsampler_stats(s->nat, &ns);
		const struct {
			const char *key;
			uint64_t v;
		} facts[] = {
			{ "native.merged", s->nat_merged },
			{ "native.frozen", s->nat_frozen },
			{ "native.mismatched", s->nat_mismatch },
			{ "native.missing", s->nat_missing },
			{ "native.switch_copies", ns.switch_samples },
			{ "native.cpu_copies", ns.cpu_samples },
			{ "native.lost", ns.lost },
			{ "native.unwinds", ns.unwinds },
			{ "native.truncated", ns.truncated },
			{ "native.unknown_symbols", ns.unknown_symbols },
			{ "native.frozen_mismatched", s->nat_frozen_mismatch },
		};
		for (size_t i = 0; i < GS_ARRAY_SIZE(facts); i++)
			gs_emit_meta_u64(&s->emit, 0, facts[i].key, facts[i].v);
	}
}

void gs_stacks_free(struct gs_stacks *s)
{
	if (!s)
		return;
	gs_natsampler_close(s->nat);
	while (s->nprocs)
		drop(s, s->nprocs - 1);
	free(s->procs);
	gs_intern_free(s->ids);
	free(s);
}
