/* record.c - the recorder.
 *
 * Mechanism (see README "How gilscope records"):
 *   - sched:sched_switch (switch-outs with prev_state), PERF_RECORD_SWITCH (switch-ins),
 *     sched:sched_wakeup, and fork/exit/comm records, all per CPU for the target task with
 *     inherit=1 so every thread and child created later is covered;
 *   - an entry uprobe on take_gil (defined through tracefs uprobe_events, opened as a
 *     tracepoint with inherit=1): the moment a thread asks for the GIL;
 *   - hardware write watchpoints on gil->locked and on the main interpreter's
 *     gil_drop_request (inherit=1): every acquisition and release from every code path,
 *     inlined drop_gil copies included, and every switch request. The value stored is
 *     decoded from the instruction before the sample IP (x86.c), once per code site.
 * Launch: the child is held with ptrace until exec, then until its entry point (when every
 * DT_NEEDED library, libpython included, is mapped); the probes are set up and the child is
 * detached before it runs a single Python instruction. Attach: every thread is stopped with
 * PTRACE_INTERRUPT while the per-thread events are opened and the GIL holder is read, then
 * resumed (a few milliseconds).
 * Rings are drained at least every 50 ms and merged in timestamp order with a watermark
 * before being appended to the recording.
 */
#define _GNU_SOURCE
#include "record/recorder.h"
#include "cpython/elfsym.h"
#include "probe/inline.h"
#include "probe/perf_event.h"
#include "record/ring_decode.h"
#include "base/procfs.h"
#include "cpython/pystack.h"
#include "record/natsample.h"
#include "cpython/python.h"
#include "base/recfile.h"
#include "probe/tracefs.h"
#include "base/util.h"
#include "probe/x86.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/hw_breakpoint.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

#define WATERMARK_SLACK_NS 10000000ull /* an event read later is at most this much older */

/* event kinds by sample id: enum gs_perf_kind (ring_decode.h) */

#define TP_SAMPLE (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW)
#define PROBE_SAMPLE (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU)

struct pend {
	struct gs_rec r;
	uint64_t seq;
	char name[16];
	char *payload;  /* META: "key\0value\0" (owned), else NULL */
	size_t plen;
};

/* Events waiting to be written, in the order their ring delivered them (time order, except
 * for rare kernel reorderings: then `unsorted` is set and the queue is sorted before merging). */
struct queue {
	struct pend *v;
	size_t n, cap;
	uint64_t last;
	int unsorted;
};

struct idmap {
	uint64_t id;
	int kind;
};

struct site {
	uint32_t pid;
	uint64_t ip;
	int32_t value;
};

struct recorder {
	const struct gs_record_opts *o;
	char tracefs[256];
	int ncpu;
	struct gs_ring *rings;
	int *ring_fd;               /* per cpu: the fd that owns the ring, -1 until opened */
	uint64_t *ring_last, *ring_read;
	int *fds;
	size_t nfds, cap_fds;
	struct idmap *ids;
	size_t nids, cap_ids;
	unsigned prev_state_off, prev_state_size, wake_pid_off, wake_pid_size;
	long tp_switch, tp_wakeup, tp_take_gil, tp_acquire, tp_release;
	int use_watchpoint;         /* gil->locked through a hardware watchpoint instead of store-site uprobes */
	int use_inline;             /* inline probes (launch only) */
	struct gs_inline il;
	int pending_sig;            /* a signal that arrived while gilscope held the command */
	int ready_fd;               /* --import: the command writes here once the imports are done */
	struct gs_pystacks *stacks; /* Python stack sampler (NULL: off) */
	int drop_warned;
	struct sampler *smp;
	struct gs_natsampler *nat;  /* --native: native stacks (NULL: off) */
	uint64_t nat_merged, nat_frozen, nat_mismatch, nat_missing, nat_frozen_mismatch;
	struct queue *queues;       /* one per ring (events in ring order), the last for metadata */
	int nqueues;
	uint64_t seq;
	struct site sites[64];
	size_t nsites;
	struct gs_recwriter *w;
	int write_failed;
	struct gs_python py;
	int have_python;
	char group[64];
	int uprobe_defined;
	pid_t target;
	char last_exe[4096];        /* the last program the command exec'd, when not CPython */
	int status, exited;
	uint64_t lost, throttled, corrupt, samples;
	uint64_t start_ns;
};

/* ---- events ---------------------------------------------------------------------------- */

static void add_id(struct recorder *R, int fd, int kind)
{
	uint64_t id;
	if (ioctl(fd, PERF_EVENT_IOC_ID, &id) < 0)
		return;
	if (R->nids == R->cap_ids) {
		R->cap_ids = R->cap_ids ? R->cap_ids * 2 : 64;
		R->ids = gs_realloc_array(R->ids, R->cap_ids, sizeof(*R->ids));
	}
	R->ids[R->nids].id = id;
	R->ids[R->nids].kind = kind;
	R->nids++;
}

static int kind_of(const struct recorder *R, uint64_t id)
{
	/* ids are allocated in increasing order: binary search */
	size_t lo = 0, hi = R->nids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (R->ids[mid].id == id)
			return R->ids[mid].kind;
		if (R->ids[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < R->nids; i++) /* not sorted after all */
		if (R->ids[i].id == id)
			return R->ids[i].kind;
	return 0;
}

static void push_fd(struct recorder *R, int fd)
{
	if (R->nfds == R->cap_fds) {
		R->cap_fds = R->cap_fds ? R->cap_fds * 2 : 64;
		R->fds = gs_realloc_array(R->fds, R->cap_fds, sizeof(int));
	}
	R->fds[R->nfds++] = fd;
}

/* Opens one event for task tid on every CPU, attaching it to the CPU's ring. */
static int open_on_cpus(struct recorder *R, struct perf_event_attr *attr, pid_t tid, int kind, const char *what,
			char *why, size_t whylen)
{
	for (int c = 0; c < R->ncpu; c++) {
		int fd = gs_perf_open(attr, tid, c, -1, 0), err;
		if (fd == -EINVAL || fd == -ENODEV) {
			/* an offline CPU: skip it */
			if (fd == -ENODEV)
				continue;
		}
		if (fd < 0) {
			gs_perf_strerror(fd, what, why, whylen);
			return fd;
		}
		push_fd(R, fd);
		if (R->ring_fd[c] < 0) {
			err = gs_ring_map(&R->rings[c], fd, R->o->mmap_pages);
			if (err < 0) {
				snprintf(why, whylen,
					 "cannot map a %u-page ring buffer (%s): lower --mmap-pages or raise "
					 "kernel.perf_event_mlock_kb",
					 R->o->mmap_pages, strerror(-err));
				return err;
			}
			R->ring_fd[c] = fd;
		} else if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, R->ring_fd[c]) < 0) {
			err = -errno;
			snprintf(why, whylen, "cannot share the ring buffer between events: %s", strerror(-err));
			return err;
		}
		add_id(R, fd, kind);
	}
	return 0;
}

static void base_attr(struct perf_event_attr *a, unsigned type, uint64_t config, uint64_t sample_type)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = type;
	a->config = config;
	a->sample_period = 1;
	a->sample_type = sample_type;
	a->sample_id_all = 1;
	a->inherit = 1;
	a->use_clockid = 1;
	a->clockid = CLOCK_MONOTONIC;
	a->watermark = 1;
}

static int open_sched_events(struct recorder *R, pid_t tid, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int err;
	base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_switch, TP_SAMPLE);
	a.context_switch = 1;
	a.comm = 1;
	a.comm_exec = 1;
	a.task = 1;
	a.wakeup_watermark = (uint32_t)(R->o->mmap_pages * 4096u / 4);
	if ((err = open_on_cpus(R, &a, tid, GS_PK_SWITCH, "the sched:sched_switch tracepoint", why, whylen)) < 0)
		return err;
	base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_wakeup, TP_SAMPLE);
	return open_on_cpus(R, &a, tid, GS_PK_WAKEUP, "the sched:sched_wakeup tracepoint", why, whylen);
}

static int open_python_events(struct recorder *R, pid_t tid, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int err;
	if (R->use_inline)
		goto drop_request;
	base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_take_gil, PROBE_SAMPLE);
	if ((err = open_on_cpus(R, &a, tid, GS_PK_TAKE_GIL, "the take_gil uprobe", why, whylen)) < 0)
		return err;
	if (!R->use_watchpoint) {
		base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_acquire, PROBE_SAMPLE);
		if ((err = open_on_cpus(R, &a, tid, GS_PK_ACQUIRE, "the GIL acquisition uprobes", why, whylen)) < 0)
			return err;
		base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_release, PROBE_SAMPLE);
		if ((err = open_on_cpus(R, &a, tid, GS_PK_RELEASE, "the GIL release uprobes", why, whylen)) < 0)
			return err;
	}
