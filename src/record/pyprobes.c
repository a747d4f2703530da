/* pyprobes.c - a CPython process's GIL probes (see pyprobes.h). */
#define _GNU_SOURCE
#include "record/pyprobes.h"
#include "base/procfs.h"
#include "base/recfile.h"
#include "base/util.h"
#include "probe/tracefs.h"
#include "probe/x86.h"
#include "record/ring_decode.h"

#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <string.h>
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
		err = gs_uprobe_add(p->tracefs, p->group, d->value ? "gil_dropreq" : "gil_dropreset", img->path,
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

int gs_pyprobes_locate(struct gs_pyprobes *p, pid_t pid, int may_inline, const struct gs_evlist *el, int *pending_sig,
		       char *why, size_t whylen)
{
	int err = gs_python_find(pid, &p->py, why, whylen);
	if (err < 0)
		return err;
	if (may_inline && p->use_inline) {
		struct gs_inline_site sites[GS_INLINE_MAX_SITES];
		struct gs_inline_target tg;
		inline_target(&p->py, &tg, sites);
		err = gs_inline_setup(&p->il, pid, &tg, gs_evlist_meta_page(el), pending_sig, why, whylen);
		if (err == 0)
			return 0;
		gs_warn("inline GIL probes unavailable (%s); using uprobes", why);
		why[0] = '\0';
	}
	p->use_inline = 0;
	return define_uprobes(p, why, whylen);
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
