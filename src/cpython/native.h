/* native.h - native (C) stacks of a traced process: DWARF unwinding of user stacks copied by
 * the kernel at a perf sample, and symbolisation, both with elfutils' libdwfl.
 *
 * The kernel hands us, for a sample, the thread's user registers at its last entry into the
 * kernel and a copy of the top of its user stack. libdwfl unwinds that copy with each module's
 * CFI (.eh_frame / .debug_frame), falling back to frame pointers where a function has no CFI
 * (CPython's -X perf trampolines). Reads outside the copy fail: the stack is truncated there,
 * never filled with live memory that has moved on. Addresses are named from .symtab, the
 * MiniDebugInfo or a debug file when libdwfl finds one, from /tmp/perf-PID.map for
 * trampolines (only when that file is a regular file owned by the target's user or root and
 * not writable by others), and from hints the caller knows (take_gil in a stripped CPython).
 */
#ifndef GS_NATIVE_H
#define GS_NATIVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "probe/x86_glibc.h"

/* The user registers a sample carries (PERF_SAMPLE_REGS_USER): x86-64's, see x86_glibc.h. */
#define GS_NATIVE_REGS_MASK GS_X86_PERF_REGS_MASK
#define GS_NATIVE_NREGS GS_X86_PERF_NREGS

/* Native frames one unwinding yields at most (gs_native_unwind's max; the sampler's buffers).
 * Python frames have their own bound, GS_PYSTACK_MAX_FRAMES (pystack.h), and a recorded stack,
 * both merged, GS_RECFILE_MAX_STACK_FRAMES (recfile.h). */
#define GS_NATIVE_UNWIND_MAX_FRAMES 256

/* What a native frame is, for merging with Python frames. */
#define GS_NATFRAME_EVAL 1u       /* the bytecode evaluation loop (_PyEval_EvalFrameDefault) */
#define GS_NATFRAME_TRAMPOLINE 2u /* a -X perf trampoline (py::qualname:file) */

struct gs_native;

/* Prepares unwinding and symbolisation for process pid. NULL with a reason on failure. */
struct gs_native *gs_native_new(pid_t pid, char *why, size_t whylen);
void gs_native_free(struct gs_native *n);

/* Names [start, end) (runtime addresses) when nothing else does (a static function of a
 * stripped binary found by other means). */
void gs_native_hint(struct gs_native *n, uint64_t start, uint64_t end, const char *name);

/* Unwinds one sample of thread tid: regs in the sample's order (GS_NATIVE_REGS_MASK), the
 * copied stack from regs' SP. pcs[] receives the frames, innermost first, sps[] each frame's
 * stack pointer (its locals lie from there up to the next frame's) (return addresses
 * minus one past the first frame, so that they name the call). *complete is set when the
 * unwinding reached the outermost frame rather than the end of the copy. Returns the frame
 * count (0: nothing usable). */
int gs_native_unwind(struct gs_native *n, uint32_t tid, const uint64_t *regs, const uint8_t *stack, size_t len,
		     uint64_t *pcs, uint64_t *sps, int max, int *complete);

/* Names pc: the function (or "0x<addr>" when unknown), the module's file name, and flags
 * (GS_NATFRAME_*). The strings stay valid until gs_native_free. */
void gs_native_symbol(struct gs_native *n, uint64_t pc, const char **name, const char **module, unsigned *flags);

/* Counters: unwinds, those that ended early (copy too short or no CFI), symbol misses. */
void gs_native_stats(const struct gs_native *n, uint64_t *unwinds, uint64_t *truncated, uint64_t *unknown);

/* Plans one stack from a native one (flags GS_NATFRAME_* and stack pointers of its npc frames)
 * and Python frames (entry[i]: frame i is the outermost of its call of the evaluation loop;
 * entry_addr[i], when known (3.12+), the address of that call's own frame on the C stack), both
 * innermost first. A native frame is the evaluation loop's call of the next group of Python
 * frames when that group's entry address lies in its part of the stack (exact, whatever the
 * symbols), else when it is named so (3.11). Each such frame is preceded by the Python frames
 * that call ran, and the
 * Python frames left when the native stack ended early (not complete) go outermost. out[j] is
 * k >= 0 for native frame k, or -(i + 1) for Python frame i. *mismatch is set when a complete
 * native stack has not as many loop calls as the Python frames have; is_eval_out[k] (may be
 * NULL) whether native frame k was taken for a call of the loop. Returns the count. */
int gs_native_merge(const unsigned *flags, const uint64_t *sps, int npc, int complete, const uint8_t *entry,
		    const uint64_t *entry_addr, int n, int *out, int max, int *mismatch, uint8_t *is_eval_out);

/* Parses one /tmp/perf-PID.map line ("<hex start> <hex size> <name>"). 0 or -EINVAL. */
int gs_perfmap_parse_line(const char *line, uint64_t *start, uint64_t *size, const char **name);

#endif
