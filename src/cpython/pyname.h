/* pyname.h - Python thread names and the GIL's switch interval, read from another process's memory.
 *
 * A threading.Thread runs under Thread._bootstrap_inner(self): the first local of that frame
 * (f_localsplus[0] in 3.9 and 3.10, localsplus[0] from 3.11, a tagged _PyStackRef from 3.14) is
 * the Thread, and its `_name` attribute is the name Python code sees (Thread.name, renames
 * included); the main thread's is threading._main_thread's, found through that frame's globals
 * (the threading module's). The attribute is found the way the version keeps instance attributes (pylayout.h,
 * struct gs_pyobj_layout): a dict at tp_dictoffset (3.9, 3.10), a values array before the object
 * (3.11), a tagged dict-or-values word (3.12), values inline after the object whose keys are the
 * type's shared ht_cached_keys (3.13+), or a materialised dict. Keys are compared by content; the
 * name is decoded from compact ASCII, Latin-1, UCS-2 or UCS-4 into UTF-8 (at most
 * GS_PYNAME_MAX - 1 bytes, cut at a character). The switch interval is the `interval` field of
 * the main interpreter's GIL (microseconds, what sys.setswitchinterval sets).
 *
 * Every read goes through a gs_mem_reader and is bounded: counts, sizes, offsets and indexes
 * from the target are checked before they are used, and a failed or torn read is an error
 * return, never a crash (fuzz/fuzz_pyname.c). Pure otherwise: no state, no allocation (the
 * memo of gs_pyname_thread_memo is the caller's).
 */
#ifndef GS_PYNAME_H
#define GS_PYNAME_H

#include <stddef.h>
#include <stdint.h>

#include "cpython/python.h"

#define GS_PYNAME_MAX 128 /* bytes of a recorded thread name, with its NUL */

/* Is the code object named qualname (co_name before 3.11) in filename threading's
 * Thread._bootstrap_inner, the frame whose first local is the Thread? */
int gs_pyname_is_bootstrap(const char *qualname, const char *filename);

/* The `_name` of the Thread that the _bootstrap_inner frame at `frame` runs, into out (outlen
 * >= 8 bytes, NUL-terminated UTF-8). Returns its length, -ENOENT when the memory does not hold
 * a Thread with a string name (a torn read looks the same), or the reader's -errno (-ESRCH:
 * the process is gone). */
int gs_pyname_thread(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read, void *ctx,
		     uint64_t frame, char *out, size_t outlen);

/* Where a Thread's `_name` was found last: its keys object (the class's shared keys from 3.11),
 * the entry's address and layout, and the key (an interned str). Threads of one class find it at
 * the same place: the next lookup reads that entry alone (is its key still that str?) instead of
 * the keys object and each key before it. Zeroed: nothing known. */
struct gs_pyname_memo {
	uint64_t keys, entry, key, index, esize, koff, voff;
};

/* gs_pyname_thread with a memo (the caller's, for every thread of a process), updated. */
int gs_pyname_thread_memo(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read,
			  void *ctx, uint64_t frame, struct gs_pyname_memo *memo, char *out, size_t outlen);

/* The main thread's name (threading._main_thread._name, "MainThread" unless renamed), found
 * through the threading module's globals, which the _bootstrap_inner frame at `frame` runs
 * with. Same returns as gs_pyname_thread. */
int gs_pyname_main_thread(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read,
			  void *ctx, uint64_t frame, char *out, size_t outlen);

/* The switch interval in microseconds of the main interpreter's GIL (runtime: _PyRuntime's
 * address). 0, -ENOENT (not initialised yet, or an implausible value), or the reader's -errno. */
int gs_pyname_switch_interval(const struct gs_pylayout *l, uint64_t runtime, gs_mem_reader read, void *ctx,
			      uint64_t *us);

#endif
