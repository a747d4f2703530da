/* pylayout.h - per-CPython-version layouts, as data. Adding a version = adding a row. */
#ifndef GS_PYLAYOUT_H
#define GS_PYLAYOUT_H

#include <stdint.h>

enum gs_gil_home {
	GS_GIL_IN_RUNTIME = 1, /* 3.9-3.11: _PyRuntime.ceval.gil, static address */
	GS_GIL_IN_INTERP,      /* 3.12+: interp->_gil (main interpreter embedded in _PyRuntime) */
};

struct gs_pylayout {
	unsigned major, minor;
	int debug;             /* -1 any, 0 release, 1 Py_DEBUG */
	enum gs_gil_home gil_home;
	/* offsets from _PyRuntime */
	uint32_t gil;          /* struct _gil_runtime_state of the main interpreter */
	uint32_t ceval_gil;    /* offset of the GIL inside the struct drop_gil receives (ceval) */
	uint32_t drop_request; /* the main interpreter's gil_drop_request (int) */
	uint32_t interp_head;  /* runtime->interpreters.head */
	/* offsets inside struct _gil_runtime_state */
	uint32_t gil_interval, gil_last_holder, gil_locked, gil_switch_number;
	/* offsets inside PyInterpreterState / PyThreadState */
	uint32_t interp_threads_head, tstate_next, tstate_native_tid;
	const char *verified; /* where the numbers were checked */
};

/* The layout for version major.minor (debug build or not), or NULL when unknown. */
const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug);

#endif
