/* inject.c - seize a running process, run system calls in it, let it go as it was (see inject.h). */
#define _GNU_SOURCE
#include "probe/inject.h"
#include "base/procfs.h"
#include "base/util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int gs_range_find(const struct gs_range *r, size_t n, uint64_t pc, int from_start)
{
	for (size_t i = 0; i < n; i++)
		if (pc < r[i].hi && (pc > r[i].lo || (from_start && pc == r[i].lo)))
			return (int)i;
	return -1;
}

void gs_inject_regs(const struct user_regs_struct *saved, uint64_t scratch, long nr, const uint64_t args[6],
		    struct user_regs_struct *out)
{
	*out = *saved;
	out->rip = scratch;
	out->rax = (unsigned long long)nr;
	out->orig_rax = (unsigned long long)-1;
	out->rdi = args[0];
	out->rsi = args[1];
	out->rdx = args[2];
	out->r10 = args[3];
	out->r8 = args[4];
	out->r9 = args[5];
}

static struct gs_thread *find_thread(struct gs_threads *ts, pid_t tid)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i].tid == tid)
			return &ts->t[i];
	return NULL;
}

static void drop_thread(struct gs_threads *ts, struct gs_thread *t)
{
	size_t i = (size_t)(t - ts->t);
	memmove(&ts->t[i], &ts->t[i + 1], (ts->n - i - 1) * sizeof(*t));
	ts->n--;
}

static void keep_signal(struct gs_thread *t, int sig)
{
	if (t->nsigs < (int)GS_ARRAY_SIZE(t->sigs))
		t->sigs[t->nsigs++] = sig;
}

/* Queues again the signals t met during an injected call (held back then: its handler must not
 * run on the stub's registers), now that its own are back: the kernel delivers them when it runs. */
static void requeue_signals(struct gs_threads *ts, struct gs_thread *t)
{
	for (int k = 0; k < t->nsigs; k++)
		syscall(SYS_tgkill, ts->pid, t->tid, t->sigs[k]);
	t->nsigs = 0;
}

/* Waits for t's next stop. 0 at a stop (*st its status), -ESRCH when it is gone (dropped
 * from the set: t is no longer valid). */
static int wait_stop(struct gs_threads *ts, struct gs_thread *t, int *st)
{
	pid_t tid = t->tid;
	while (waitpid(tid, st, __WALL) < 0)
		if (errno != EINTR) {
			drop_thread(ts, t);
			return -ESRCH;
		}
	if (!WIFSTOPPED(*st)) {
		drop_thread(ts, t);
		return -ESRCH;
	}
	return 0;
}

/* Resumes t for pause_us and stops it again. A signal that reaches it meanwhile is delivered
 * there and then (its handler's frame is on the stack, where gs_threads_settle looks), never held
 * back by gilscope: a kill of gilscope loses none. 0, -ESRCH (t gone and dropped), or -errno. */
static int run_until_stop(struct gs_threads *ts, struct gs_thread *t, long pause_us)
{
	struct timespec d = { 0, pause_us * 1000 };
	int st, err, sig = 0;
	for (int guard = 0; guard < 1000; guard++) {
		if (ptrace(PTRACE_CONT, t->tid, NULL, (void *)(long)sig) < 0)
			return errno == ESRCH ? (drop_thread(ts, t), -ESRCH) : -errno;
		if (guard == 0) {
			nanosleep(&d, NULL);
			ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
		}
		if ((err = wait_stop(ts, t, &st)) < 0)
			return err;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0; /* our interrupt (or a group stop: stopped either way) */
		sig = (st >> 16) == 0 ? WSTOPSIG(st) : 0;
	}
	return -EAGAIN;
}

