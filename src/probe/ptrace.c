/* ptrace.c - a stopped tracee's registers and code, through the guardian's ptrace (see ptrace.h). */
#define _GNU_SOURCE
#include "probe/ptrace.h"
#include "base/procfs.h"
#include "probe/tracer.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

int gs_ptrace_bp_insert(pid_t pid, uint64_t addr, long *saved)
{
	long word;
	int err;
	if ((err = gs_ptrace(PTRACE_PEEKTEXT, pid, addr, &word)) < 0)
		return err;
	*saved = word;
	word = (long)(((unsigned long)word & ~0xfful) | 0xccul); /* int3 */
	return gs_ptrace(PTRACE_POKETEXT, pid, addr, (void *)word);
}

int gs_ptrace_bp_hit_and_remove(pid_t pid, uint64_t addr, long saved)
{
	struct user_regs_struct regs;
	int err;
	if ((err = gs_ptrace(PTRACE_GETREGS, pid, 0, &regs)) < 0)
		return err;
	if (regs.rip != addr + 1)
		return 0;
	if ((err = gs_ptrace(PTRACE_POKETEXT, pid, addr, (void *)saved)) < 0)
		return err;
	regs.rip = addr;
	if ((err = gs_ptrace(PTRACE_SETREGS, pid, 0, &regs)) < 0)
		return err;
	return 1;
}

int gs_ptrace_syscall(pid_t pid, uint64_t scratch, long nr, const uint64_t args[6], int64_t *ret, int *pending_sig)
{
	static const uint8_t code[3] = { 0x0f, 0x05, 0xcc }; /* syscall; int3 */
	struct user_regs_struct saved, regs;
	uint8_t orig[3];
	int err, st;

	if ((err = gs_ptrace(PTRACE_GETREGS, pid, 0, &saved)) < 0)
		return err;
	if ((err = gs_mem_read(pid, scratch, orig, sizeof(orig))) < 0 ||
	    (err = gs_ptrace_write(pid, scratch, code, sizeof(code))) < 0)
		return err;
	regs = saved;
	regs.rip = scratch;
	regs.rax = (unsigned long long)nr;
	regs.orig_rax = (unsigned long long)-1;
	regs.rdi = args[0];
	regs.rsi = args[1];
	regs.rdx = args[2];
	regs.r10 = args[3];
	regs.r8 = args[4];
	regs.r9 = args[5];
	if ((err = gs_ptrace(PTRACE_SETREGS, pid, 0, &regs)) < 0)
		goto restore;
	gs_handover_step("syscall-set");
	if ((err = gs_ptrace(PTRACE_CONT, pid, 0, NULL)) < 0)
		goto restore;
	gs_handover_step("syscall-cont");
	for (;;) {
		if ((err = gs_ptrace_wait(pid, &st)) < 0)
			goto restore;
		if (!WIFSTOPPED(st)) {
			err = -ESRCH;
			return err; /* the process is gone */
		}
		if (WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0)
			break;
		if ((st >> 16) == 0 && pending_sig)
			*pending_sig = WSTOPSIG(st); /* deliver later */
		if ((err = gs_ptrace(PTRACE_CONT, pid, 0, NULL)) < 0)
			goto restore;
	}
	if ((err = gs_ptrace(PTRACE_GETREGS, pid, 0, &regs)) < 0)
		goto restore;
	*ret = (int64_t)regs.rax;
	gs_handover_step("syscall-ran");
restore:
	gs_ptrace_write(pid, scratch, orig, sizeof(orig));
	gs_ptrace(PTRACE_SETREGS, pid, 0, &saved);
	return err;
}

int gs_ptrace_fs_base(pid_t pid, uint64_t *fs)
{
	struct user_regs_struct regs;
	int err;
	if ((err = gs_ptrace(PTRACE_GETREGS, pid, 0, &regs)) < 0)
		return err;
	*fs = regs.fs_base;
	return 0;
}
