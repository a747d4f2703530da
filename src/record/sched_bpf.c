/* sched_bpf.c - scheduler events from a BPF program into one ring buffer (see sched_bpf.h). */
#define _GNU_SOURCE
#include <linux/types.h>

#include "record/sched_bpf.h"
#include "base/procfs.h"
#include "base/util.h"
#include "bpf/sched_event.h"
#include "probe/inject.h"
#include "probe/tracefs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

_Static_assert(offsetof(struct gs_bpf_event, comm) == GS_BPF_EVENT_SHORT, "the short record ends before comm");

uint64_t gs_sched_bpf_state(int preempt, uint32_t state)
{
	/* the kernel's __trace_sched_switch_state() and __task_state_index() */
	uint32_t s = state & 0x7f; /* TASK_REPORT */
	if (preempt)
		return 0x100; /* TASK_REPORT_MAX */
	if ((state & 0x402) == 0x402)
		s = 0x80; /* TASK_IDLE: TASK_REPORT_IDLE */
	if (state == 0x1000)
		s = 2; /* TASK_RTLOCK_WAIT: TASK_UNINTERRUPTIBLE */
	return s ? 1u << (31 - __builtin_clz(s)) : 0;
}

int gs_sched_bpf_decode(const void *data, size_t size, struct gs_rec *r, char name[16])
{
	struct gs_bpf_event e;
	memset(r, 0, sizeof(*r));
	name[0] = '\0';
	if (size < GS_BPF_EVENT_SHORT)
		return -1;
	memset(&e, 0, sizeof(e));
	memcpy(&e, data, size < sizeof(e) ? size : sizeof(e));
	r->time = e.time;
	r->pid = e.pid;
	r->tid = e.tid;
	switch (e.type) {
	case GS_BPF_SWITCH_OUT:
		r->type = GS_REC_SWITCH_OUT;
		r->arg64 = gs_sched_bpf_state(e.arg, (uint32_t)e.arg64);
		return 1;
	case GS_BPF_SWITCH_IN:
		r->type = GS_REC_SWITCH_IN;
		return 1;
	case GS_BPF_WAKEUP:
		r->type = GS_REC_WAKEUP;
		r->pid = 0;
		r->arg = e.arg;
		return 1;
	case GS_BPF_FORK:
		r->type = GS_REC_FORK;
		r->arg = e.arg;
		r->arg64 = e.arg64;
		return 1;
	case GS_BPF_EXIT:
		r->type = GS_REC_EXIT;
		return 1;
	case GS_BPF_PROC_EXIT:
		r->type = GS_REC_PROC_EXIT;
		r->tid = 0;
		r->arg = e.arg;
		return 1;
	case GS_BPF_COMM:
		if (size < sizeof(e))
			return -1;
		r->type = GS_REC_COMM;
		r->arg = e.arg ? 1 : 0;
		r->arg64 = e.arg == 2 ? GS_SCHED_EXEC_STOPPED : e.arg == 3 ? GS_SCHED_EXEC_RUNNING : 0;
		memcpy(name, e.comm, 15);
		name[15] = '\0';
		return 1;
	default:
		return -1;
	}
}

#ifdef GS_HAVE_BPF
#include "sched.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct bpf_source {
	struct gs_sched_source src; /* first: the interface */
	struct gs_sched_bpf *skel;
	struct ring_buffer *rb;
	gs_sched_deliver_fn fn; /* while draining */
	void *arg;
	uint64_t *percpu; /* the drop counters read back, one per possible CPU */
	int ncpu;
	uint64_t dropped;        /* drops delivered so far */
	pid_t deadman;           /* continues the processes stopped at their exec if gilscope dies (0: none) */
	struct deadman_page *dm; /* shared with the deadman */
};

static char libbpf_last[256]; /* libbpf's last warning: the detail of a refusal */

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[sizeof(libbpf_last)];
	size_t n;
	if (gs_verbose >= 2)
		return vfprintf(stderr, fmt, ap);
	if (level != LIBBPF_WARN)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
		line[--n] = '\0';
	if (n)
		memcpy(libbpf_last, line, n + 1);
	return 0;
}