/* Seizes and interrupts one thread. 0, 1 when it exited meanwhile, or -errno with why. */
static int seize_one(struct gs_threads *ts, pid_t tid, char *why, size_t whylen)
{
	struct gs_thread t = { .tid = tid, .state = gs_task_state(ts->pid, tid) };
	int st;
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
		int e = errno;
		if (e == ESRCH)
			return 1;
		snprintf(why, whylen, "cannot attach to thread %d of process %d: %s", (int)tid, (int)ts->pid,
			 strerror(e));
		return -e;
	}
	ptrace(PTRACE_INTERRUPT, tid, NULL, NULL);
	for (int guard = 0;; guard++) {
		while (waitpid(tid, &st, __WALL) < 0)
			if (errno != EINTR)
				return 1;
		if (!WIFSTOPPED(st))
			return 1;
		if ((st >> 16) != 0 || guard == 1000)
			break; /* the interrupt's stop (a group stop is one too) */
		/* a signal came first: delivered now, the interrupt's stop follows */
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(st)) < 0)
			return 1;
	}
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 64;
		ts->t = gs_realloc_array(ts->t, ts->cap, sizeof(*ts->t));
	}
	ts->t[ts->n++] = t;
	return 0;
}

int gs_threads_seize(struct gs_threads *ts, pid_t pid, char *why, size_t whylen)
{
	ts->pid = pid;
	for (int round = 0; round < 100; round++) {
		pid_t *tids;
		int n = gs_task_list(pid, &tids), added = 0, err = 0;
		if (n < 0) {
			snprintf(why, whylen, "cannot list the threads of process %d: %s", (int)pid, strerror(-n));
			return n;
		}
		for (int i = 0; i < n && err >= 0; i++) {
			if (find_thread(ts, tids[i]))
				continue;
			err = seize_one(ts, tids[i], why, whylen);
			added += err == 0;
		}
		free(tids);
		if (err < 0)
			return err;
		if (!added)
			return 0;
	}
	snprintf(why, whylen, "process %d keeps creating threads faster than gilscope can attach", (int)pid);
	return -EAGAIN;
}

#define STACK_SCAN_MAX (8u << 20)

struct stack_map {
	uint64_t sp, end;
};

static int stack_map_cb(const struct gs_map *m, void *arg)
{
	struct stack_map *sm = arg;
	if (sm->sp < m->start || sm->sp >= m->end)
		return 0;
	sm->end = m->end;
	return 1;
}

/* Does a word of the stack above sp (to the end of its mapping, STACK_SCAN_MAX at most) point
 * inside r[0..n) (gs_range_find)? A program counter saved in a signal frame of a handler that
 * runs, or a return address: the thread must not come back into bytes that change. 1 or 0 (a
 * stack that cannot be read counts as 0: the live check stands alone then). */
static int stack_points_inside(pid_t pid, uint64_t sp, const struct gs_range *r, size_t n, int from_start)
{
	struct stack_map sm = { .sp = sp & ~7ull };
	static uint64_t buf[8192];
	uint64_t at;
	char path[64];
	int fd, hit = 0;

	if (gs_maps_foreach(pid, stack_map_cb, &sm) != 1)
		return 0;
	if (sm.end - sm.sp > STACK_SCAN_MAX)
		sm.end = sm.sp + STACK_SCAN_MAX;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	for (at = sm.sp; at < sm.end && !hit;) {
		size_t len = sm.end - at < sizeof(buf) ? (size_t)(sm.end - at) : sizeof(buf);
		ssize_t got = pread(fd, buf, len, (off_t)at);
		if (got <= 0)
			break;
		for (size_t i = 0; i < (size_t)got / 8 && !hit; i++)
			hit = gs_range_find(r, n, buf[i], from_start) >= 0;
		at += (uint64_t)got;
	}
	close(fd);
	return hit;
}

/* One pass: runs for a moment each held thread inside the ranges (its program counter, or its
 * stack: see stack_points_inside). How many were inside, or -errno. */
static int settle_pass(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, long pause_us)
{
	int inside = 0;
	for (size_t i = 0; i < ts->n;) {
		struct gs_thread *t = &ts->t[i];
		struct user_regs_struct regs;
		int err;
		if (ptrace(PTRACE_GETREGS, t->tid, NULL, &regs) < 0 ||
		    (gs_range_find(r, n, regs.rip, from_start) < 0 &&
		     !stack_points_inside(ts->pid, regs.rsp, r, n, from_start))) {
			i++;
			continue;
		}
		inside++;
		err = run_until_stop(ts, t, pause_us);
		if (err == -ESRCH)
			continue; /* dropped: ts->t[i] is the next one */
		if (err < 0)
			return err;
		i++;
	}
	return inside;
}

