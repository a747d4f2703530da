/* pystack.h - Python stacks read from another process's memory, without stopping it, for
 * CPython 3.9 to 3.15.
 *
 * From the runtime, the main interpreter's thread states; for each, its frame chain down to the
 * first frame (PyFrameObject in 3.9 and 3.10, each frame its own call of the evaluation loop;
 * _PyInterpreterFrame from 3.11, with the frames that start a call of the loop marked), each
 * frame's code object (qualname, or co_name before 3.11; file) and the line being run (decoded
 * from co_lnotab in 3.9, co_linetable in 3.10, the location table from 3.11). The thread id is
 * PyThreadState's native_thread_id from 3.11, and before that the TID glibc keeps in the struct
 * pthread that thread_id points to (x86_glibc.h). Code objects are cached by address (a reused
 * address is noticed: checked once per sample), with the lines of the last few offsets decoded;
 * a frame read copies the pages around it, where the frames it calls from usually are. Reads of a moving target can fail or tear: such samples are counted,
 * never fatal. All reads go through a gs_mem_reader, so tests and the fuzzer walk synthetic
 * memory. The offsets are the version's row of the layout table (pylayout.h), from 3.13 read
 * from the interpreter's _Py_DebugOffsets.
 */
#ifndef GS_PYSTACK_H
#define GS_PYSTACK_H

#include <stddef.h>
#include <stdint.h>

#include "cpython/python.h"

/* Python frames one walk of one thread yields at most (gs_pystacks_sample's callback gets no
 * more; deeper stacks lose their outermost frames). Native frames have their own bound,
 * GS_NATIVE_UNWIND_MAX_FRAMES (native.h), and a recorded stack, both merged,
 * GS_RECFILE_MAX_STACK_FRAMES (recfile.h). */
#define GS_PYSTACK_MAX_FRAMES 512

struct gs_pyframe {
	uint64_t code; /* code object address: with line and gen, the frame's identity */
	int32_t line;
	uint32_t gen;        /* bumped when the address is found reused by another code object */
	uint32_t entry;      /* the outermost frame run by one call of the evaluation loop (C frame) */
	uint64_t entry_addr; /* 3.12+, entry frames: where that call keeps its own frame (on the C stack) */
	uint64_t addr;       /* the frame itself (PyFrameObject, _PyInterpreterFrame): its locals (pyname.h) */
};

struct gs_pystacks;

/* Prepares a walker for the CPython found in py (3.9+; 3.11 only for debug builds). NULL with a
 * reason when the version is not supported or its offsets cannot be read. */
struct gs_pystacks *gs_pystacks_new(const struct gs_python *py, char *why, size_t whylen);
void gs_pystacks_free(struct gs_pystacks *ps);

/* A walker for synthetic memory (tests): the built-in 3.9 to 3.12 layout, the address of the
 * pointer to the main interpreter, and the address standing for PyCode_Type. */
struct gs_pystacks *gs_pystacks_synthetic(unsigned minor, uint64_t interp_main, uint64_t code_type);
/* The same with a 3.13+ layout read from a _Py_DebugOffsets image (tests, fuzzing); NULL when the
 * image does not hold together. */
struct gs_pystacks *gs_pystacks_synthetic_do(unsigned minor, const uint8_t *debug_offsets, size_t len,
					     uint64_t interp_main, uint64_t code_type);

/* Optional: reads the 8-byte words at addrs[0, n) into out by one request (process_vm_readv's
 * iovecs); returns how many leading words were read, or -errno. With it, the code objects a walk
 * finds cached are checked (still the object cached?) by one read per thread and sample, not one
 * per code object; without it (tests, the fuzzer), one by one through the walker's reader. */
typedef int (*gs_mem_words_reader)(void *ctx, const uint64_t *addrs, uint64_t *out, int n);
void gs_pystacks_set_words_reader(struct gs_pystacks *ps, gs_mem_words_reader words);

/* Optional: reads n pieces (v[i].len bytes at v[i].addr into v[i].dst) by one request
 * (process_vm_readv's iovecs); returns how many leading pieces were read whole, or -errno. With
 * it, each thread of a sample costs one read for its thread state, its current frame pointer (3.11:
 * the cframe's) and the data-stack pages its innermost frame was in at the last sample, guessed
 * from that sample and used only when the thread state confirms them; without it, one read each. */
struct gs_memv {
	uint64_t addr;
	void *dst;
	size_t len;
};
typedef int (*gs_mem_vreader)(void *ctx, const struct gs_memv *v, int n);
void gs_pystacks_set_vreader(struct gs_pystacks *ps, gs_mem_vreader vread);

/* Walks every thread of the main interpreter; cb receives the thread id and its frames,
 * innermost first. Returns the number of threads walked, or -errno (process gone). */
int gs_pystacks_sample(struct gs_pystacks *ps, gs_mem_reader read, void *ctx,
		       void (*cb)(uint32_t tid, const struct gs_pyframe *f, int n, void *arg), void *arg);

/* Name, file and first line of a code object seen by the walker (cached). 0 or -ENOENT. */
int gs_pystacks_code(struct gs_pystacks *ps, uint64_t code, const char **qualname, const char **filename);

/* The layouts the walker reads with (pyname.h reads thread names with the same). */
const struct gs_pystack_layout *gs_pystacks_layout(const struct gs_pystacks *ps);

/* Counters: samples, torn or failed reads. */
void gs_pystacks_stats(const struct gs_pystacks *ps, uint64_t *walks, uint64_t *errors);
/* Frame reads asked for, and those served from a copy of the pages around an earlier frame of
 * the same sample (frames of 3.11+ lie side by side in their thread's data stack). */
void gs_pystacks_read_stats(const struct gs_pystacks *ps, uint64_t *frame_reads, uint64_t *window_hits);

/* 3.9's co_lnotab and 3.10's co_linetable: the line of the instruction at byte offset (-1: not
 * started, the first line). */
int gs_lnotab_line(const uint8_t *table, size_t len, int firstlineno, int offset);
int gs_linetable310_line(const uint8_t *table, size_t len, int firstlineno, int offset);

/* Decodes a 3.11+ location table: the line of code unit `index`, starting from firstlineno.
 * Returns -1 when the table says "no location" or is malformed. */
int gs_linetable_line(const uint8_t *table, size_t len, int firstlineno, int index);

#endif
