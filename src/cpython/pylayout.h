/* pylayout.h - everything gilscope knows about where CPython keeps things, per version, as data.
 *
 * One table, one row per CPython minor version (and build kind): the offsets the GIL-location
 * code (python.c: the GIL, its holder, the thread id) and the stack walker (pystack.c: thread
 * states, frames, code objects, strings) read. Adding a version = adding a row; neither
 * python.c nor pystack.c changes. Rows for 3.9 to 3.12 hold every number (read with gdb from
 * the DWARF of the builds named in `verified`); rows for 3.13+ hold what _Py_DebugOffsets does
 * not say, and gs_pylayout_from_debug_offsets, the one parser of that structure, fills the rest
 * from the interpreter's own image. Every number that parser accepts is checked to lie inside
 * its structure first: the image comes from the target, which is not trusted.
 */
#ifndef GS_PYLAYOUT_H
#define GS_PYLAYOUT_H

#include <stddef.h>
#include <stdint.h>

enum gs_gil_home {
	GS_GIL_IN_RUNTIME = 1, /* 3.9-3.11: _PyRuntime.ceval.gil, one static address */
	GS_GIL_IN_INTERP,      /* 3.12+: interp->_gil, per interpreter (PEP 684) */
};

/* What the stack walker reads beyond the thread ids (pystack.c). (DO): from _Py_DebugOffsets
 * in 3.13+. */
struct gs_pystack_layout {
	uint32_t interp_threads_head; /* PyInterpreterState.threads.head (DO) */
	uint32_t tstate_next;         /* PyThreadState.next */
	uint32_t tstate_frame;        /* 3.9/3.10: frame; 3.11/3.12: the cframe pointer; 3.13+: current_frame (DO) */
	int32_t cframe_current;       /* offset of current_frame in the cframe, -1: tstate_frame is the frame */
	uint32_t frame_previous, frame_code, frame_instr, frame_owner; /* (DO) */
	int owner_skip;         /* frames whose owner is >= this belong to C code: skipped (0: none) */
	int32_t frame_is_entry; /* 3.11: the is_entry flag (-1: entries are told by C-owned frames) */
	/* 3.9 and 3.10: PyFrameObject chains, each frame its own call of the evaluation loop; the
	 * thread's TID is read through pthread_self() (gs_pylayout.tstate_thread_id) */
	int legacy;         /* 0: 3.11+; 9: f_lasti in bytes + co_lnotab; 10: f_lasti in code units + co_linetable */
	uint64_t code_mask; /* 3.14+: f_executable is a tagged _PyStackRef */
	/* PyCodeObject (DO); before 3.11 code_qualname is co_name and code_linetable co_lnotab / co_linetable */
	uint32_t code_filename, code_name, code_qualname, code_linetable, code_firstlineno, code_adaptive;
	uint32_t bytes_size, bytes_sval;                /* PyBytesObject (DO) */
	uint32_t uni_state, uni_length, uni_ascii_size; /* PyUnicodeObject, compact ASCII (DO) */
};

struct gs_pylayout {
	unsigned major, minor;
	int debug;         /* -1 any, 0 release, 1 Py_DEBUG */
	int debug_offsets; /* 3.13+: the numbers marked (DO) come from _Py_DebugOffsets */
	enum gs_gil_home gil_home;
	/* GS_GIL_IN_RUNTIME: offsets from _PyRuntime */
	uint32_t gil;       /* struct _gil_runtime_state */
	uint32_t ceval_gil; /* offset of the GIL inside the ceval struct drop_gil receives */
	/* GS_GIL_IN_INTERP: offsets inside PyInterpreterState */
	uint32_t interp_gil;       /* the embedded _gil (DO) */
	uint32_t interp_ceval_gil; /* the ceval.gil pointer (DO) */
	uint32_t main_interp;      /* offset of _main_interpreter in _PyRuntime, 0 when not fixed */
	/* the main interpreter's gil_drop_request, offset from _PyRuntime; 0: not static */
	uint32_t drop_request;
	uint32_t interp_main; /* _PyRuntime.interpreters.main (DO: interpreters_head + 8) */
	/* offsets inside struct _gil_runtime_state */
	uint32_t gil_last_holder, gil_locked;
	/* offsets inside PyThreadState */
	uint32_t tstate_native_tid; /* (DO); 0: none (3.9, 3.10: use thread_id) */
	uint32_t tstate_thread_id;  /* pthread_self() (DO) */
	uint32_t tstate_interp;     /* PyThreadState.interp (0x10 in 3.9 to 3.15) */
	/* the GIL drop request (dropreq.h): offset of interp->ceval.gil_drop_request (3.9-3.12, an int:
	 * dropreq_bit 0), or of tstate->eval_breaker (3.13+, whose bit dropreq_bit it is); 0 unknown */
	uint32_t dropreq_disp;
	uint64_t dropreq_bit;
	/* the stack walker's offsets; have_stack: they are all known (3.13+: _Py_DebugOffsets
	 * held them and they fit together) */
	int have_stack;
	struct gs_pystack_layout stack;
	const char *verified; /* where the numbers were checked */
};

/* The layout for version major.minor (debug build or not), or NULL when unknown. */
const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug);

/* Bytes of _PyRuntime that hold every number gs_pylayout_from_debug_offsets reads. */
#define GS_PYLAYOUT_DEBUG_OFFSETS_LEN 1024u

/* Fills the (DO) fields of l (a row of the table) from a _Py_DebugOffsets image (len bytes from
 * the start of _PyRuntime). Returns 0, or -1 with a reason when the cookie, version or the GIL
 * and thread-state numbers do not hold together; *free_threaded receives its flag. The stack
 * walker's numbers are read too when the image is GS_PYLAYOUT_DEBUG_OFFSETS_LEN bytes or more:
 * have_stack says whether they held together (their failure alone is not an error: the GIL is
 * still recorded, without stacks). */
int gs_pylayout_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned major,
				   unsigned minor, int *free_threaded, const char **reason);

/* The stack walker's part of that parser on its own (synthetic images in tests and fuzzing,
 * which need not hold valid GIL numbers): fills l->stack and l->tstate_native_tid and sets
 * have_stack. 0, or -1 (l unchanged) when the cookie is missing, the image is shorter than
 * GS_PYLAYOUT_DEBUG_OFFSETS_LEN or the numbers are not small offsets inside their objects. */
int gs_pylayout_stack_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned minor);

#endif