drop_request:
	base_attr(&a, PERF_TYPE_BREAKPOINT, 0, PROBE_SAMPLE);
	a.bp_type = HW_BREAKPOINT_W;
	a.bp_len = HW_BREAKPOINT_LEN_4;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	if (R->use_watchpoint) {
		if (R->py.img.layout.gil_home != GS_GIL_IN_RUNTIME) {
			snprintf(why, whylen, "--gil-watchpoint needs the GIL at a static address (CPython 3.9 to 3.11)");
			return -ENOTSUP;
		}
		a.bp_addr = R->py.runtime + R->py.img.layout.gil + R->py.img.layout.gil_locked;
		if ((err = open_on_cpus(R, &a, tid, GS_PK_BP_LOCKED, "a hardware watchpoint on the GIL", why, whylen)) < 0)
			return err;
	}
	if (!R->py.drop_request)
		return 0; /* not at a static address in this version: forced drops are not told apart */
	a.bp_addr = R->py.drop_request;
	{
		char w[512];
		err = open_on_cpus(R, &a, tid, GS_PK_BP_DROPREQ, "a hardware watchpoint on the GIL drop request", w, sizeof(w));
		if (err < 0 && !R->drop_warned) {
			/* optional: only forced drops need it (a debugger may hold the debug registers) */
			gs_warn("%s: forced drops will not be told apart", w);
			R->drop_warned = 1;
		}
	}
	return 0;
}

static int sort_ids_cmp(const void *x, const void *y)
{
	const struct idmap *a = x, *b = y;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* ---- decoding ----------------------------------------------------------------------------- */

static struct pend *queue_add(struct queue *q, const struct gs_rec *r, const char *name, uint64_t seq)
{
	struct pend *p;
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 16384;
		q->v = gs_realloc_array(q->v, q->cap, sizeof(*q->v));
	}
	p = &q->v[q->n++];
	p->r = *r;
	p->seq = seq;
	p->payload = NULL;
	p->plen = 0;
	if (name) {
		size_t n = strnlen(name, 15);
		memcpy(p->name, name, n);
		p->name[n] = '\0';
	}
	if (r->time < q->last)
		q->unsorted = 1;
	else
		q->last = r->time;
	return p;
}

/* Queues a record; cpu < 0 selects the metadata queue. */
static struct pend *pend_add_on(struct recorder *R, int cpu, const struct gs_rec *r, const char *name)
{
	int qi = cpu >= 0 && cpu < R->ncpu ? cpu : R->ncpu;
	return queue_add(&R->queues[qi], r, name, R->seq++);
}

static void pend_add(struct recorder *R, const struct gs_rec *r, const char *name)
{
	pend_add_on(R, -1, r, name);
}

/* The value a watchpoint hit stored, decoded once per (process, code site). */
static int32_t site_value(struct recorder *R, uint32_t pid, uint64_t ip)
{
	uint8_t buf[15];
	struct x86_insn in;
	int32_t v = GS_VALUE_UNKNOWN;
	for (size_t i = 0; i < R->nsites; i++)
		if (R->sites[i].ip == ip && (R->sites[i].pid == pid || R->sites[i].value != GS_VALUE_UNKNOWN))
			return R->sites[i].value;
	if (gs_mem_read((pid_t)pid, ip - sizeof(buf), buf, sizeof(buf)) == 0 &&
	    x86_store_ending_at(buf, sizeof(buf), ip, &in) == 1 && in.width == 4)
		v = (int32_t)in.imm;
	if (R->nsites < GS_ARRAY_SIZE(R->sites)) {
		R->sites[R->nsites].pid = pid;
		R->sites[R->nsites].ip = ip;
		R->sites[R->nsites].value = v;
		R->nsites++;
	}
	return v;
}

static int kind_cb(const void *ctx, uint64_t id) { return kind_of(ctx, id); }

struct drain_ctx {
	struct recorder *R;
	int cpu;
};

/* One ring record: decoded by ring_decode.c; the value a watchpoint hit stored is read here (it
 * needs the target's code), as are the counters. */
static void on_record(const struct perf_event_header *h, void *arg)
{
	struct drain_ctx *c = arg;
	struct recorder *R = c->R;
	const struct gs_ringdec_layout l = {
		.prev_state_off = R->prev_state_off, .prev_state_size = R->prev_state_size,
		.wake_pid_off = R->wake_pid_off, .wake_pid_size = R->wake_pid_size, .kind_of = kind_cb, .ctx = R,
	};
	struct gs_ringdec d;
	enum gs_ringdec_result res = gs_ringdec_decode(h, &l, &d);

	if (d.is_sample)
		R->samples++;
	switch (res) {
	case GS_RINGDEC_EVENT:
		break;
	case GS_RINGDEC_CORRUPT:
		R->corrupt++;
		return;
	case GS_RINGDEC_THROTTLE:
		R->throttled++;
		return;
	default:
		return;
	}
	if (d.needs_value)
		d.r.arg = site_value(R, d.r.pid, d.ip);
	if (d.r.type == GS_REC_LOST) {
		R->lost += d.r.arg64;
		d.r.arg = c->cpu;
	}
	pend_add_on(R, c->cpu, &d.r, d.r.type == GS_REC_COMM ? d.name : NULL);
	if (d.r.time > R->ring_last[c->cpu])
		R->ring_last[c->cpu] = d.r.time;
}