static int on_sample(void *ctx, void *data, size_t size)
{
	struct bpf_source *s = ctx;
	struct gs_rec r;
	char name[16];
	if (gs_sched_bpf_decode(data, size, &r, name) > 0)
		s->fn(&r, r.type == GS_REC_COMM ? name : NULL, s->arg);
	return 0;
}

static void bpf_drain(struct gs_sched_source *src, gs_sched_deliver_fn fn, void *arg)
{
	struct bpf_source *s = (struct bpf_source *)src;
	uint32_t zero = 0;
	uint64_t total = 0;
	s->fn = fn;
	s->arg = arg;
	ring_buffer__consume(s->rb);
	if (bpf_map__lookup_elem(s->skel->maps.drops, &zero, sizeof(zero), s->percpu,
				 sizeof(uint64_t) * (size_t)s->ncpu, 0) < 0)
		return;
	for (int i = 0; i < s->ncpu; i++)
		total += s->percpu[i];
	if (total > s->dropped) {
		struct gs_rec r = { .type = GS_REC_LOST, .time = gs_now_ns(), .arg = -1, .arg64 = total - s->dropped };
		s->dropped = total;
		fn(&r, NULL, arg);
	}
}

static int bpf_follow(struct gs_sched_source *src, pid_t tid, char *why, size_t whylen)
{
	struct bpf_source *s = (struct bpf_source *)src;
	uint64_t v;
	uint32_t tgid;
	uint8_t one = 1;
	int err;
	if (gs_proc_status_u64(tid, "Tgid", 10, &v) < 0 || v == 0 || v > UINT32_MAX) {
		snprintf(why, whylen, "cannot read the process of thread %d (/proc/%d/status): it may have exited",
			 (int)tid, (int)tid);
		return -ESRCH;
	}
	tgid = (uint32_t)v;
	err = bpf_map__update_elem(s->skel->maps.followed, &tgid, sizeof(tgid), &one, sizeof(one), BPF_ANY);
	if (err < 0)
		snprintf(why, whylen, "cannot follow process %u in the BPF scheduler program's map: %s", tgid,
			 strerror(-err));
	return err < 0 ? err : 0;
}

/* What gilscope and its deadman share: the process being let go (its entry gone from the map),
 * the breakpoint planted in a stopped one (probe/inject.h). */
struct deadman_page {
	volatile pid_t resuming;
	struct gs_inject_bp bp;
};

/* The breakpoint's byte written back (the process is stopped: its exec's stop is in effect again
 * once its tracer is gone). Only system calls. */
static void deadman_unplant(const struct gs_inject_bp *bp)
{
	char path[32] = "/proc/", digits[12];
	size_t n = 0, o = 6;
	uint8_t byte = bp->byte;
	int fd;
	for (uint32_t v = (uint32_t)bp->pid; v && n < sizeof(digits); v /= 10)
		digits[n++] = (char)('0' + v % 10);
	while (n)
		path[o++] = digits[--n];
	memcpy(path + o, "/mem", 5);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) >= 0) {
		ssize_t w = pwrite(fd, &byte, 1, (off_t)bp->addr); /* not written: it dies of SIGTRAP, as before */
		(void)w;
		close(fd);
	}
}

/* The deadman's life: a parent-death signal, then SIGCONT to every process the `stopped` map
 * (descriptor fd) lists, and to the one gilscope was letting go (dm->resuming), a breakpoint left
 * in one taken out first. Only system calls: it runs in a fork of a process that may have threads. */