int gs_threads_settle(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, char *why,
		      size_t whylen)
{
	for (int tries = 0; tries < 200; tries++) {
		int inside = settle_pass(ts, r, n, from_start, 100 + 50 * tries);
		int err;
		if (inside < 0) {
			snprintf(why, whylen, "cannot move the threads of process %d out of the patched code: %s",
				 (int)ts->pid, strerror(-inside));
			return inside;
		}
		/* a thread that ran may have started another one */
		if ((err = gs_threads_seize(ts, ts->pid, why, whylen)) < 0)
			return err;
		if (!inside && settle_pass(ts, r, n, from_start, 100) == 0)
			return 0;
	}
	snprintf(why, whylen, "a thread of process %d stays inside the code to patch", (int)ts->pid);
	return -EBUSY;
}

/* Where a process stopped as its exec completed stands: its dynamic loader's entry point (AT_BASE
 * plus the loader's e_entry, read from its ELF header mapped there), or its own (AT_ENTRY) when it
 * has no loader. 0 when it cannot be read. */
static uint64_t exec_start(pid_t pid)
{
	uint64_t base = gs_proc_auxv(pid, 7 /* AT_BASE */), e_entry;
	if (!base)
		return gs_proc_auxv(pid, 9 /* AT_ENTRY */);
	if (gs_mem_read(pid, base + 24 /* e_entry */, &e_entry, 8) < 0)
		return 0;
	return base + e_entry;
}

/* Waits for t's next stop for at most until (CLOCK_MONOTONIC ns), then interrupts it: *late set. */
static int wait_stop_until(struct gs_threads *ts, struct gs_thread *t, int *st, uint64_t until, int *late)
{
	struct timespec d = { 0, 200000 };
	pid_t r;
	while ((r = waitpid(t->tid, st, __WALL | WNOHANG)) == 0 && gs_now_ns() < until)
		nanosleep(&d, NULL);
	if (r == 0) {
		*late = 1;
		ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
		return wait_stop(ts, t, st);
	}
	if (r < 0 || !WIFSTOPPED(*st)) {
		drop_thread(ts, t);
		return -ESRCH;
	}
	return 0;
}

/* What a signal-delivery stop of sig (at run_to) becomes: the signal to deliver (0: none). The
 * exec's own SIGSTOP (sent by the kernel for gilscope's BPF program) is dropped; a stop signal of
 * anyone else is held back and said in *stop_sig (the process is left stopped after its set-up),
 * or dropped when the process ignores it, as the kernel would. */
static int signal_at_exec(pid_t pid, pid_t tid, int sig, int *stop_sig)
{
	siginfo_t si;
	uint64_t ign = 0;
	if (sig == SIGSTOP && ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) == 0 && si.si_code == SI_KERNEL)
		return 0;
	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return sig;
	if (sig == SIGSTOP || gs_proc_status_u64(pid, "SigIgn", 16, &ign) < 0 || !(ign & (1ull << (sig - 1))))
		*stop_sig = sig;
	return 0;
}

static struct gs_inject_bp *bp_note;

void gs_inject_bp_note(struct gs_inject_bp *note) { bp_note = note; }

/* Plants an int3 at entry (noted in bp_note first), runs t until it is there (2 s at most), the
 * byte back. -EALREADY: the process is not where its exec left it (someone continued it
 * meanwhile): nothing was done. */