static int pend_cmp(const void *x, const void *y)
{
	const struct pend *a = x, *b = y;
	if (a->r.time != b->r.time)
		return a->r.time < b->r.time ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void write_rec_payload(struct recorder *R, const struct gs_rec *r, const void *payload, size_t plen)
{
	int err;
	if (R->write_failed)
		return;
	err = gs_recwriter_add(R->w, r, payload, plen);
	if (err < 0) {
		R->write_failed = 1;
		gs_err("writing %s failed (%s): the recording stops here; the program keeps running and the summary "
		       "covers what was written",
		       R->o->output, strerror(-err));
	}
}

static void write_rec(struct recorder *R, const struct gs_rec *r, const char *name)
{
	write_rec_payload(R, r, name, name ? strlen(name) + 1 : 0);
}

static void on_inline(const struct gs_inline_event *e, void *arg)
{
	struct recorder *R = arg;
	struct gs_rec r = { 0 };
	r.tid = e->tid;
	r.time = e->time;
	r.arg64 = e->gil;
	if (e->kind == GS_INLINE_WAIT) {
		r.type = GS_REC_GIL_WAIT;
	} else {
		r.type = GS_REC_GIL_WRITE;
		r.arg = e->kind == GS_INLINE_ACQUIRE ? 1 : 0;
	}
	queue_add(&R->queues[R->ncpu + 1], &r, NULL, R->seq++);
}

static void write_pend(struct recorder *R, struct pend *p)
{
	if (p->payload) {
		write_rec_payload(R, &p->r, p->payload, p->plen);
		free(p->payload);
		p->payload = NULL;
	} else {
		write_rec(R, &p->r, p->r.type == GS_REC_COMM ? p->name : NULL);
	}
}

/* Drains every ring, then appends the queued events older than the watermark, merging the
 * queues by timestamp (ties keep arrival order). */
static void drain(struct recorder *R, int final)
{
	uint64_t wm = UINT64_MAX;
	size_t *head = gs_calloc((size_t)R->nqueues, sizeof(size_t));

	for (int c = 0; c < R->ncpu; c++) {
		struct drain_ctx ctx = { R, c };
		uint64_t lb;
		if (R->ring_fd[c] < 0)
			continue;
		R->ring_read[c] = gs_now_ns();
		if (gs_ring_drain(&R->rings[c], on_record, &ctx) < 0)
			R->corrupt++;
		lb = R->ring_read[c] > WATERMARK_SLACK_NS ? R->ring_read[c] - WATERMARK_SLACK_NS : 0;
		if (R->ring_last[c] > lb)
			lb = R->ring_last[c];
		if (lb < wm)
			wm = lb;
	}
	if (R->il.map) {
		uint64_t t = gs_now_ns(), lb = t > WATERMARK_SLACK_NS ? t - WATERMARK_SLACK_NS : 0;
		gs_inline_drain(&R->il, on_inline, R);
		if (lb < wm)
			wm = lb;
	}
	for (int i = 0; i < R->nqueues; i++) {
		struct queue *q = &R->queues[i];
		if (q->unsorted) {
			qsort(q->v, q->n, sizeof(*q->v), pend_cmp);
			q->unsorted = 0;
			q->last = q->n ? q->v[q->n - 1].r.time : 0;
		}
	}
	for (;;) {
		int best = -1;
		for (int i = 0; i < R->nqueues; i++) {
			const struct queue *q = &R->queues[i];
			if (head[i] < q->n &&
			    (best < 0 || pend_cmp(&q->v[head[i]], &R->queues[best].v[head[best]]) < 0))
				best = i;
		}
		if (best < 0 || (!final && R->queues[best].v[head[best]].r.time >= wm))
			break;
		write_pend(R, &R->queues[best].v[head[best]++]);
	}
	for (int i = 0; i < R->nqueues; i++) {
		struct queue *q = &R->queues[i];
		if (!head[i])
			continue;
		memmove(q->v, q->v + head[i], (q->n - head[i]) * sizeof(*q->v));
		q->n -= head[i];
	}
	free(head);
	if (!R->write_failed) {
		int err = gs_recwriter_flush(R->w);
		if (err < 0) {
			R->write_failed = 1;
			gs_err("writing %s failed (%s): the recording stops here; the program keeps running",
			       R->o->output, strerror(-err));
		}
	}
}

/* Metadata goes through the time-ordered queue like every event: a reader meets it at the
 * moment it became true (a process is CPython from its exec on, not before). */
static void meta(struct recorder *R, uint32_t pid, const char *k, const char *v)
{
	struct gs_rec r = { .type = GS_REC_META, .pid = pid, .time = gs_now_ns() };
	size_t kl = strlen(k), vl = strlen(v);
	char *buf = gs_malloc(kl + vl + 2);
	memcpy(buf, k, kl + 1);
	memcpy(buf + kl + 1, v, vl + 1);
	struct pend *p = pend_add_on(R, -1, &r, NULL);
	p->payload = buf;
	p->plen = kl + vl + 2;
}

/* ---- Python stack samples ------------------------------------------------------------------- */

/* Frames (code object, line) and whole stacks are interned: a sample is one 32-byte record
 * naming a stack defined once. */
struct interned {
	uint64_t key1, key2; /* frame: code, line; stack: hash, length */
	uint64_t id;
	uint32_t *frames;    /* stacks only */
	int n;
};

struct sampler {
	struct interned *frames, *stackset;
	size_t fcap, scap, nframes, nstacks;
	uint64_t samples;
	pid_t pid;
};

static int sampler_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
	return gs_mem_read(*(pid_t *)ctx, addr, dst, len);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* Finds or inserts in an open-addressing table (grown at half full); *fresh set when new. */
static struct interned *intern(struct interned **tab, size_t *cap, size_t *count, uint64_t k1, uint64_t k2,
			       const uint32_t *frames, int n, int *fresh)
{
	size_t h;
	if ((*count + 1) * 2 > *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct interned *nt = gs_calloc(ncap, sizeof(*nt));
		for (size_t i = 0; i < *cap; i++)
			if ((*tab)[i].id) {
				size_t j = (size_t)mix((*tab)[i].key1, (*tab)[i].key2) & (ncap - 1);
				while (nt[j].id)
					j = (j + 1) & (ncap - 1);
				nt[j] = (*tab)[i];
			}
		free(*tab);
		*tab = nt;
		*cap = ncap;
	}
	h = (size_t)mix(k1, k2) & (*cap - 1);
	while ((*tab)[h].id) {
		struct interned *e = &(*tab)[h];
		if (e->key1 == k1 && e->key2 == k2 && (!frames || (e->n == n && !memcmp(e->frames, frames, (size_t)n * 4)))) {
			*fresh = 0;
			return e;
		}
		h = (h + 1) & (*cap - 1);
	}
	(*tab)[h].key1 = k1;
	(*tab)[h].key2 = k2;
	(*tab)[h].id = ++*count;
	if (frames) {
		(*tab)[h].frames = gs_malloc((size_t)(n ? n : 1) * 4);
		memcpy((*tab)[h].frames, frames, (size_t)n * 4);
		(*tab)[h].n = n;
	}
	*fresh = 1;
	return &(*tab)[h];
}

static void meta_payload(struct recorder *R, struct gs_rec *r, const void *payload, size_t plen)
{
	struct pend *p = pend_add_on(R, -1, r, NULL);
	p->payload = gs_malloc(plen ? plen : 1);
	memcpy(p->payload, payload, plen);
	p->plen = plen;
}

/* A frame definition record: "name\0where\0" (both bounded), for the frame id. */
static void frame_def(struct recorder *R, uint16_t type, int32_t arg, uint64_t id, const char *name,
		      const char *where, uint64_t now)
{
	struct gs_rec r = { 0 };
	char buf[1600];
	size_t nl = strnlen(name, 1024), wl = strnlen(where, 512);
	memcpy(buf, name, nl);
	buf[nl] = '\0';
	memcpy(buf + nl + 1, where, wl);
	buf[nl + 1 + wl] = '\0';
	r.type = type;
	r.time = now;
	r.arg = arg;
	r.arg64 = id;
	meta_payload(R, &r, buf, nl + wl + 2);
}

/* The frame id of a Python frame, defined in the recording the first time it is seen. */
static uint32_t py_frame_id(struct recorder *R, const struct gs_pyframe *f, uint64_t now)
{
	struct sampler *S = R->smp;
	int fresh;
	struct interned *e = intern(&S->frames, &S->fcap, &S->nframes, f->code,
				    (uint64_t)(uint32_t)f->line | (uint64_t)f->gen << 32, NULL, 0, &fresh);
	if (fresh) {
		const char *q = "?", *fn = "?";
		gs_pystacks_code(R->stacks, f->code, &q, &fn);
		frame_def(R, GS_REC_PYFRAME, f->line, e->id, q, fn, now);
	}
	return (uint32_t)e->id;
}

static uint64_t str_hash64(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

/* The frame id of a native function (named by symbol and module); *flags GS_NATFRAME_*. */
static uint32_t native_frame_id(struct recorder *R, uint64_t pc, unsigned *flags, uint64_t now)
{
	struct sampler *S = R->smp;
	const char *name, *module;
	uint64_t k;
	int fresh;
	struct interned *e;

	gs_native_symbol(gs_natsampler_native(R->nat), pc, &name, &module, flags);
	k = str_hash64(str_hash64(1469598103934665603ull, name), module);
	/* key2 cannot be a Python frame's: line and generation are never both all ones */
	e = intern(&S->frames, &S->fcap, &S->nframes, k, ~0ull, NULL, 0, &fresh);
	if (fresh)
		frame_def(R, GS_REC_NATFRAME, (int32_t)*flags, e->id, name, module, now);
	return (uint32_t)e->id;
}

/* The frame of the evaluation loop where no symbol names it. */
static uint32_t eval_frame_id(struct recorder *R, uint64_t now)
{
	struct sampler *S = R->smp;
	const char *slash = strrchr(R->py.img.path, '/');
	const char *module = slash ? slash + 1 : R->py.img.path;
	int fresh;
	struct interned *e = intern(&S->frames, &S->fcap, &S->nframes, 0x45564c4f4f50ull /* "EVLOOP" */, ~0ull - 1,
				    NULL, 0, &fresh);
	if (fresh)
		frame_def(R, GS_REC_NATFRAME, GS_NATFRAME_EVAL, e->id, "_PyEval_EvalFrameDefault", module, now);
	return (uint32_t)e->id;
}

/* The thread's native stack merged with its Python frames (see gs_native_merge). */
static int merge_native(struct recorder *R, uint32_t tid, const struct gs_pyframe *f, int n, uint32_t *ids,
			uint64_t now)
{
	uint64_t pcs[GS_NATIVE_MAX_FRAMES], sps[GS_NATIVE_MAX_FRAMES], eaddr[GS_MAX_FRAMES];
	uint32_t natids[GS_NATIVE_MAX_FRAMES] = { 0 };
	unsigned flags[GS_NATIVE_MAX_FRAMES];
	uint8_t entry[GS_MAX_FRAMES], is_eval[GS_NATIVE_MAX_FRAMES];
	int plan[GS_MAX_STACK_FRAMES];
	int frozen, complete, npc, m, mismatch;

	npc = gs_natsampler_stack(R->nat, tid, pcs, sps, GS_NATIVE_MAX_FRAMES, &frozen, &complete);
	if (npc <= 0)
		R->nat_missing++;
	for (int k = 0; k < npc; k++)
		natids[k] = native_frame_id(R, pcs[k], &flags[k], now);
	for (int i = 0; i < n; i++) {
		entry[i] = (uint8_t)f[i].entry;
		eaddr[i] = f[i].entry_addr;
	}
	m = gs_native_merge(flags, sps, npc > 0 ? npc : 0, complete, entry, eaddr, n, plan, GS_MAX_STACK_FRAMES,
			    &mismatch, is_eval);
	for (int k = 0; k < npc; k++)
		if (is_eval[k] && !(flags[k] & GS_NATFRAME_EVAL)) /* found by its entry frame: a stripped build */
			natids[k] = eval_frame_id(R, now);
	if (mismatch && npc > 0) {
		/* the C stack has not as many calls of the loop as the Python one has entries: a
		 * running thread paired with an older copy. No interleaving is better than a wrong one */
		for (int i = 0; i < n; i++)
			ids[i] = py_frame_id(R, &f[i], now);
		m = n;
	} else {
		for (int j = 0; j < m; j++)
			ids[j] = plan[j] >= 0 ? natids[plan[j]] : py_frame_id(R, &f[-plan[j] - 1], now);
	}
	if (npc > 0) {
		R->nat_merged++;
		R->nat_frozen += frozen;
		R->nat_mismatch += mismatch;
		R->nat_frozen_mismatch += mismatch && frozen;
		if (mismatch && frozen && gs_verbose > 1) {
			char line[4096];
			size_t o = 0;
			for (int k = 0; k < npc && o < 3000; k++) {
				const char *nm, *mo;
				unsigned fl;
				gs_native_symbol(gs_natsampler_native(R->nat), pcs[k], &nm, &mo, &fl);
				o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s ", nm, is_eval[k] ? "*" : "");
			}
			for (int i = 0; i < n && o < 4000; i++) {
				const char *q = "?", *fn = "?";
				gs_pystacks_code(R->stacks, f[i].code, &q, &fn);
				o += (size_t)snprintf(line + o, sizeof(line) - o, "| %s%s ", q, f[i].entry ? "+" : "");
			}
			gs_debug("mismatch tid %u: %s", tid, line);
		}
	}
	return m;
}

static void on_stack(uint32_t tid, const struct gs_pyframe *f, int n, void *arg)
{
	struct recorder *R = arg;
	struct sampler *S = R->smp;
	uint32_t ids[GS_MAX_STACK_FRAMES];
	uint64_t h, now = gs_now_ns();
	struct gs_rec r = { 0 };
	int fresh;

	if (R->nat) {
		n = merge_native(R, tid, f, n, ids, now);
	} else {
		for (int i = 0; i < n; i++)
			ids[i] = py_frame_id(R, &f[i], now);
	}
	h = (uint64_t)n;
	for (int i = 0; i < n; i++)
		h = mix(h, ids[i]);
	if (n) {
		struct interned *st = intern(&S->stackset, &S->scap, &S->nstacks, h, (uint64_t)n, ids, n, &fresh);
		if (fresh) {
			r.type = GS_REC_PYSTACK;
			r.time = now;
			r.arg = n;
			r.arg64 = st->id;
			meta_payload(R, &r, ids, (size_t)n * 4);
			memset(&r, 0, sizeof(r));
		}
		r.arg64 = st->id;
	}
	r.type = GS_REC_PYSAMPLE;
	r.pid = (uint32_t)S->pid;
	r.tid = tid;
	r.time = now;
	pend_add_on(R, -1, &r, NULL);
	S->samples++;
}

static void sample_stacks(struct recorder *R)
{
	int err;
	if (!R->stacks)
		return;
	gs_natsampler_drain(R->nat); /* the newest native copies, just before the Python reads */
	err = gs_pystacks_sample(R->stacks, sampler_read, &R->smp->pid, on_stack, R);
	if (err == -ESRCH) {
		gs_pystacks_free(R->stacks); /* the process is gone */
		R->stacks = NULL;
	} else if (err < 0) {
		gs_debug("stack sample failed: %s", strerror(-err));
	}
}

/* take_gil and drop_gil are static: a stripped CPython names them only through what
 * python.c found (call-target analysis), bounded by their .eh_frame entries. */
static void native_hints(struct recorder *R)
{
	const struct { uint64_t vaddr; const char *name; } fn[] = {
		{ R->py.img.take_gil_vaddr, "take_gil" },
		{ R->py.img.drop_gil_vaddr, "drop_gil" },
	};
	struct gs_elf *elf;
	if (gs_elf_open(R->py.img.path, &elf) < 0)
		return;
	for (size_t i = 0; i < GS_ARRAY_SIZE(fn); i++) {
		uint64_t start, end;
		if (fn[i].vaddr && gs_elf_function_bounds(elf, fn[i].vaddr, &start, &end) == 0 && start == fn[i].vaddr)
			gs_native_hint(gs_natsampler_native(R->nat), start + R->py.bias, end + R->py.bias, fn[i].name);
	}
	gs_elf_free(elf);
}

static void sampler_start(struct recorder *R)
{
	char why[512];
	if (!R->o->sample_hz)
		return;
	R->stacks = gs_pystacks_new(&R->py, why, sizeof(why));
	if (!R->stacks) {
		gs_info("no Python stacks: %s", why);
		return;
	}
	R->smp = gs_calloc(1, sizeof(*R->smp));
	R->smp->pid = R->py.pid;
	if (R->o->native) {
		R->nat = gs_natsampler_open(R->py.pid, R->ncpu, R->tp_switch, R->o->sample_hz,
					    R->o->native_stack ? R->o->native_stack : GS_NATSAMPLE_DEFAULT_STACK, why,
					    sizeof(why));
		if (!R->nat) {
			gs_warn("no native stacks: %s", why);
		} else {
			native_hints(R);
			meta(R, 0, "native", "1");
		}
	}
}

static void sampler_free(struct recorder *R)
{
	struct sampler *S = R->smp;
	if (S) {
		for (size_t i = 0; i < S->scap; i++)
			free(S->stackset[i].frames);
		free(S->stackset);
		free(S->frames);
		free(S);
	}
	R->smp = NULL;
	gs_natsampler_close(R->nat);
	R->nat = NULL;
	gs_pystacks_free(R->stacks);
	R->stacks = NULL;
}

/* ---- python setup ------------------------------------------------------------------------- */

static void python_meta(struct recorder *R)
{
	const struct gs_pyimage *img = &R->py.img;
	char build[192], mech[1024];
	snprintf(build, sizeof(build), "%s, %s%s, layout from %s%s", img->shared ? "shared libpython" : "static",
		 img->stripped ? "stripped" : "symbols", img->debug ? ", debug build" : "", img->layout_source,
		 img->layout_checked ? "" : " (unverified)");
	const char *drops = R->py.drop_request ? ", hardware watchpoint on gil_drop_request"
					       : "; forced drops not told apart in this version";
	if (R->use_inline)
		snprintf(mech, sizeof(mech),
			 "inline probes on take_gil and the %d stores to gil->locked (%d take, %d release; take_gil "
			 "found by %s)%s",
			 img->nsites, img->nacquire, img->nrelease, img->take_gil_how, drops);
	else if (R->use_watchpoint)
		snprintf(mech, sizeof(mech),
			 "hardware write watchpoints on gil->locked and gil_drop_request, uprobe on take_gil "
			 "(found by %s)",
			 img->take_gil_how);
	else
		snprintf(mech, sizeof(mech),
			 "uprobes after the %d stores to gil->locked (%d take, %d release) and on take_gil (found by "
			 "%s)%s",
			 img->nsites, img->nacquire, img->nrelease, img->take_gil_how, drops);
	meta(R, (uint32_t)R->py.pid, "python.version", img->version);
	meta(R, (uint32_t)R->py.pid, "python.path", img->path);
	meta(R, (uint32_t)R->py.pid, "python.build", build);
	meta(R, (uint32_t)R->py.pid, "python.build_id", img->build_id);
	meta(R, (uint32_t)R->py.pid, "mechanism", mech);
	meta(R, (uint32_t)R->py.pid, "python.layout", img->layout_source);
}

/* Defines the uprobes: take_gil, and after each store to gil->locked. 0, or -errno with why. */
static int define_uprobes(struct recorder *R, char *why, size_t whylen)
{
	int err;
	snprintf(R->group, sizeof(R->group), "gilscope_%d", (int)getpid());
	if (!R->uprobe_defined) {
		err = gs_uprobe_add(R->tracefs, R->group, "take_gil", R->py.img.path, R->py.img.take_gil_offset);
		if (err < 0) {
			snprintf(why, whylen, "cannot define the take_gil uprobe in %s/uprobe_events: %s%s", R->tracefs,
				 strerror(-err),
				 err == -EINVAL ? " (paths with blanks cannot be probed)" : "");
			return err;
		}
		R->uprobe_defined = 1;
	}
	R->tp_take_gil = gs_tracefs_event_id(R->tracefs, R->group, "take_gil");
	if (R->tp_take_gil < 0) {
		snprintf(why, whylen, "the take_gil uprobe has no event id: %s", strerror((int)-R->tp_take_gil));
		return (int)R->tp_take_gil;
	}
	if (!R->use_watchpoint && (R->py.img.nacquire == 0 || R->py.img.nrelease == 0)) {
		gs_warn("could not find every instruction that takes and releases the GIL in %s; using a hardware "
			"watchpoint instead (exact, but slow in virtual machines)",
			R->py.img.path);
		R->use_watchpoint = 1;
	}
	if (!R->use_watchpoint) {
		for (int i = 0; i < R->py.img.nsites; i++) {
			const struct gs_site *st = &R->py.img.sites[i];
			const char *ev = st->value ? "gil_take" : "gil_drop";
			err = gs_uprobe_add(R->tracefs, R->group, ev, R->py.img.path, st->offset);
			if (err < 0) {
				snprintf(why, whylen, "cannot define the %s uprobe at %.1024s:%#lx: %s", ev, R->py.img.path,
					 (unsigned long)st->offset, strerror(-err));
				return err;
			}
		}
		R->tp_acquire = gs_tracefs_event_id(R->tracefs, R->group, "gil_take");
		R->tp_release = gs_tracefs_event_id(R->tracefs, R->group, "gil_drop");
		if (R->tp_acquire < 0 || R->tp_release < 0) {
			snprintf(why, whylen, "the GIL store-site uprobes have no event id");
			return -ENOENT;
		}
	}
	return 0;
}

/* ---- launch ----------------------------------------------------------------------------- */

static uint64_t auxv_entry(pid_t pid)
{
	char path[64];
	uint64_t v[2];
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (read(fd, v, sizeof(v)) == sizeof(v)) {
		if (v[0] == 9 /* AT_ENTRY */) {
			close(fd);
			return v[1];
		}
		if (v[0] == 0)
			break;
	}
	close(fd);
	return 0;
}

/* Is the freshly exec'd image CPython, or does it load libpython? */
static int exec_may_be_python(pid_t pid)
{
	char exe[4096];
	struct gs_elf *e;
	uint64_t a, s;
	int yes;
	if (gs_proc_exe(pid, exe, sizeof(exe)) < 0 || gs_elf_open(exe, &e) < 0)
		return 0;
	yes = gs_elf_dynsym(e, "_PyRuntime", &a, &s) == 0 || gs_elf_symbol(e, "_PyRuntime", &a, &s) == 0 ||
	      gs_elf_needs(e, "libpython");
	gs_elf_free(e);
	return yes;
}

/* Locates CPython in pid and prepares the GIL probes (uprobes, or inline when allowed). */
static int python_locate(struct recorder *R, pid_t pid, int may_inline, char *why, size_t whylen)
{
	int err = gs_python_find(pid, &R->py, why, whylen);
	if (err < 0)
		return err;
	if (may_inline && R->use_inline) {
		const void *meta = NULL;
		for (int c = 0; c < R->ncpu && !meta; c++)
			if (R->ring_fd[c] >= 0)
				meta = R->rings[c].base;
		err = gs_inline_setup(&R->il, pid, &R->py, meta, &R->pending_sig, why, whylen);
		if (err == 0)
			return 0;
		gs_warn("inline GIL probes unavailable (%s); using uprobes", why);
		why[0] = '\0';
	}
	R->use_inline = 0;
	return define_uprobes(R, why, whylen);
}

static void set_up_python(struct recorder *R, pid_t pid)
{
	char why[1024] = "";
	int err;
	if (R->o->no_gil) {
		meta(R, (uint32_t)pid, "python.error", "GIL detection turned off (--no-gil-detect)");
		return;
	}
	err = python_locate(R, pid, 1, why, sizeof(why));
	if (err == 0)
		err = open_python_events(R, pid, why, sizeof(why));
	if (err < 0) {
		gs_warn("%s", why);
		gs_warn("recording thread states only (no GIL events)");
		meta(R, (uint32_t)pid, "python.error", why);
		return;
	}
	R->have_python = 1;
	qsort(R->ids, R->nids, sizeof(*R->ids), sort_ids_cmp);
	python_meta(R);
	sampler_start(R);
	gs_debug("CPython %s in %s: take_gil at file offset %#lx, _PyRuntime at %#lx", R->py.img.version,
		 R->py.img.path, (unsigned long)R->py.img.take_gil_offset, (unsigned long)R->py.runtime);
}

/* Adds every CPU's ring to pfd from index n; returns the new count. */
static int poll_rings(const struct recorder *R, struct pollfd *pfd, int n)
{
	for (int c = 0; c < R->ncpu; c++)
		if (R->ring_fd[c] >= 0) {
			pfd[n].fd = R->ring_fd[c];
			pfd[n++].events = POLLIN;
		}
	return n;
}

/* Reads the signals sent to gilscope and passes them on to the launched command, if any (a
 * terminal's Ctrl-C, sent by the kernel, already reached it); returns how many there were,
 * SIGCHLD aside. */
static int forward_signals(int sfd, pid_t child)
{
	struct signalfd_siginfo si;
	int n = 0;
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (child > 0 && si.ssi_code != SI_KERNEL)
			kill(child, (int)si.ssi_signo);
		n++;
	}
	return n;
}

/* One ptrace report from the followed command: returns 1 once it is handed over (detached
 * after the Python set-up) or has exited, 0 while it is still followed. */
struct follow {
	uint64_t bp_addr;
	long saved;
};

static int follow_report(struct recorder *R, pid_t child, int st, struct follow *f)
{
	int sig = 0;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		R->status = st;
		R->exited = 1;
		return 1;
	}
	if (!WIFSTOPPED(st))
		return 0;
	if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
		if (!exec_may_be_python(child)) {
			gs_proc_exe(child, R->last_exe, sizeof(R->last_exe));
		} else if ((f->bp_addr = auxv_entry(child)) != 0) {
			if (x86_bp_insert(child, f->bp_addr, &f->saved) < 0) {
				f->bp_addr = 0;
				set_up_python(R, child); /* best effort: libraries may be missing */
				ptrace(PTRACE_DETACH, child, NULL, NULL);
				return 1;
			}
		}
	} else if (st >> 16 == PTRACE_EVENT_STOP) {
		int s = WSTOPSIG(st);
		/* a group-stop (SIGSTOP and friends) stays stopped until continued; the stop that
		 * reports the continuation (SIGTRAP) must be resumed, not listened to */
		if (s == SIGSTOP || s == SIGTSTP || s == SIGTTIN || s == SIGTTOU)
			ptrace(PTRACE_LISTEN, child, NULL, NULL);
		else
			ptrace(PTRACE_CONT, child, NULL, NULL);
		return 0;
	} else if (WSTOPSIG(st) == SIGTRAP && f->bp_addr) {
		int hit = x86_bp_hit_and_remove(child, f->bp_addr, f->saved);
		if (hit == 1) {
			set_up_python(R, child);
			ptrace(PTRACE_DETACH, child, NULL, (void *)(long)R->pending_sig);
			return 1;
		}
		sig = SIGTRAP;
	} else {
		sig = WSTOPSIG(st); /* a signal for the child: deliver it */
	}
	ptrace(PTRACE_CONT, child, NULL, (void *)(long)sig);
	return 0;
}

