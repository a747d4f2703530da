/* pylayout.c - the layout table. Numbers were read with gdb from the DWARF of the builds
 * named in `verified`; each is also checked at run time against the interpreter's own machine
 * code (python.c), and from 3.13 against the interpreter's _Py_DebugOffsets. */
#include "cpython/pylayout.h"

#include <stddef.h>
#include <string.h>

static const struct gs_pylayout layouts[] = {
	{
		.major = 3, .minor = 9, .debug = 0, .gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x160, .ceval_gil = 8, .interp_main = 0x28,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10, .tstate_thread_id = 0xb0,
		.verified = "3.9.18 (pyenv, DWARF)",
	},
	{
		.major = 3, .minor = 10, .debug = 0, .gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x160, .ceval_gil = 8, .interp_main = 0x28,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10, .tstate_thread_id = 0xb0,
		.verified = "3.10.13 (pyenv, DWARF)",
	},
	{
		.major = 3, .minor = 11, .debug = -1, .gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x168, .ceval_gil = 8, .drop_request = 0xe6a0, .interp_main = 0x30,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10, .tstate_native_tid = 0xa0, .tstate_thread_id = 0x98,
		.verified = "3.11.7 (pyenv, DWARF), 3.11.2 (Debian, machine code), 3.11.2 Py_DEBUG (DWARF)",
	},
	{
		.major = 3, .minor = 12, .debug = 0, .gil_home = GS_GIL_IN_INTERP,
		.interp_gil = 0x410, .interp_ceval_gil = 0x180, .main_interp = 0x12a68,
		.drop_request = 0x12a68 + 0x174, .interp_main = 0x30,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10, .tstate_native_tid = 0x90, .tstate_thread_id = 0x88,
		.verified = "3.12.1 (pyenv, DWARF)",
	},
	{
		.major = 3, .minor = 13, .debug = 0, .debug_offsets = 1, .gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10, .tstate_thread_id = 0x98,
		.verified = "3.13.0 (pyenv, DWARF), 3.13.5 (Debian, _Py_DebugOffsets)",
	},
	{
		.major = 3, .minor = 14, .debug = 0, .debug_offsets = 1, .gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10,
		.verified = "3.14.10 (Debian, _Py_DebugOffsets)",
	},
	{
		.major = 3, .minor = 15, .debug = 0, .debug_offsets = 1, .gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8, .gil_locked = 16, .tstate_interp = 0x10,
		.verified = "3.15.2 (Debian, _Py_DebugOffsets)",
	},
};

const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		const struct gs_pylayout *l = &layouts[i];
		if (l->major == major && l->minor == minor && (l->debug < 0 || l->debug == debug))
			return l;
	}
	return NULL;
}

static uint64_t u64at(const uint8_t *buf, size_t off)
{
	uint64_t v;
	memcpy(&v, buf + off, 8);
	return v;
}

/* Positions inside _Py_DebugOffsets, per minor version. All start with cookie, version,
 * free_threaded, runtime_state{size, finalizing, interpreters_head} and
 * interpreter_state{size, ...}; 3.14 adds interpreter_state.threads_main (moving ceval_gil and
 * the GIL fields by 8) and two fields at its end; 3.15 adds thread_state.base_frame,
 * last_profiled_frame and one more before thread_id. Checked against Debian's 3.13.5, 3.14.10
 * and 3.15.2 (the native thread id read back from a live thread state). */
struct do_pos {
	unsigned minor;
	unsigned ceval_gil, gil, locked, holder, ts_size, thread_id, native_tid;
};

static const struct do_pos do_positions[] = {
	{ 13, 112, 120, 136, 144, 152, 192, 200 },
	{ 14, 120, 128, 144, 152, 176, 216, 224 },
	{ 15, 120, 128, 144, 152, 176, 240, 248 },
};

enum { DO_VERSION = 8, DO_FREE_THREADED = 16, DO_RT_SIZE = 24, DO_INTERP_HEAD = 40, DO_IS_SIZE = 48, DO_MIN = 256 };

int gs_pylayout_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned major,
				   unsigned minor, int *free_threaded, const char **reason)
{
	uint64_t ver, rt_size, is_size, ts_size, gil, locked, holder, ceval_gil, head, ntid, tid;
	const struct do_pos *dp = NULL;
	for (size_t i = 0; i < sizeof(do_positions) / sizeof(do_positions[0]); i++)
		if (do_positions[i].minor == minor && major == 3)
			dp = &do_positions[i];
	if (!dp) {
		*reason = "this gilscope does not know the _Py_DebugOffsets layout of that version";
		return -1;
	}
	if (len < DO_MIN || memcmp(buf, "xdebugpy", 8) != 0) {
		*reason = "no _Py_DebugOffsets cookie at the start of _PyRuntime";
		return -1;
	}
	ver = u64at(buf, DO_VERSION);
	if ((ver >> 24) != major || ((ver >> 16) & 0xff) != minor) {
		*reason = "_Py_DebugOffsets names another Python version";
		return -1;
	}
	*free_threaded = u64at(buf, DO_FREE_THREADED) != 0;
	rt_size = u64at(buf, DO_RT_SIZE);
	is_size = u64at(buf, DO_IS_SIZE);
	ts_size = u64at(buf, dp->ts_size);
	head = u64at(buf, DO_INTERP_HEAD);
	ceval_gil = u64at(buf, dp->ceval_gil);
	gil = u64at(buf, dp->gil);
	locked = u64at(buf, dp->locked);
	holder = u64at(buf, dp->holder);
	tid = u64at(buf, dp->thread_id);
	ntid = u64at(buf, dp->native_tid);
	/* every offset inside its structure; the GIL fields where struct _gil_runtime_state has
	 * them (shifted by the `enabled` int in free-threaded builds) */
	/* (written as subtractions: a huge number from the file must not wrap around) */
	if (rt_size < 1024 || rt_size > (1u << 24) || is_size < 1024 || is_size > (1u << 24) || ts_size < 64 ||
	    ts_size > 65536 || head > rt_size - 8 || ceval_gil > is_size - 8 || gil > is_size - 64 ||
	    locked != gil + l->gil_locked + (*free_threaded ? 8u : 0u) ||
	    holder != gil + l->gil_last_holder + (*free_threaded ? 8u : 0u) || ntid > ts_size - 8 || tid > ts_size - 8) {
		/* (sizes are checked first, so `size - 8` cannot wrap; `offset + 8` could) */
		*reason = "_Py_DebugOffsets holds numbers that do not fit together";
		return -1;
	}
	l->interp_gil = (uint32_t)gil;
	l->interp_ceval_gil = (uint32_t)ceval_gil;
	l->interp_main = (uint32_t)head + 8;
	l->tstate_native_tid = (uint32_t)ntid;
	l->tstate_thread_id = (uint32_t)tid;
	if (*free_threaded) {
		l->gil_locked += 8;
		l->gil_last_holder += 8;
	}
	return 0;
}