static int run_to(struct gs_threads *ts, struct gs_thread *t, uint64_t entry, int *stop_sig)
{
	struct user_regs_struct regs;
	uint64_t until = gs_now_ns() + 2000000000ull;
	uint8_t orig, bp = 0xcc;
	int st, sig = 0, err = -EAGAIN, late = 0;
	if (ptrace(PTRACE_GETREGS, t->tid, NULL, &regs) < 0)
		return -errno;
	if (regs.rip != exec_start(ts->pid))
		return -EALREADY;
	if ((err = gs_mem_read(ts->pid, entry, &orig, 1)) < 0)
		return err;
	if (bp_note) {
		bp_note->addr = entry;
		bp_note->byte = orig;
		__atomic_store_n(&bp_note->pid, ts->pid, __ATOMIC_SEQ_CST);
	}
	if ((err = gs_mem_write(ts->pid, entry, &bp, 1)) < 0)
		goto out;
	gs_test_point("entry breakpoint planted");
	for (int guard = 0; guard < 10000 && !late; guard++) {
		err = -EAGAIN;
		if (ptrace(PTRACE_CONT, t->tid, NULL, (void *)(long)sig) < 0) {
			err = -ESRCH; /* gone with its memory: nothing to restore */
			goto out;
		}
		if ((err = wait_stop_until(ts, t, &st, until, &late)) < 0)
			goto out;
		err = late ? -ETIMEDOUT : -EAGAIN;
		sig = 0;
		if ((st >> 16) != 0)
			continue; /* a group stop (the exec's SIGSTOP), an interrupt: go on */
		if (WSTOPSIG(st) == SIGTRAP && ptrace(PTRACE_GETREGS, t->tid, NULL, &regs) == 0 &&
		    regs.rip == entry + 1) {
			err = 0;
			break;
		}
		sig = signal_at_exec(ts->pid, t->tid, WSTOPSIG(st), stop_sig);
	}
	if (gs_mem_write(ts->pid, entry, &orig, 1) < 0 && err == 0)
		err = -EIO;
	if (err == 0) {
		regs.rip = entry;
		err = ptrace(PTRACE_SETREGS, t->tid, NULL, &regs) < 0 ? -errno : 0;
	}
out:
	if (bp_note)
		__atomic_store_n(&bp_note->pid, 0, __ATOMIC_SEQ_CST);
	return err;
}

int gs_threads_run_to_entry(struct gs_threads *ts, int *stop_sig, char *why, size_t whylen)
{
	uint64_t entry = gs_proc_auxv(ts->pid, 9 /* AT_ENTRY */);
	int err;
	*stop_sig = 0;
	if (ts->n != 1) {
		snprintf(why, whylen, "process %d has %zu threads right after its exec", (int)ts->pid, ts->n);
		return -EINVAL;
	}
	if (!entry) {
		snprintf(why, whylen, "cannot read the entry point of process %d (/proc/%d/auxv)", (int)ts->pid,
			 (int)ts->pid);
		return -ENOENT;
	}
	if ((err = run_to(ts, &ts->t[0], entry, stop_sig)) == -EALREADY)
		snprintf(why, whylen, "process %d was continued after its exec before gilscope took it", (int)ts->pid);
	else if (err < 0)
		snprintf(why, whylen, "cannot run process %d to its entry point: %s", (int)ts->pid, strerror(-err));
	return err;
}

void gs_threads_release(struct gs_threads *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		ptrace(PTRACE_DETACH, ts->t[i].tid, NULL, NULL);
	for (size_t i = 0; i < ts->n; i++)
		for (int k = 0; k < ts->t[i].nsigs; k++)
			syscall(SYS_tgkill, ts->pid, ts->t[i].tid, ts->t[i].sigs[k]);
	free(ts->t);
	ts->t = NULL;
	ts->n = ts->cap = 0;
}

void gs_inject_resume(const struct user_regs_struct *r, uint64_t *rip, uint64_t *rax)
{
	*rip = r->rip;
	*rax = r->rax;
	if ((long long)r->orig_rax < 0)
		return; /* not in a system call */
	switch ((long long)r->rax) {
	case -512: /* ERESTARTSYS */
	case -513: /* ERESTARTNOINTR */
	case -514: /* ERESTARTNOHAND */
		*rax = r->orig_rax;
		*rip = r->rip - 2;
		break;
	case -516: /* ERESTART_RESTARTBLOCK */
		*rax = SYS_restart_syscall;
		*rip = r->rip - 2;
		break;
	default:
		break;
	}
}

static size_t put_movabs(uint8_t *o, int reg, uint64_t v)
{
	o[0] = reg < 8 ? 0x48 : 0x49;
	o[1] = (uint8_t)(0xb8 + (reg & 7));
	memcpy(o + 2, &v, 8);
	return 10;
}

