/* inject.h - a running process held still and changed from outside: every thread seized and
 * stopped, system calls run in one of them, and every thread let go as it was, even when gilscope
 * is killed at any moment of it.
 *
 * The attach path's counterpart of the guardian (tracer.h), without a guardian: gilscope itself
 * is the tracer, with PTRACE_SEIZE (no signal sent, nothing changes for a thread it stops) and
 * PTRACE_INTERRUPT, again until a scan of /proc/PID/task finds no thread it does not hold; the
 * kernel lets every thread go as it is if gilscope dies. A system call is run in the main thread
 * (or the first one held) through a stub written at a scratch address no thread ever runs: the
 * slack after the end of an executable PT_LOAD segment in the last page of its mapping (the bytes
 * restored from the file afterwards, and by the next gilscope if this one is killed). The stub is
 * `syscall` followed by the thread's own registers as immediates (flags through a push below the
 * red zone) and a jump to where it resumes, the kernel's restart applied (a thread stopped in a
 * restartable call, most often the futex wait of take_gil: rip - 2 and rax = orig_rax, or
 * restart_syscall). gilscope stops the thread at the call's exit (PTRACE_SYSCALL), reads the
 * result, stops it again before it returns to user space (PTRACE_INTERRUPT) and sets every
 * register back there, orig_rax and rax with them, so the kernel restarts the interrupted call
 * itself; if gilscope is killed anywhere in between, the thread runs the stub and resumes as the
 * kernel would have resumed it. A signal that reaches a thread while it runs for gilscope is
 * delivered there and then, but for one that comes during an injected call: held back, it is
 * queued again (tgkill) as soon as the thread's registers are back (a kill of gilscope in those
 * microseconds loses it, and a re-queued signal carries SI_TKILL in its siginfo: the limits).
 * gs_threads_settle() lets threads out of code about to change: a thread whose
 * program counter lies inside one of the ranges, or whose stack holds a word that points inside
 * one (a program counter saved in a signal frame, a return address), runs on briefly, alone, and
 * is stopped again, until none is. The stack is read from the stack pointer to the end of its
 * mapping (8 MiB at most): a frame on an alternate signal stack is seen when that stack is where
 * the thread runs; a frame on the normal stack of a thread now running on the alternate one is
 * not. Functions return 0 or -errno with a sentence in why; a thread that exits meanwhile is
 * dropped from the set, never an error. gs_test_point() is the crash test's hook (see below).
 */
#ifndef GS_INJECT_H
#define GS_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "probe/inline.h"

/* Addresses [lo, hi). */
struct gs_range {
	uint64_t lo, hi;
};

/* Index of the first range pc lies inside, -1 when none. Inside: lo < pc < hi, or lo <= pc < hi
 * when from_start (a thread about to run the first byte of a patched instruction runs the new
 * one whole; one in the middle would run half of each). Pure. */
int gs_range_find(const struct gs_range *r, size_t n, uint64_t pc, int from_start);

/* The registers an injected system call nr(args) runs with, from the thread's saved ones: pc at
 * scratch, nr in rax, the arguments in rdi, rsi, rdx, r10, r8, r9, orig_rax -1 (no restart);
 * every other register as saved. Pure. */
void gs_inject_regs(const struct user_regs_struct *saved, uint64_t scratch, long nr, const uint64_t args[6],
		    struct user_regs_struct *out);

struct gs_thread {
	pid_t tid;
	char state;  /* its /proc state letter before it was stopped */
	int sigs[4]; /* signals held back during an injected call, queued again after it */
	int nsigs;
};

#define GS_INJECT_STUB_MAX 192 /* bytes of the injected-call stub (gs_inject_stub) */

struct gs_threads {
	pid_t pid;
	struct gs_thread *t;
	size_t n, cap;
	uint64_t scratch;                         /* where the stub is written (0: not found yet) */
	uint8_t scratch_file[GS_INJECT_STUB_MAX]; /* the file's bytes there */
};

/* Seizes and stops every thread of pid not held yet, until no new one appears. */
int gs_threads_seize(struct gs_threads *ts, pid_t pid, char *why, size_t whylen);
/* Until no held thread's program counter is inside r[0..n) (gs_range_find), runs the ones inside
 * for a moment and stops them again; new threads are seized on the way. -EBUSY when a thread
 * stays inside. */