/* Follows the traced child through exec()s until it runs CPython (set up, then detach) or exits.
 * A shell or a wrapper may run for long before it execs Python: meanwhile the scheduler rings
 * are drained and signals sent to gilscope are passed on to the command, as in the main loop. */
static int follow_child(struct recorder *R, pid_t child, int sfd)
{
	struct pollfd *pfd = gs_calloc((size_t)R->ncpu + 1, sizeof(*pfd));
	struct follow f = { 0 };
	int interrupts = 0, done = 0, ret = 0;

	while (!done) {
		int st, n = 0;
		pid_t w;

		while (!done && (w = waitpid(child, &st, __WALL | WNOHANG)) != 0) {
			if (w < 0) {
				if (errno == EINTR)
					continue;
				ret = -errno;
				done = 1;
				break;
			}
			done = follow_report(R, child, st, &f);
		}
		if (done)
			break;
		pfd[n].fd = sfd;
		pfd[n++].events = POLLIN;
		n = poll_rings(R, pfd, n);
		/* SIGCHLD (a ptrace stop or the exit) wakes the poll through the signalfd */
		poll(pfd, (nfds_t)n, 100);
		drain(R, 0);
		if (pfd[0].revents & POLLIN) {
			int k = forward_signals(sfd, child);
			if (interrupts < 3 && interrupts + k >= 3)
				gs_warn("third signal: the command still runs; stop it to end the recording");
			interrupts += k;
		}
	}
	free(pfd);
	return ret;
}