size_t gs_inject_stub(const struct user_regs_struct *saved, uint8_t *out)
{
	static const uint8_t head[] = { 0x0f, 0x05,                              /* syscall */
					0x48, 0x8d, 0x64, 0x24, 0x80 };          /* lea rsp, [rsp - 128] */
	static const uint8_t popf[] = { 0x50, 0x9d,                              /* push rax; popfq */
					0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0 }; /* lea rsp, [rsp + 128] */
	static const uint8_t jmp[] = { 0xff, 0x25, 0, 0, 0, 0 };                 /* jmp [rip + 0] */
	/* x86 register numbers: rcx 1, rdx 2, rbx 3, rbp 5, rsi 6, rdi 7, r8-r15 8-15 */
	const uint64_t regs[][2] = { { 1, saved->rcx },  { 2, saved->rdx },  { 3, saved->rbx },  { 5, saved->rbp },
				     { 6, saved->rsi },  { 7, saved->rdi },  { 8, saved->r8 },   { 9, saved->r9 },
				     { 10, saved->r10 }, { 11, saved->r11 }, { 12, saved->r12 }, { 13, saved->r13 },
				     { 14, saved->r14 }, { 15, saved->r15 } };
	uint64_t rip, rax;
	size_t o = 0;

	gs_inject_resume(saved, &rip, &rax);
	memcpy(out, head, sizeof(head));
	o += sizeof(head);
	o += put_movabs(out + o, 0, saved->eflags); /* the push lands below the red zone */
	memcpy(out + o, popf, sizeof(popf));
	o += sizeof(popf);
	for (size_t i = 0; i < GS_ARRAY_SIZE(regs); i++)
		o += put_movabs(out + o, (int)regs[i][0], regs[i][1]);
	o += put_movabs(out + o, 0, rax);
	memcpy(out + o, jmp, sizeof(jmp));
	o += sizeof(jmp);
	memcpy(out + o, &rip, 8);
	return o + 8;
}

struct scratch_scan {
	pid_t pid;
	uint64_t addr;
	uint8_t *bytes;
};

/* The slack after an executable PT_LOAD segment of the file behind m, inside m: its address, or
 * 0. The bytes there are the file's (read into bytes), and no segment of the file covers them. */
static uint64_t mapping_slack(pid_t pid, const struct gs_map *m, uint8_t *bytes)
{
	char path[128];
	Elf64_Ehdr eh;
	Elf64_Phdr ph[64];
	uint64_t found = 0;
	int fd = gs_proc_open_mapped(pid, m, path, sizeof(path));

	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phnum == 0 || eh.e_phnum > GS_ARRAY_SIZE(ph) ||
	    pread(fd, ph, eh.e_phnum * sizeof(Elf64_Phdr), (off_t)eh.e_phoff) !=
		    (ssize_t)(eh.e_phnum * sizeof(Elf64_Phdr)))
		goto out;
	for (unsigned i = 0; i < eh.e_phnum && !found; i++) {
		const Elf64_Phdr *p = &ph[i];
		uint64_t fend = p->p_offset + p->p_filesz, a, bias;
		int clear = 1;
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X) || p->p_offset < m->offset || fend <= m->offset ||
		    fend > m->offset + (m->end - m->start))
			continue;
		bias = m->start + (p->p_offset - m->offset) - p->p_vaddr;
		a = (m->start + (fend - m->offset) + 15) & ~15ull;
		if (a + GS_INJECT_STUB_MAX > m->end)
			continue;
		for (unsigned k = 0; k < eh.e_phnum; k++) /* no segment lies there (two merged mappings) */
			if (ph[k].p_type == PT_LOAD && a < bias + ph[k].p_vaddr + ph[k].p_memsz &&
			    a + GS_INJECT_STUB_MAX > bias + ph[k].p_vaddr)
				clear = 0;
		if (clear &&
		    pread(fd, bytes, GS_INJECT_STUB_MAX, (off_t)(a - m->start + m->offset)) == GS_INJECT_STUB_MAX)
			found = a;
	}
out:
	close(fd);
	return found;
}

static int scratch_cb(const struct gs_map *m, void *arg)
{
	struct scratch_scan *sc = arg;
	if (m->path[0] != '/' || strcmp(m->perms, "r-xp") != 0)
		return 0;
	sc->addr = mapping_slack(sc->pid, m, sc->bytes);
	return sc->addr != 0;
}

int gs_inject_find_scratch(pid_t pid, uint64_t *addr, uint8_t *file_bytes)
{
	struct scratch_scan sc = { .pid = pid, .bytes = file_bytes };
	gs_maps_foreach(pid, scratch_cb, &sc);
	*addr = sc.addr;
	return sc.addr ? 0 : -ENOENT;
}

