/* pylayout.h - per-CPython-version layouts, as data. Adding a version = adding a row. */
#ifndef GS_PYLAYOUT_H
#define GS_PYLAYOUT_H

#include <stddef.h>
#include <stdint.h>

enum gs_gil_home {
	GS_GIL_IN_RUNTIME = 1, /* 3.9-3.11: _PyRuntime.ceval.gil, one static address */
	GS_GIL_IN_INTERP,      /* 3.12+: interp->_gil, per interpreter (PEP 684) */
};

struct gs_pylayout {
	unsigned major, minor;
	int debug;              /* -1 any, 0 release, 1 Py_DEBUG */
	int debug_offsets;      /* 3.13+: the numbers marked (DO) come from _Py_DebugOffsets */
	enum gs_gil_home gil_home;
	/* GS_GIL_IN_RUNTIME: offsets from _PyRuntime */
	uint32_t gil;           /* struct _gil_runtime_state */
	uint32_t ceval_gil;     /* offset of the GIL inside the ceval struct drop_gil receives */
	/* GS_GIL_IN_INTERP: offsets inside PyInterpreterState */
	uint32_t interp_gil;    /* the embedded _gil (DO) */
	uint32_t interp_ceval_gil; /* the ceval.gil pointer (DO) */
	uint32_t main_interp;   /* offset of _main_interpreter in _PyRuntime, 0 when not fixed */
	/* the main interpreter's gil_drop_request, offset from _PyRuntime; 0: not static */
	uint32_t drop_request;
	uint32_t interp_main;   /* _PyRuntime.interpreters.main (DO: interpreters_head + 8) */
	/* offsets inside struct _gil_runtime_state */
	uint32_t gil_last_holder, gil_locked;
	/* offsets inside PyThreadState */
	uint32_t tstate_native_tid; /* (DO); 0: none (3.9, 3.10: use thread_id) */
	uint32_t tstate_thread_id;  /* pthread_self() */
	uint32_t tstate_interp;     /* PyThreadState.interp (0x10 in 3.9 to 3.15) */
	const char *verified;   /* where the numbers were checked */
};

/* The layout for version major.minor (debug build or not), or NULL when unknown. */
const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug);

/* Fills the (DO) fields from a _Py_DebugOffsets image (len bytes from the start of
 * _PyRuntime). Returns 0, or -1 with a reason when the cookie, version or numbers do not hold
 * together; *free_threaded receives its flag. */
int gs_pylayout_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned major,
				   unsigned minor, int *free_threaded, const char **reason);

#endif
