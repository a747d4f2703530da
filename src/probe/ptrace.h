/* ptrace.h - a stopped tracee's code and registers, through ptrace: the entry-point breakpoint
 * of `record -- COMMAND` and the remote system calls of the inline probes' set-up.
 *
 * Every function takes a tracee that is ptrace-stopped (and stays stopped on return) and returns
 * -errno for a ptrace failure (-ESRCH: the process is gone). Registers are x86-64's (struct
 * user_regs_struct: rip, rax, fs_base; the syscall instruction and its argument registers):
 * this is, with x86.c, native.c's register numbering and x86_glibc.h, the architecture-specific
 * code to port. Every request and every wait goes through the guardian (tracer.h), which
 * journals what it changes: a SIGKILL of gilscope in the middle leaves the tracee as it was.
 * Code is written with PTRACE_POKETEXT or the guardian's journaled /proc/PID/mem write, read
 * with PTRACE_PEEKTEXT or /proc/PID/mem (procfs.h).
 */
#ifndef GS_PTRACE_H
#define GS_PTRACE_H

#include <stdint.h>
#include <sys/types.h>

/* Inserts a breakpoint (int3) at addr; *saved receives the original word. 0 or -errno. */
int gs_ptrace_bp_insert(pid_t pid, uint64_t addr, long *saved);
/* After the tracee stopped with SIGTRAP: returns 1 when it stopped on the breakpoint at addr,
 * in which case the original word is restored and the PC moved back to addr; 0 when it stopped
 * elsewhere; -errno. */
int gs_ptrace_bp_hit_and_remove(pid_t pid, uint64_t addr, long saved);

/* Runs one system call nr(args) in the tracee, using a scratch code address (its 3 bytes and
 * the registers are restored). Returns 0 and the call's result in *ret, or -errno for a ptrace
 * failure. A signal that arrives meanwhile is stored in *pending_sig for the caller to deliver. */
int gs_ptrace_syscall(pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret, int *pending_sig);

/* The thread pointer (%fs base) of the tracee. 0 or -errno. */
int gs_ptrace_fs_base(pid_t pid, uint64_t *fs);

#endif
