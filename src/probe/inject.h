/* inject.h - a running process held still and changed from outside: every thread seized and
 * stopped, system calls run in one of them, and every thread let go as it was.
 *
 * The attach path's counterpart of the guardian (tracer.h), without a guardian: gilscope itself
 * is the tracer, with PTRACE_SEIZE (no signal sent, nothing changes for a thread it stops) and
 * PTRACE_INTERRUPT, again until a scan of /proc/PID/task finds no thread it does not hold. A
 * system call is run in the main thread (or the first one held): its registers are saved, the
 * program counter set to a scratch address where `syscall; int3` is written (its bytes put back
 * afterwards), rax to the call, orig_rax to -1, so that the kernel does not take the injected call
 * for the interrupted one and restart it. The int3's SIGTRAP ends the call; every register is
 * then set back, orig_rax and rax (-ERESTARTSYS, -ERESTART_RESTARTBLOCK, ...) with them, so when
 * the thread resumes the kernel restarts the system call it was stopped in (most often the futex
 * wait of take_gil) exactly as it would have. A signal that reaches a thread while it is held is
 * kept and sent to it again (tgkill) once it is let go. gs_threads_settle() lets threads out of
 * code about to change: a thread whose program counter lies inside one of the ranges runs on
 * briefly, alone, and is stopped again, until none is inside (the live program counter only: a
 * thread interrupted inside them by a signal handler is not seen). Functions return 0 or -errno
 * with a sentence in why; a thread that exits meanwhile is dropped from the set, never an error.
 * A SIGKILL of gilscope while it holds the threads lets them go as they are (the kernel detaches
 * them); only the few instructions between setting and restoring an injected call's registers are
 * unprotected.
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
	int sigs[4]; /* signals it received while held, to send again */
	int nsigs;
};

struct gs_threads {
	pid_t pid;
	struct gs_thread *t;
	size_t n, cap;
};

/* Seizes and stops every thread of pid not held yet, until no new one appears. */
int gs_threads_seize(struct gs_threads *ts, pid_t pid, char *why, size_t whylen);
/* Until no held thread's program counter is inside r[0..n) (gs_range_find), runs the ones inside
 * for a moment and stops them again; new threads are seized on the way. -EBUSY when a thread
 * stays inside. */
int gs_threads_settle(struct gs_threads *ts, const struct gs_range *r, size_t n, int from_start, char *why,
		      size_t whylen);
/* Lets every thread go (and sends it the signals it missed); the set is emptied. */
void gs_threads_release(struct gs_threads *ts);

/* The owner mark of a trampoline page ("/proc/PID/fd/N", see inline.h), len bytes at mark: 0 and
 * the owner's pid and the ring's descriptor in it, or -1. Pure. */
int gs_inject_parse_owner(const char *mark, size_t len, pid_t *owner, int *fd);
/* Does pid carry a gilscope's inline probes: a private anonymous rwx mapping of
 * GS_INLINE_TRAMP_SIZE bytes with an owner mark? 1 (*tramp, *owner, *alive: the owner still
 * runs and holds that ring), 0 when not. Nothing is stopped. */
int gs_inject_find_probes(pid_t pid, uint64_t *tramp, pid_t *owner, int *alive);

/* Runs nr(args) in a held thread of ts (the main one when held), see above: 0 and the call's
 * result in *ret, or -errno (ptrace). */
int gs_inject_syscall(struct gs_threads *ts, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret);
/* The inline probes' ops (inline.h) on the held process ts. */
void gs_inject_ops(struct gs_threads *ts, struct gs_inline_ops *ops);

#endif