int gs_threads_settle(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, char *why,
		      size_t whylen);
/* ts holds the one thread of a process stopped as its exec() completed, before the dynamic loader
 * ran: runs it to its program's entry point (every library it needs is mapped then; 2 s at most)
 * and stops it there as it was, the breakpoint gone. The exec's own SIGSTOP (the kernel's) is
 * dropped on the way; a stop signal of anyone else (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU not ignored)
 * is held back and said in *stop_sig (leave the process stopped then); other signals are
 * delivered. 0, or -errno with why: -EALREADY when the process is not where its exec left it
 * (continued meanwhile: nothing done), -ESRCH when it ended. */
int gs_threads_run_to_entry(struct gs_threads *ts, int *stop_sig, char *why, size_t whylen);
/* The breakpoint gs_threads_run_to_entry has planted (pid 0: none), noted where a process that
 * outlives gilscope can read it (record/sched_bpf.c's deadman, in shared memory): a gilscope
 * killed meanwhile leaves the process stopped (its exec's stop is in effect again once its tracer
 * is gone), and the deadman writes the byte back before it continues it. */
struct gs_inject_bp {
	volatile int32_t pid;
	volatile uint8_t byte;
	volatile uint64_t addr;
};
/* Where to note it from now on (NULL: nowhere). */
void gs_inject_bp_note(struct gs_inject_bp *note);
/* Lets every thread go; the set is emptied. */
void gs_threads_release(struct gs_threads *ts);

/* The owner mark of a trampoline page ("/proc/PID/fd/N", see inline.h), len bytes at mark: 0 and
 * the owner's pid and the ring's descriptor in it, or -1. Pure. */
int gs_inject_parse_owner(const char *mark, size_t len, pid_t *owner, int *fd);
/* Does pid carry a gilscope's inline probes: a private anonymous rwx mapping of
 * GS_INLINE_TRAMP_SIZE bytes with an owner mark? 1 (*tramp, *owner, *alive: the owner still
 * runs and holds that ring), 0 when not. Nothing is stopped. */
int gs_inject_find_probes(pid_t pid, uint64_t *tramp, pid_t *owner, int *alive);

/* Where a thread stopped with registers r resumes when let go: *rip and *rax after the kernel's
 * restart of an interrupted system call (-ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND: the
 * call again; -ERESTART_RESTARTBLOCK: restart_syscall), r's own otherwise. Pure. */
void gs_inject_resume(const struct user_regs_struct *r, uint64_t *rip, uint64_t *rax);
/* The injected-call stub (see above) for a thread stopped with registers saved, in out
 * (GS_INJECT_STUB_MAX bytes): its length. Pure. */
size_t gs_inject_stub(const struct user_regs_struct *saved, uint8_t *out);
/* The scratch address of pid (see above) and the file's bytes there (GS_INJECT_STUB_MAX):
 * 0, or -ENOENT when no mapping has room. */
int gs_inject_find_scratch(pid_t pid, uint64_t *addr, uint8_t *file_bytes);
/* Writes the file's bytes back at ts's scratch address (found if need be) where a killed
 * gilscope left a stub, once no thread is in it (gs_threads_settle). 0, -ENOENT (no scratch
 * address), or -errno with why. */
int gs_inject_scrub_scratch(struct gs_threads *ts, char *why, size_t whylen);

/* Runs nr(args) in a held thread of ts (the main one when held), see above: 0 and the call's
 * result in *ret, or -errno (ptrace). */
int gs_inject_syscall(struct gs_threads *ts, long nr, const uint64_t args[6], int64_t *ret);

/* The crash test's hook, compiled in and inert unless GILSCOPE_TEST_KILL_AT=point:N is set:
 * gilscope kills itself (SIGKILL) at the N-th point of attaching or detaching it crosses; with
 * point:0 it names every point it crosses on stderr ("gilscope test point N: what") and lives. */
void gs_test_point(const char *what);
/* The inline probes' ops (inline.h) on the held process ts. */
void gs_inject_ops(struct gs_threads *ts, struct gs_inline_ops *ops);

#endif