/* ---- attach -------------------------------------------------------------------------------- */

struct seized {
	pid_t *tids;
	char *state;
	size_t n, cap;
};

static int seized_has(const struct seized *s, pid_t t)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->tids[i] == t)
			return 1;
	return 0;
}

static void release_all(struct seized *s)
{
	for (size_t i = 0; i < s->n; i++)
		ptrace(PTRACE_DETACH, s->tids[i], NULL, NULL);
	free(s->tids);
	free(s->state);
	memset(s, 0, sizeof(*s));
}

/* The kernel.yama.ptrace_scope setting, or "" when Yama is not there. */
static void yama_note(char *buf, size_t len)
{
	char ys[16];
	long k = gs_read_file("/proc/sys/kernel/yama/ptrace_scope", ys, sizeof(ys));
	buf[0] = '\0';
	if (k <= 0)
		return;
	if (ys[k - 1] == '\n')
		ys[k - 1] = '\0';
	snprintf(buf, len, " (kernel.yama.ptrace_scope = %s)", ys);
}

/* May gilscope attach to pid? Opening /proc/PID/mem makes the kernel's ptrace attach check
 * (uids, capabilities, Yama) without touching the process, so a refusal leaves nothing behind:
 * no recording file, no uprobe, no stopped thread. 0, or -errno with why. */