static int need_scratch(struct gs_threads *ts)
{
	if (ts->scratch)
		return 0;
	return gs_inject_find_scratch(ts->pid, &ts->scratch, ts->scratch_file);
}

int gs_inject_scrub_scratch(struct gs_threads *ts, char *why, size_t whylen)
{
	uint8_t now[GS_INJECT_STUB_MAX];
	struct gs_range r;
	int err = need_scratch(ts);
	if (err < 0 || (err = gs_mem_read(ts->pid, ts->scratch, now, sizeof(now))) < 0)
		return err;
	if (memcmp(now, ts->scratch_file, sizeof(now)) == 0)
		return 0;
	/* a stub a killed gilscope left: a thread it let go may still be in it (or about to run it) */
	r.lo = ts->scratch;
	r.hi = ts->scratch + GS_INJECT_STUB_MAX;
	if ((err = gs_threads_settle(ts, &r, 1, 1, why, whylen)) < 0)
		return err;
	return gs_mem_write(ts->pid, ts->scratch, ts->scratch_file, sizeof(now));
}

/* Resumes t with PTRACE_SYSCALL until its syscall-exit stop (the call injected at ts->scratch):
 * 0, or -errno. Signals met on the way are kept. */
static int run_to_syscall_exit(struct gs_threads *ts, struct gs_thread *t)
{
	int st, err, stops = 0;
	for (int guard = 0; guard < 1000; guard++) {
		if (ptrace(PTRACE_SYSCALL, t->tid, NULL, NULL) < 0)
			return errno == ESRCH ? (drop_thread(ts, t), -ESRCH) : -errno;
		if ((err = wait_stop(ts, t, &st)) < 0)
			return err;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80) && (st >> 16) == 0) {
			gs_test_point(stops ? "injected call returned" : "injected call entered");
			if (++stops == 2)
				return 0;
			continue;
		}
		if ((st >> 16) == 0)
			keep_signal(t, WSTOPSIG(st));
	}
	return -EAGAIN;
}

/* From t's syscall-exit stop to a stop inside the kernel's signal handling (where the registers
 * set back restart the interrupted call): 0 or -errno. */
static int stop_before_user(struct gs_threads *ts, struct gs_thread *t)
{
	int st, err;
	ptrace(PTRACE_INTERRUPT, t->tid, NULL, NULL);
	for (int guard = 0; guard < 1000; guard++) {
		if (ptrace(PTRACE_CONT, t->tid, NULL, NULL) < 0)
			return errno == ESRCH ? (drop_thread(ts, t), -ESRCH) : -errno;
		if ((err = wait_stop(ts, t, &st)) < 0)
			return err;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			return 0;
		if ((st >> 16) == 0 && WSTOPSIG(st) != (SIGTRAP | 0x80))
			keep_signal(t, WSTOPSIG(st)); /* held back (queued again after): on to the interrupt */
	}
	return -EAGAIN;
}

int gs_inject_syscall(struct gs_threads *ts, long nr, const uint64_t args[6], int64_t *ret)
{
	struct gs_thread *t = find_thread(ts, ts->pid);
	struct user_regs_struct saved, regs;
	uint8_t stub[GS_INJECT_STUB_MAX];
	pid_t tid;
	int err;

	if (!t && ts->n)
		t = &ts->t[0];
	if (!t)
		return -ESRCH;
	tid = t->tid;
	if ((err = need_scratch(ts)) < 0 || ptrace(PTRACE_GETREGS, tid, NULL, &saved) < 0)
		return err < 0 ? err : -errno;
	memcpy(stub, ts->scratch_file, sizeof(stub));
	gs_inject_stub(&saved, stub);
	if ((err = gs_mem_write(ts->pid, ts->scratch, stub, sizeof(stub))) < 0)
		goto restore;
	gs_test_point("stub written");
	gs_inject_regs(&saved, ts->scratch, nr, args, &regs);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &regs) < 0) {
		err = -errno;
		goto restore;
	}
	gs_test_point("registers set");
	if ((err = run_to_syscall_exit(ts, t)) < 0)
		goto restore;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &regs) < 0)
		err = -errno;
	else if (regs.rip != ts->scratch + 2)
		err = -EIO; /* stopped somewhere else: not our call */
	else
		*ret = (int64_t)regs.rax;
	if (err == 0 && (err = stop_before_user(ts, t)) == 0)
		gs_test_point("stopped before user space");
