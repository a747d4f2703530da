/* python.h - finding CPython in an ELF image and in a live process: version, build kind, the
 * layout (pylayout.h, completed from _Py_DebugOffsets from 3.13), take_gil (where a wait for
 * the GIL starts), and the instructions that store to the GIL's `locked` field (where the
 * uprobes or inline probes see it taken and released), each store checked against the layout
 * by decoding the interpreter's machine code (x86.h). Also: who holds the GIL now, read from
 * the process's memory through a gs_mem_reader (the seam that tests and the fuzzer use). */
#ifndef GS_PYTHON_H
#define GS_PYTHON_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/dropreq.h"
#include "cpython/pylayout.h"

#define GS_MAX_SITES 16

/* A machine instruction that stores to gil->locked: a uprobe just after it fires the moment
 * the GIL is taken (value 1) or released (value 0). */
struct gs_site {
	uint64_t vaddr;  /* where the uprobe goes: the first branch/call after the store */
	uint64_t offset; /* its file offset */
	int value;       /* the value stored */
	uint64_t store;  /* the store instruction itself (inline probes replace it) */
	unsigned store_len;
	uint8_t store_bytes[15];
};

struct gs_pyimage {
	char path[PATH_MAX]; /* as the process names it (its maps): shown, and matched against its maps */
	char file[PATH_MAX]; /* the name gilscope opens it by (gs_proc_open_mapped: the same file, checked) */
	unsigned major, minor, micro;
	char version[32]; /* "3.11.7" */
	int debug;        /* Py_DEBUG build */
	int shared;       /* the runtime lives in a shared library (libpython) */
	int stripped;     /* no .symtab */
	char build_id[129];
	uint64_t runtime_vaddr;   /* _PyRuntime */
	uint64_t take_gil_vaddr;  /* entry of take_gil */
	uint64_t take_gil_offset; /* its file offset (uprobe_events) */
	char take_gil_how[600];   /* ".symtab", "MiniDebugInfo ...", "debug file ...", "call-target analysis (...)" */
	char symbols_from[600];   /* where static symbols come from (elfsym.h) */
	int layout_checked;       /* the locked=1 store in take_gil matched the layout */
	struct gs_site sites[GS_MAX_SITES];
	int nsites, nacquire, nrelease;
	uint64_t drop_gil_vaddr; /* the out-of-line drop_gil, 0 if unknown */
	/* take_gil's first whole instructions covering >= 5 bytes, relocatable (no branch, no
	 * RIP-relative operand, no jump into them): what an inline probe moves out. 0 if none. */
	unsigned prologue_len;
	uint8_t prologue[20];
	int free_threaded;         /* a free-threaded (no-GIL) build: _Py_DebugOffsets.free_threaded */
	struct gs_dropreq dropreq; /* where the drop request is set and reset (dropreq.h) */
	int have_layout;
	struct gs_pylayout layout; /* the table row, completed from _Py_DebugOffsets (3.13+) */
	char layout_source[64];    /* "built-in table" / "_Py_DebugOffsets" */
};

/* Analyses one ELF file. Returns 0 (a CPython runtime with a known layout), -ENOENT (not a
 * CPython runtime: no _PyRuntime), -ENOTSUP (CPython, but version or layout unknown; the
 * image fields that could be read are filled), or another -errno. why receives one sentence. */
int gs_pyimage_analyse(const char *path, struct gs_pyimage *img, char *why, size_t whylen);

/* The same on file, a name for the file that a process maps as path (whose name tells the
 * version of 3.9 and 3.10 builds and whether the runtime is a libpython). */
int gs_pyimage_analyse_as(const char *file, const char *path, struct gs_pyimage *img, char *why, size_t whylen);

/* The call-target analysis used for stripped images, on its own (tests compare it with the
 * symbol table of unstripped builds). 0 or -errno. */
int gs_pyimage_take_gil_by_calls(const char *path, uint64_t *addr);

struct gs_python {
	struct gs_pyimage img;
	pid_t pid;
	uint64_t bias;         /* runtime address = vaddr + bias */
	uint64_t runtime;      /* address of _PyRuntime in the process */
	uint64_t drop_request; /* address of the main interpreter's gil_drop_request, 0 if not static */
};

/* Finds the CPython runtime mapped into pid (its executable, or a libpython it maps), read
 * through the process's own view of its files (gs_proc_open_mapped). Same returns as
 * gs_pyimage_analyse, and -ESTALE when the runtime's file cannot be reached (why says whether
 * it was deleted after start, replaced since it started, or is not visible from here).
 * gs_python_find_cached: the same, with the image's analysis taken from cache (NULL: none) when
 * the same file was analysed before, and kept there when it succeeds. */
struct gs_pyimage_cache; /* imgcache.h */
int gs_python_find_cached(pid_t pid, struct gs_python *py, struct gs_pyimage_cache *cache, char *why, size_t whylen);
static inline int gs_python_find(pid_t pid, struct gs_python *py, char *why, size_t whylen)
{
	return gs_python_find_cached(pid, py, NULL, why, whylen);
}

/* The Linux TID of the thread holding the main interpreter's GIL right now (the process must
 * be initialised and stopped), 0 when free, -errno when unknown. */
long gs_python_gil_holder(const struct gs_python *py);

/* The same walk over any memory: read(ctx, addr, dst, len) returns 0 or -errno. The seam lets
 * tests run it on synthetic memory built from each layout. */
typedef int (*gs_mem_reader)(void *ctx, uint64_t addr, void *dst, size_t len);
long gs_gil_holder_walk(const struct gs_pylayout *l, uint64_t runtime, gs_mem_reader read, void *ctx);

#endif