static void deadman_run(int fd, pid_t parent, struct deadman_page *dm)
{
	sigset_t usr1;
	uint32_t key, prev;
	int have = 0, null;
	prctl(PR_SET_PDEATHSIG, SIGUSR1);
	prctl(PR_SET_NAME, "gilscope-deadm");
	setsid(); /* no terminal's signals */
	if (dup2(fd, 3) == 3)
		syscall(SYS_close_range, 4u, ~0u, 0u); /* not the BPF links: the programs go with gilscope */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && null >= 0; i++)
		dup2(null, i);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);  /* every signal is blocked (the parent's mask at fork): SIGKILL ends it */
	while (getppid() == parent) /* a SIGUSR1 from anyone else is not gilscope's death */
		sigwaitinfo(&usr1, NULL);
	if (dm->bp.pid > 0)
		deadman_unplant(&dm->bp);
	if (dm->resuming > 0)
		kill(dm->resuming, SIGCONT);
	while (bpf_map_get_next_key(3, have ? &prev : NULL, &key) == 0) {
		kill((pid_t)key, SIGCONT);
		prev = key;
		have = 1;
	}
	_exit(0);
}

static int bpf_stop_at_exec(struct gs_sched_source *src, int on)
{
	struct bpf_source *s = (struct bpf_source *)src;
	if (!s->skel->bss)
		return -EOPNOTSUPP; /* a kernel without mmap-able global data */
	if (on && !s->deadman) {
		sigset_t all, old;
		pid_t parent = getpid();
		void *page = mmap(NULL, sizeof(*s->dm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			return -ENOMEM;
		s->dm = page;
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, &old);
		s->deadman = fork();
		if (s->deadman == 0)
			deadman_run(bpf_map__fd(s->skel->maps.stopped), parent, s->dm);
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (s->deadman < 0) {
			s->deadman = 0;
			return -EAGAIN; /* no stops without the deadman */
		}
		gs_inject_bp_note(&s->dm->bp);
	}
	s->skel->bss->stop_exec = on ? 1 : 0;
	return 0;
}

static void bpf_exec_resume(struct gs_sched_source *src, pid_t pid, int cont)
{
	struct bpf_source *s = (struct bpf_source *)src;
	uint32_t key = (uint32_t)pid;
	/* the entry goes first (a process stopped again after the SIGCONT is noted anew), and only a
	 * process still noted gets it: one that exited lost its entry (its pid may be another's now).
	 * Between the two the deadman knows it from dm->resuming. */
	if (s->dm && cont)
		s->dm->resuming = pid;
	if (bpf_map__delete_elem(s->skel->maps.stopped, &key, sizeof(key), 0) == 0 && cont)
		kill(pid, SIGCONT);
	if (s->dm)
		s->dm->resuming = 0;
}

static void bpf_exec_plain(struct gs_sched_source *src, uint64_t dev, uint64_t ino)
{
	struct bpf_source *s = (struct bpf_source *)src;
	/* the kernel's dev_t (MKDEV: major << 20 | minor), as the program reads it from the inode */
	uint64_t key[2] = { (uint64_t)major((dev_t)dev) << 20 | minor((dev_t)dev), ino };
	uint8_t one = 1;
	bpf_map__update_elem(s->skel->maps.plain_exes, key, sizeof(key), &one, sizeof(one), BPF_NOEXIST);
}

static void bpf_free(struct gs_sched_source *src)
{
	struct bpf_source *s = (struct bpf_source *)src;
	if (s->deadman > 0) {
		uint32_t key;
		s->skel->bss->stop_exec = 0;
		/* none should be left: any that is goes on now, as the deadman would */
		for (int n = 0; n <= GS_BPF_MAX_STOPPED &&
				bpf_map__get_next_key(s->skel->maps.stopped, NULL, &key, sizeof(key)) == 0;
		     n++)
			bpf_exec_resume(src, (pid_t)key, 1);
		kill(s->deadman, SIGKILL);
		while (waitpid(s->deadman, NULL, 0) < 0 && errno == EINTR)
			;
		gs_inject_bp_note(NULL);
		munmap(s->dm, sizeof(*s->dm));
	}
	ring_buffer__free(s->rb);
	gs_sched_bpf__destroy(s->skel);
	free(s->percpu);
	free(s);
}

static uint32_t ring_size(size_t bytes)
{
	uint32_t n = 1u << 16;
	while (n < bytes && n < (1u << 30))
		n <<= 1;
	return n;
}

/* The sentence for a load or attach refused with err (negative). */
static void refused(const char *step, int err, char *why, size_t whylen)
{
	const char *hint = err == -EPERM || err == -EACCES ? " (BPF needs root, or CAP_BPF and CAP_PERFMON)" : "";
	snprintf(why, whylen, "the kernel refused to %s the BPF scheduler program: %s%s%s%s", step, strerror(-err),
		 hint, libbpf_last[0] ? "; libbpf: " : "", libbpf_last);
}

/* Opens, sizes, loads and attaches the program, and its ring reader. 0, or -1 with why. */
static int bpf_load(struct bpf_source *s, size_t ring_bytes, unsigned wakeup_bytes, char *why, size_t whylen)
{
	int err;
	libbpf_last[0] = '\0';
	libbpf_set_print(libbpf_log);
	s->skel = gs_sched_bpf__open();
	if (!s->skel) {
		refused("open", -errno, why, whylen);
		return -1;
	}
	bpf_map__set_max_entries(s->skel->maps.events, ring_size(ring_bytes));
	s->skel->rodata->wakeup_bytes = wakeup_bytes;
	if ((err = gs_sched_bpf__load(s->skel)) < 0) {
		refused("load", err, why, whylen);
		return -1;
	}
	if ((err = gs_sched_bpf__attach(s->skel)) < 0) {
		refused("attach", err, why, whylen);
		return -1;
	}
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), on_sample, s, NULL);
	if (!s->rb) {
		snprintf(why, whylen, "cannot map the BPF scheduler program's ring buffer: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct gs_sched_source *gs_sched_bpf_new(const char *tracefs, size_t ring_bytes, unsigned wakeup_bytes, char *why,
					 size_t whylen)
{
	struct bpf_source *s = gs_calloc(1, sizeof(*s));
	s->src.name = "bpf";
	s->src.fd = -1;
	s->src.follow = bpf_follow;
	s->src.free = bpf_free;
	s->src.drain = bpf_drain;
	s->src.stop_at_exec = bpf_stop_at_exec;
	s->src.exec_resume = bpf_exec_resume;
	s->src.exec_plain = bpf_exec_plain;
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(why, whylen, "the kernel has no BTF (/sys/kernel/btf/vmlinux: %s)", strerror(errno));
		goto fail;
	}
	/* the native sampler opens the tracepoint itself */
	s->src.tp_switch = gs_tracefs_event_id(tracefs, "sched", "sched_switch");
	if (s->src.tp_switch < 0) {
		snprintf(why, whylen, "cannot read the sched:sched_switch tracepoint's id under %s/events/sched: %s",
			 tracefs, strerror((int)-s->src.tp_switch));
		goto fail;
	}
	s->ncpu = libbpf_num_possible_cpus();
	if (s->ncpu <= 0) {
		snprintf(why, whylen, "cannot count the possible CPUs (/sys/devices/system/cpu/possible): %s",
			 strerror(-s->ncpu));
		goto fail;
	}
	s->percpu = gs_calloc((size_t)s->ncpu, sizeof(uint64_t));
	if (bpf_load(s, ring_bytes, wakeup_bytes, why, whylen) < 0)
		goto fail;
	s->src.fd = ring_buffer__epoll_fd(s->rb);
	return &s->src;
fail:
	ring_buffer__free(s->rb);
	gs_sched_bpf__destroy(s->skel);
	free(s->percpu);
	free(s);
	return NULL;
}

#else /* built without BPF */

struct gs_sched_source *gs_sched_bpf_new(const char *tracefs, size_t ring_bytes, unsigned wakeup_bytes, char *why,
					 size_t whylen)
{
	(void)tracefs;
	(void)ring_bytes;
	(void)wakeup_bytes;
	snprintf(why, whylen, "this gilscope was built without BPF (clang, bpftool, libbpf-dev or kernel BTF missing)");
	return NULL;
}

#endif