restore:
	if (err != -ESRCH) {
		ptrace(PTRACE_SETREGS, tid, NULL, &saved);
		requeue_signals(ts, t);
	}
	gs_test_point("registers back");
	gs_mem_write(ts->pid, ts->scratch, ts->scratch_file, sizeof(stub));
	return err;
}

void gs_test_point(const char *what)
{
	static long kill_at = -1, count;
	const char *env;
	if (kill_at < 0) {
		env = getenv("GILSCOPE_TEST_KILL_AT");
		kill_at = env && strncmp(env, "point:", 6) == 0 ? strtol(env + 6, NULL, 10) : 0;
		if (!env || strncmp(env, "point:", 6) != 0)
			kill_at = LONG_MAX;
	}
	if (kill_at == LONG_MAX)
		return;
	count++;
	if (kill_at == 0)
		fprintf(stderr, "gilscope test point %ld: %s\n", count, what);
	else if (count == kill_at)
		kill(getpid(), SIGKILL);
}

static int ops_syscall(void *ctx, pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret,
		       int *pending_sig)
{
	(void)pid;
	(void)scratch;     /* ours: a place no thread runs (see inject.h) */
	(void)pending_sig; /* kept per thread, sent again at the release */
	return gs_inject_syscall(ctx, nr, args, ret);
}

static int ops_write(void *ctx, pid_t pid, uint64_t addr, const void *src, size_t len)
{
	(void)ctx;
	return gs_mem_write(pid, addr, src, len);
}

static int ops_fs_base(void *ctx, pid_t pid, uint64_t *fs)
{
	struct user_regs_struct regs;
	(void)ctx;
	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs) < 0)
		return -errno;
	*fs = regs.fs_base;
	return 0;
}

void gs_inject_ops(struct gs_threads *ts, struct gs_inline_ops *ops)
{
	ops->syscall = ops_syscall;
	ops->write = ops_write;
	ops->fs_base = ops_fs_base;
	ops->ctx = ts;
}

int gs_inject_parse_owner(const char *mark, size_t len, pid_t *owner, int *fd)
{
	static const char pre[] = "/proc/";
	size_t i = sizeof(pre) - 1;
	uint64_t a = 0, b = 0;
	size_t da = 0, db = 0;

	if (len < i || memcmp(mark, pre, i) != 0)
		return -1;
	for (; i < len && mark[i] >= '0' && mark[i] <= '9' && da < 10; i++, da++)
		a = a * 10 + (uint64_t)(mark[i] - '0');
	if (!da || len - i < 4 || memcmp(mark + i, "/fd/", 4) != 0)
		return -1;
	for (i += 4; i < len && mark[i] >= '0' && mark[i] <= '9' && db < 10; i++, db++)
		b = b * 10 + (uint64_t)(mark[i] - '0');
	if (!db || i >= len || mark[i] != '\0' || a == 0 || a > 0x7fffffff || b > 0x7fffffff)
		return -1;
	*owner = (pid_t)a;
	*fd = (int)b;
	return 0;
}

struct probes_scan {
	pid_t pid, owner;
	uint64_t tramp;
	int fd;
};

static int probes_cb(const struct gs_map *m, void *arg)
{
	struct probes_scan *ps = arg;
	char mark[64];
	if (m->path[0] || strcmp(m->perms, "rwxp") != 0 || m->end - m->start != GS_INLINE_TRAMP_SIZE ||
	    gs_mem_read(ps->pid, m->start + GS_INLINE_OWNER_OFF, mark, sizeof(mark)) < 0 ||
	    gs_inject_parse_owner(mark, sizeof(mark), &ps->owner, &ps->fd) < 0)
		return 0;
	ps->tramp = m->start;
	return 1;
}

int gs_inject_find_probes(pid_t pid, uint64_t *tramp, pid_t *owner, int *alive)
{
	struct probes_scan ps = { .pid = pid };
	char path[64], link[64];
	ssize_t n;
	if (gs_maps_foreach(pid, probes_cb, &ps) != 1)
		return 0;
	*tramp = ps.tramp;
	*owner = ps.owner;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)ps.owner, ps.fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	*alive = n > 0 && strncmp(link, "/memfd:gilscope-ring", 20) == 0;
	return 1;
}
