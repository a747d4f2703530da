/* x86_glibc.h - the x86-64 Linux and glibc facts gilscope relies on, in one place.
 *
 * CPython's own layouts are in cpython/pylayout.h; these numbers come from the platform under
 * it instead: where glibc keeps a thread's TID (for the 3.9/3.10 stack walker and GIL-holder
 * walk, which only have pthread_self(), and for the inline probes' trampolines, which read it
 * at %fs:offset), and the order of x86-64 registers in a perf sample (for the native sampler
 * and unwinder). Porting gilscope to another architecture or C library starts here, with
 * x86.c (instruction decoding and emission), ptrace.c (tracee registers) and native.c (the
 * perf-to-DWARF register numbering).
 */
#ifndef GS_X86_GLIBC_H
#define GS_X86_GLIBC_H

/* glibc, x86-64: offset of `tid` in struct pthread, i.e. from pthread_self() and from the
 * thread pointer (%fs base), which point at the same place. Stable since glibc 2.25; checked on
 * Debian 12's glibc 2.36. */
#define GS_GLIBC_PTHREAD_TID_OFFSET 0x2d0u

/* Where the inline probes look for it at run time, first match on the main thread wins (other
 * glibc builds moved it by a word or two). */
#define GS_GLIBC_PTHREAD_TID_CANDIDATES                                             \
	{                                                                           \
		GS_GLIBC_PTHREAD_TID_OFFSET, 0x2d8u, 0x2c8u, 0x2e0u, 0x2c0u, 0x2f0u \
	}

/* Linux perf, x86-64: PERF_SAMPLE_REGS_USER mask AX BX CX DX SI DI BP SP IP and R8-R15 (bits
 * of enum perf_event_x86_regs), 17 registers, in a sample in this order. */
#define GS_X86_PERF_REGS_MASK 0xff01ffull
#define GS_X86_PERF_NREGS 17
enum gs_x86_perf_reg {
	GS_X86_PERF_AX,
	GS_X86_PERF_BX,
	GS_X86_PERF_CX,
	GS_X86_PERF_DX,
	GS_X86_PERF_SI,
	GS_X86_PERF_DI,
	GS_X86_PERF_BP,
	GS_X86_PERF_SP,
	GS_X86_PERF_IP,
	GS_X86_PERF_R8 /* .. R15 follow */
};

#endif