static int attach_check(pid_t pid, char *why, size_t whylen)
{
	char path[64], yama[64], caps[2048];
	struct stat st;
	int fd, e, has_ptrace = 0;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = errno;
	if (e == ENOENT || e == ESRCH) {
		snprintf(why, whylen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	if (e != EACCES && e != EPERM) {
		snprintf(why, whylen, "cannot attach to process %d: %s", (int)pid, strerror(e));
		return -e;
	}
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		st.st_uid = (uid_t)-1;
	if (gs_read_file("/proc/self/status", caps, sizeof(caps)) > 0 && (p = strstr(caps, "CapEff:\t"))) {
		uint64_t v = strtoull(p + 8, NULL, 16);
		has_ptrace = (v >> 19) & 1; /* CAP_SYS_PTRACE */
	}
	yama_note(yama, sizeof(yama));
	snprintf(why, whylen,
		 "not permitted to attach to process %d (it runs as user %d; gilscope as user %d, %s CAP_SYS_PTRACE)%s: "
		 "run gilscope as root with CAP_SYS_PTRACE; nothing was done to the process",
		 (int)pid, (int)st.st_uid, (int)geteuid(), has_ptrace ? "with" : "without", yama);
	return -EPERM;
}

/* Stops every thread of pid; loops until no new thread appears. */
static int stop_all(pid_t pid, struct seized *s, char *why, size_t whylen)
{
	for (int round = 0; round < 100; round++) {
		pid_t *tids;
		int n = gs_task_list(pid, &tids), added = 0;
		if (n < 0) {
			snprintf(why, whylen, "cannot list the threads of process %d: %s", (int)pid, strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++) {
			int st;
			char state;
			if (seized_has(s, tids[i]))
				continue;
			state = gs_task_state(pid, tids[i]);
			if (ptrace(PTRACE_SEIZE, tids[i], NULL, NULL) < 0) {
				int e = errno;
				if (e == ESRCH)
					continue; /* exited meanwhile */
				free(tids);
				if (e == EPERM) {
					char yama[64];
					yama_note(yama, sizeof(yama));
					snprintf(why, whylen,
						 "not permitted to attach to process %d%s: run gilscope as root or with "
						 "CAP_SYS_PTRACE",
						 (int)pid, yama);
				} else {
					snprintf(why, whylen, "cannot attach to thread %d: %s", (int)tids[i], strerror(e));
				}
				return -e;
			}
			if (s->n == s->cap) {
				s->cap = s->cap ? s->cap * 2 : 64;
				s->tids = gs_realloc_array(s->tids, s->cap, sizeof(pid_t));
				s->state = gs_realloc_array(s->state, s->cap, 1);
			}
			s->tids[s->n] = tids[i];
			s->state[s->n] = state;
			s->n++;
			added++;
			ptrace(PTRACE_INTERRUPT, tids[i], NULL, NULL);
			while (waitpid(tids[i], &st, __WALL) < 0 && errno == EINTR)
				;
		}
		free(tids);
		if (!added)
			return 0;
	}
	snprintf(why, whylen, "process %d keeps creating threads faster than gilscope can attach", (int)pid);
	return -EAGAIN;
}

/* ---- main loop ----------------------------------------------------------------------------- */

static int make_signalfd(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGQUIT);
	sigprocmask(SIG_BLOCK, &set, old);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void loop(struct recorder *R, int sfd, int pidfd, pid_t child)
{
	struct pollfd *pfd = gs_calloc((size_t)R->ncpu + 4, sizeof(*pfd));
	uint64_t deadline = R->o->duration > 0 ? gs_now_ns() + (uint64_t)(R->o->duration * 1e9) : 0;
	uint64_t last_drain = 0;
	int stop = 0, interrupts = 0, tfd = -1;

	if (R->o->sample_hz) {
		struct itimerspec its = { 0 };
		uint64_t period = 1000000000ull / R->o->sample_hz;
		its.it_interval.tv_sec = (time_t)(period / 1000000000ull);
		its.it_interval.tv_nsec = (long)(period % 1000000000ull);
		its.it_value = its.it_interval;
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (tfd >= 0)
			timerfd_settime(tfd, 0, &its, NULL);
	}
	while (!stop) {
		int n = 0, ti = -1, ri = -1;
		pfd[n].fd = sfd;
		pfd[n++].events = POLLIN;
		if (tfd >= 0) {
			ti = n;
			pfd[n].fd = tfd;
			pfd[n++].events = POLLIN;
		}
		if (pidfd >= 0) {
			pfd[n].fd = pidfd;
			pfd[n++].events = POLLIN;
		}
		if (R->ready_fd >= 0) {
			ri = n;
			pfd[n].fd = R->ready_fd;
			pfd[n++].events = POLLIN;
		}
		n = poll_rings(R, pfd, n);
		poll(pfd, (nfds_t)n, 50);
		if (ri >= 0 && (pfd[ri].revents & (POLLIN | POLLHUP))) {
			/* --import: the modules are imported, the report counts from here */
			char b;
			if (read(R->ready_fd, &b, 1) == 1)
				meta(R, 0, "account_from", "now");
			close(R->ready_fd);
			R->ready_fd = -1;
		}
		if (ti >= 0 && (pfd[ti].revents & POLLIN)) {
			uint64_t ticks;
			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				sample_stacks(R);
		}
		/* drain at most every 10 ms when only the sampler woke us */
		if (ti < 0 || !(pfd[ti].revents & POLLIN) || gs_now_ns() - last_drain > 10000000ull) {
			drain(R, 0);
			last_drain = gs_now_ns();
		}
		if (pfd[0].revents & POLLIN) {
			int k = forward_signals(sfd, child);
			if (k && child <= 0) {
				stop = 1; /* attach: stop recording, leave the process alone */
			} else if (k && (interrupts += k) >= 3) {
				/* launch: the command decides, until it was asked three times */
				gs_warn("third signal: stopping the recording; the command keeps running");
				stop = 1;
			}
		}
		if (child > 0 && !R->exited) {
			int st;
			pid_t w = waitpid(child, &st, WNOHANG);
			if (w == child && (WIFEXITED(st) || WIFSIGNALED(st))) {
				R->status = st;
				R->exited = 1;
			}
		}
		if (child > 0 && R->exited)
			stop = 1;
		if (pidfd >= 0 && (pfd[ti >= 0 ? 2 : 1].revents & (POLLIN | POLLHUP))) {
			stop = 1;
			R->exited = 1;
		}
		if (deadline && gs_now_ns() >= deadline)
			stop = 1;
	}
	if (tfd >= 0)
		close(tfd);
	free(pfd);
}

/* ---- the command --------------------------------------------------------------------------- */

static int preflight(struct recorder *R, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int fd, err;

	if ((err = gs_tracefs_open(R->tracefs, sizeof(R->tracefs), why, whylen)) < 0) {
		if (geteuid() != 0) {
			/* name every privilege that is missing, not just the first */
			char par[32] = "?";
			long n = gs_read_file("/proc/sys/kernel/perf_event_paranoid", par, sizeof(par));
			size_t l = strlen(why);
			if (n > 0 && par[n - 1] == '\n')
				par[n - 1] = '\0';
			snprintf(why + l, whylen - l,
				 "; the scheduler tracepoints and hardware watchpoints also need root or CAP_PERFMON "
				 "(kernel.perf_event_paranoid = %s), and following the command needs CAP_SYS_PTRACE",
				 par);
		}
		return err;
	}
	R->tp_switch = gs_tracefs_event_id(R->tracefs, "sched", "sched_switch");
	R->tp_wakeup = gs_tracefs_event_id(R->tracefs, "sched", "sched_wakeup");
	if (R->tp_switch < 0 || R->tp_wakeup < 0) {
		snprintf(why, whylen, "cannot read the sched tracepoints' ids under %s/events/sched: %s", R->tracefs,
			 strerror((int)-(R->tp_switch < 0 ? R->tp_switch : R->tp_wakeup)));
		return -ENOENT;
	}
	if (gs_tracefs_field(R->tracefs, "sched", "sched_switch", "prev_state", &R->prev_state_off,
			     &R->prev_state_size) < 0 ||
	    gs_tracefs_field(R->tracefs, "sched", "sched_wakeup", "pid", &R->wake_pid_off, &R->wake_pid_size) < 0) {
		snprintf(why, whylen, "cannot parse the sched tracepoints' formats under %s/events/sched", R->tracefs);
		return -EINVAL;
	}
	base_attr(&a, PERF_TYPE_TRACEPOINT, (uint64_t)R->tp_switch, TP_SAMPLE);
	a.inherit = 0;
	fd = gs_perf_open(&a, 0, -1, -1, 0);
	if (fd < 0) {
		gs_perf_strerror(fd, "scheduler tracepoints", why, whylen);
		return fd;
	}
	/* kept open until the end: closing the last user of a tracepoint waits for an RCU grace
	 * period (tens of milliseconds), which would delay the command's start */
	push_fd(R, fd);
	err = gs_uprobe_cleanup_stale(R->tracefs);
	if (err > 0)
		gs_info("removed %d uprobe(s) left by an earlier gilscope run that was killed", err);
	return 0;
}

static void remove_uprobes(struct recorder *R)
{
	static const char *const events[] = { "take_gil", "gil_take", "gil_drop" };
	int failed = 0;
	for (size_t i = 0; i < GS_ARRAY_SIZE(events); i++) {
		int err = gs_uprobe_del(R->tracefs, R->group, events[i]);
		if (err < 0 && err != -ENOENT && !(i > 0 && R->use_watchpoint))
			failed = 1;
	}
	if (failed)
		gs_warn("could not remove the uprobes of group %s; the next gilscope run removes them", R->group);
	R->uprobe_defined = 0;
}

/* gilscope's own peak RSS: VmHWM of its memory map. (getrusage's ru_maxrss is not: Linux keeps
 * it across execve, so it starts at the RSS of whatever forked gilscope, e.g. a big Python.) */
static long peak_rss_kb(long fallback)
{
	char buf[4096];
	const char *p;
	uint64_t v;
	if (gs_read_file("/proc/self/status", buf, sizeof(buf)) > 0 && (p = strstr(buf, "VmHWM:"))) {
		char num[32];
		size_t n = 0;
		for (p += 6; *p == ' ' || *p == '\t'; p++)
			;
		while (p[n] >= '0' && p[n] <= '9' && n + 1 < sizeof(num)) {
			num[n] = p[n];
			n++;
		}
		num[n] = '\0';
		if (gs_parse_u64(num, &v) == 0)
			return (long)v;
	}
	return fallback;
}

static void finish(struct recorder *R)
{
	struct gs_rec r = { 0 };
	struct rusage ru;
	for (size_t i = 0; i < R->nfds; i++)
		ioctl(R->fds[i], PERF_EVENT_IOC_DISABLE, 0);
	if (R->smp) {
		char buf[64];
		uint64_t walks = 0, errors = 0;
		if (R->stacks)
			gs_pystacks_stats(R->stacks, &walks, &errors);
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)R->smp->samples);
		meta(R, 0, "stacks.samples", buf);
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)errors);
		meta(R, 0, "stacks.errors", buf);
		snprintf(buf, sizeof(buf), "%u", R->o->sample_hz);
		meta(R, 0, "stacks.rate_hz", buf);
	}
	if (R->nat) {
		struct gs_natsampler_stats ns;
		char buf[512];
		for (size_t i = 0; i < R->nfds; i++) /* stop the native events too */
			ioctl(R->fds[i], PERF_EVENT_IOC_DISABLE, 0);
		gs_natsampler_stats(R->nat, &ns);
		snprintf(buf, sizeof(buf),
			 "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			 (unsigned long long)R->nat_merged, (unsigned long long)R->nat_frozen,
			 (unsigned long long)R->nat_mismatch, (unsigned long long)R->nat_missing,
			 (unsigned long long)ns.switch_samples, (unsigned long long)ns.cpu_samples,
			 (unsigned long long)ns.lost, (unsigned long long)ns.unwinds, (unsigned long long)ns.truncated,
			 (unsigned long long)ns.unknown_symbols, (unsigned long long)R->nat_frozen_mismatch);
		/* merged frozen mismatched missing switch_copies cpu_copies lost unwinds truncated unknown
		 * frozen_mismatched */
		meta(R, 0, "native.stats", buf);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		char buf[32];
		uint64_t cpu = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
			       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cpu);
		meta(R, 0, "recorder.cpu_ns", buf);
		snprintf(buf, sizeof(buf), "%ld", peak_rss_kb(ru.ru_maxrss));
		meta(R, 0, "recorder.max_rss_kb", buf);
	}
	drain(R, 1);
	if (R->il.map && gs_inline_lost(&R->il)) {
		r.type = GS_REC_LOST;
		r.time = gs_now_ns();
		r.arg = -1;
		r.arg64 = gs_inline_lost(&R->il);
		R->lost += r.arg64;
		write_rec(R, &r, NULL);
		memset(&r, 0, sizeof(r));
	}
	gs_inline_close(&R->il);
	sampler_free(R);
	if (R->exited && R->o->pid <= 0) {
		r.type = GS_REC_PROC_EXIT;
		r.pid = (uint32_t)R->target;
		r.time = gs_now_ns();
		r.arg = R->status;
		write_rec(R, &r, NULL);
	}
	memset(&r, 0, sizeof(r));
	r.type = GS_REC_END;
	r.time = gs_now_ns();
	r.arg64 = R->lost;
	write_rec(R, &r, NULL);
	for (size_t i = 0; i < R->nfds; i++)
		close(R->fds[i]);
	for (int c = 0; c < R->ncpu; c++)
		if (R->ring_fd[c] >= 0)
			gs_ring_unmap(&R->rings[c]);
	if (R->uprobe_defined)
		remove_uprobes(R);
}

int gs_record(const struct gs_record_opts *o, struct gs_record_result *res)
{
	struct recorder R;
	char why[2048] = "";
	int sfd = -1, pidfd = -1, ret = 1, go[2] = { -1, -1 }, errp[2] = { -1, -1 }, ready_w = -1;
	sigset_t oldmask;
	pid_t child = -1;
	struct rlimit rl;

	memset(&R, 0, sizeof(R));
	memset(res, 0, sizeof(*res));
	R.o = o;
	R.use_watchpoint = o->gil_watchpoint;
	R.ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (R.ncpu < 1)
		R.ncpu = 1;
	R.rings = gs_calloc((size_t)R.ncpu, sizeof(*R.rings));
	R.ring_fd = gs_calloc((size_t)R.ncpu, sizeof(int));
	R.ring_last = gs_calloc((size_t)R.ncpu, sizeof(uint64_t));
	R.ring_read = gs_calloc((size_t)R.ncpu, sizeof(uint64_t));
	for (int c = 0; c < R.ncpu; c++)
		R.ring_fd[c] = -1;
	R.nqueues = R.ncpu + 2; /* per CPU, metadata, inline ring */
	R.ready_fd = -1;
	R.il.memfd = -1;
	R.use_inline = !o->gil_watchpoint && !o->no_inline;
	R.queues = gs_calloc((size_t)R.nqueues, sizeof(*R.queues));
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	if (preflight(&R, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		if (o->pid <= 0)
			gs_err("the command was not started");
		goto out;
	}
	if (o->pid > 0 && attach_check(o->pid, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		goto out;
	}
	R.start_ns = gs_now_ns();
	{
		int fd = gs_open_output(o->output, why, sizeof(why)), err;
		if (fd < 0 || (err = gs_recwriter_open_fd(fd, R.start_ns, &R.w)) < 0) {
			if (fd >= 0)
				snprintf(why, sizeof(why), "cannot write the recording %s: %s", o->output, strerror(-err));
			gs_err("%s", why);
			if (o->pid <= 0)
				gs_err("the command was not started");
			goto out;
		}
	}
	meta(&R, 0, "gilscope_version", GS_VERSION);
	meta(&R, 0, "clock", "CLOCK_MONOTONIC");
	sfd = make_signalfd(&oldmask);

	if (o->pid > 0) {
		/* ---- attach ---- */
		struct seized s = { 0 };
		char cmd[1024], buf[32];
		int err;
		long holder;
		R.target = o->pid;
		snprintf(buf, sizeof(buf), "%d", (int)o->pid);
		meta(&R, 0, "mode", "attach");
		meta(&R, 0, "target_pid", buf);
		{
			char path[64];
			long n;
			snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)o->pid);
			n = gs_read_file(path, cmd, sizeof(cmd));
			for (long i = 0; i + 1 < n; i++)
				if (cmd[i] == '\0')
					cmd[i] = ' ';
			if (n <= 0)
				snprintf(cmd, sizeof(cmd), "pid %d", (int)o->pid);
			meta(&R, 0, "command", cmd);
		}
		R.use_inline = 0; /* a running process is never patched: uprobes */
		err = python_locate(&R, o->pid, 0, why, sizeof(why));
		if (err < 0) {
			gs_warn("%s", why);
			gs_warn("recording thread states only (no GIL events)");
			meta(&R, (uint32_t)o->pid, "python.error", why);
		}
		if ((err = stop_all(o->pid, &s, why, sizeof(why))) < 0) {
			release_all(&s);
			gs_err("%s", why);
			goto out_close;
		}
		for (size_t i = 0; i < s.n && err >= 0; i++) {
			err = open_sched_events(&R, s.tids[i], why, sizeof(why));
			if (err >= 0 && R.tp_take_gil > 0)
				err = open_python_events(&R, s.tids[i], why, sizeof(why));
		}
		if (err < 0) {
			release_all(&s);
			gs_err("%s", why);
			goto out_close;
		}
		qsort(R.ids, R.nids, sizeof(*R.ids), sort_ids_cmp);
		R.have_python = R.tp_take_gil > 0;
		holder = R.have_python ? gs_python_gil_holder(&R.py) : 0;
		if (R.have_python) {
			python_meta(&R);
			sampler_start(&R);
			sample_stacks(&R); /* every thread's stack at the start, while all are stopped */
		}
		{
			uint64_t now = gs_now_ns();
			for (size_t i = 0; i < s.n; i++) {
				struct gs_rec r = { .type = GS_REC_THREAD, .pid = (uint32_t)o->pid,
						    .tid = (uint32_t)s.tids[i], .time = now, .arg = s.state[i] };
				char comm[16] = "";
				if (holder > 0 && holder == s.tids[i])
					r.arg64 |= GS_THREAD_HOLDS_GIL;
				if (s.tids[i] == o->pid)
					r.arg64 |= GS_THREAD_MAIN;
				pend_add(&R, &r, NULL);
				gs_task_comm(o->pid, s.tids[i], comm, sizeof(comm));
				r.type = GS_REC_COMM;
				r.arg = 0;
				r.arg64 = 0;
				pend_add(&R, &r, comm);
			}
		}
		release_all(&s);
		pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
		gs_info("recording process %d%s; Ctrl-C to stop", (int)o->pid,
			o->duration > 0 ? " for the given duration" : "");
		loop(&R, sfd, pidfd, -1);
		finish(&R);
		ret = 0;
	} else {
		/* ---- launch ---- */
		char cmd[1024];
		if (o->command_text)
			snprintf(cmd, sizeof(cmd), "%s", o->command_text);
		else
			gs_argv_join(cmd, sizeof(cmd), o->argv);
		meta(&R, 0, "mode", "launch");
		meta(&R, 0, "command", cmd);
		if (o->imports) {
			int rp[2];
			if (pipe2(rp, O_CLOEXEC) == 0) {
				R.ready_fd = rp[0];
				ready_w = rp[1];
			}
		}
		if (pipe2(go, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
			gs_err("pipe: %s", strerror(errno));
			goto out_close;
		}
		child = fork();
		if (child < 0) {
			gs_err("fork: %s", strerror(errno));
			goto out_close;
		}
		if (child == 0) {
			char c;
			int e;
			sigprocmask(SIG_SETMASK, &oldmask, NULL);
			close(go[1]);
			close(errp[0]);
			if (ready_w >= 0) {
				/* the bootstrap reports the end of its imports here */
				char fdbuf[16];
				int fd = dup(ready_w); /* without close-on-exec */
				snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
				setenv("GILSCOPE_READY_FD", fdbuf, 1);
			}
			if (read(go[0], &c, 1) != 1)
				_exit(127);
			execvp(o->argv[0], o->argv);
			e = errno;
			if (write(errp[1], &e, sizeof(e)) < 0)
				_exit(127);
			_exit(127);
		}
		close(go[0]);
		close(errp[1]);
		go[0] = errp[1] = -1;
		if (ready_w >= 0) {
			close(ready_w);
			ready_w = -1;
		}
		R.target = child;
		{
			char buf[32];
			snprintf(buf, sizeof(buf), "%d", (int)child);
			meta(&R, 0, "target_pid", buf);
		}
		if (ptrace(PTRACE_SEIZE, child, NULL, (void *)(long)PTRACE_O_TRACEEXEC) < 0) {
			gs_err("cannot trace the command (ptrace: %s): run gilscope as root or with CAP_SYS_PTRACE",
			       strerror(errno));
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			goto out_close;
		}
		if (open_sched_events(&R, child, why, sizeof(why)) < 0) {
			gs_err("%s; the command was not started", why);
			kill(child, SIGKILL);
			waitpid(child, NULL, __WALL);
			goto out_close;
		}
		qsort(R.ids, R.nids, sizeof(*R.ids), sort_ids_cmp);
		if (write(go[1], "g", 1) != 1) {
			gs_err("cannot start the command");
			goto out_close;
		}
		close(go[1]);
		go[1] = -1;
		follow_child(&R, child, sfd);
		{
			int e;
			if (read(errp[0], &e, sizeof(e)) == sizeof(e)) {
				gs_err("cannot run %s: %s", o->argv[0], strerror(e));
				R.exited = 1;
			}
		}
		if (!R.exited)
			loop(&R, sfd, -1, child);
		if (!R.have_python && R.last_exe[0])
			gs_info("%s is not a CPython interpreter (and did not exec one): recorded thread states only",
				R.last_exe);
		finish(&R);
		if (WIFEXITED(R.status))
			ret = WEXITSTATUS(R.status);
		else if (WIFSIGNALED(R.status))
			ret = 128 + WTERMSIG(R.status);
	}
out_close:
	if (R.uprobe_defined) {
		for (size_t i = 0; i < R.nfds; i++) /* uprobes in use cannot be removed */
			close(R.fds[i]);
		R.nfds = 0;
		remove_uprobes(&R);
	}
	if (R.w) {
		int err = gs_recwriter_close(R.w);
		if (err < 0 && !R.write_failed)
			gs_err("writing %s: %s", o->output, strerror(-err));
	}
	if (R.w && (ret == 0 || (R.exited && ret != 127))) {
		res->recorded = 1;
		res->have_python = R.have_python;
		res->corrupt = R.corrupt;
		res->throttled = R.throttled;
	}
	R.w = NULL;
out:
	if (sfd >= 0)
		close(sfd);
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	if (R.ready_fd >= 0)
		close(R.ready_fd);
	if (ready_w >= 0)
		close(ready_w);
	free(R.rings);
	free(R.ring_fd);
	free(R.ring_last);
	free(R.ring_read);
	free(R.fds);
	free(R.ids);
	for (int i = 0; i < R.nqueues; i++) {
		for (size_t j = 0; j < R.queues[i].n; j++)
			free(R.queues[i].v[j].payload);
		free(R.queues[i].v);
	}
	free(R.queues);
	return ret;
}
