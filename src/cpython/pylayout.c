/* pylayout.c - the layout table and the _Py_DebugOffsets parser (see pylayout.h). Numbers were
 * read with gdb from the DWARF of the builds named in `verified`; the GIL's are also checked at
 * run time against the interpreter's own machine code (python.c), and from 3.13 everything
 * marked (DO) comes from the interpreter's _Py_DebugOffsets. */
#include "cpython/pylayout.h"
#include "base/util.h"

#include <stddef.h>
#include <string.h>

/* PyUnicodeObject and PyBytesObject, the same from 3.9 to 3.12 except the compact-ASCII header
 * size, which 3.12 shrank (no wstr) */
#define STRINGS_39 .bytes_size = 0x10, .bytes_sval = 0x20, .uni_state = 0x20, .uni_length = 0x10, .uni_ascii_size = 0x30
#define STRINGS_312 \
	.bytes_size = 0x10, .bytes_sval = 0x20, .uni_state = 0x20, .uni_length = 0x10, .uni_ascii_size = 0x28

static const struct gs_pylayout layouts[] = {
	{
		.major = 3,
		.minor = 9,
		.debug = 0,
		.gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x160,
		.ceval_gil = 8,
		.interp_main = 0x28,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x4c,
		.tstate_thread_id = 0xb0,
		/* frame_instr is f_lasti, code_qualname co_name (no qualified names before 3.11) */
		.have_stack = 1,
		.stack = { .interp_threads_head = 8,
			   .tstate_next = 8,
			   .tstate_frame = 24,
			   .cframe_current = -1,
			   .frame_previous = 24,
			   .frame_code = 32,
			   .frame_instr = 104,
			   .frame_owner = 0,
			   .owner_skip = 0,
			   .frame_is_entry = -1,
			   .legacy = 9,
			   .code_mask = ~0ull,
			   .code_filename = 104,
			   .code_name = 112,
			   .code_qualname = 112,
			   .code_linetable = 120,
			   .code_firstlineno = 40,
			   .code_adaptive = 0,
			   STRINGS_39 },
		.verified = "3.9.18 (pyenv, DWARF)",
	},
	{
		.major = 3,
		.minor = 10,
		.debug = 0,
		.gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x160,
		.ceval_gil = 8,
		.interp_main = 0x28,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x48,
		.tstate_thread_id = 0xb0,
		.have_stack = 1,
		.stack = { .interp_threads_head = 8,
			   .tstate_next = 8,
			   .tstate_frame = 24,
			   .cframe_current = -1,
			   .frame_previous = 24,
			   .frame_code = 32,
			   .frame_instr = 96,
			   .frame_owner = 0,
			   .owner_skip = 0,
			   .frame_is_entry = -1,
			   .legacy = 10,
			   .code_mask = ~0ull,
			   .code_filename = 104,
			   .code_name = 112,
			   .code_qualname = 112,
			   .code_linetable = 120,
			   .code_firstlineno = 40,
			   .code_adaptive = 0,
			   STRINGS_39 },
		.verified = "3.10.13 (pyenv, DWARF)",
	},
	{
		.major = 3,
		.minor = 11,
		.debug = -1,
		.gil_home = GS_GIL_IN_RUNTIME,
		.gil = 0x168,
		.ceval_gil = 8,
		.drop_request = 0xe6a0,
		.interp_main = 0x30,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x68,
		.tstate_native_tid = 0xa0,
		.tstate_thread_id = 0x98,
		.have_stack = 1,
		.stack = { .interp_threads_head = 0x10,
			   .tstate_next = 8,
			   .tstate_frame = 0x38,
			   .cframe_current = 8,
			   .frame_previous = 0x30,
			   .frame_code = 0x20,
			   .frame_instr = 0x38,
			   .frame_owner = 0x45,
			   .owner_skip = 0,
			   .frame_is_entry = 0x44,
			   .code_mask = ~0ull,
			   .code_filename = 0x70,
			   .code_name = 0x78,
			   .code_qualname = 0x80,
			   .code_linetable = 0x88,
			   .code_firstlineno = 0x48,
			   .code_adaptive = 0xb8,
			   STRINGS_39 },
		.verified = "3.11.7 (pyenv, DWARF), 3.11.2 (Debian, machine code), 3.11.2 Py_DEBUG (DWARF)",
	},
	{
		.major = 3,
		.minor = 12,
		.debug = 0,
		.gil_home = GS_GIL_IN_INTERP,
		.interp_gil = 0x410,
		.interp_ceval_gil = 0x180,
		.main_interp = 0x12a68,
		.drop_request = 0x12a68 + 0x174,
		.interp_main = 0x30,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x174,
		.tstate_native_tid = 0x90,
		.tstate_thread_id = 0x88,
		.have_stack = 1,
		.stack = { .interp_threads_head = 0x48,
			   .tstate_next = 8,
			   .tstate_frame = 0x38,
			   .cframe_current = 0,
			   .frame_previous = 8,
			   .frame_code = 0,
			   .frame_instr = 0x38,
			   .frame_owner = 0x46,
			   .owner_skip = 3,
			   .frame_is_entry = -1,
			   .code_mask = ~0ull,
			   .code_filename = 0x70,
			   .code_name = 0x78,
			   .code_qualname = 0x80,
			   .code_linetable = 0x88,
			   .code_firstlineno = 0x44,
			   .code_adaptive = 0xc0,
			   STRINGS_312 },
		.verified = "3.12.1 (pyenv, DWARF)",
	},
	/* 3.13+: the frame chain is current_frame -> previous, C-owned frames (owner >= 3) mark
	 * the calls of the evaluation loop; 3.14 tags f_executable */
	{
		.major = 3,
		.minor = 13,
		.debug = 0,
		.debug_offsets = 1,
		.gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x18,
		.dropreq_bit = 1,
		.tstate_thread_id = 0x98,
		.stack = { .tstate_next = 8,
			   .cframe_current = -1,
			   .owner_skip = 3,
			   .frame_is_entry = -1,
			   .code_mask = ~0ull },
		.verified = "3.13.0 (pyenv, DWARF), 3.13.5 (Debian, _Py_DebugOffsets)",
	},
	{
		.major = 3,
		.minor = 14,
		.debug = 0,
		.debug_offsets = 1,
		.gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x18,
		.dropreq_bit = 1,
		.stack = { .tstate_next = 8,
			   .cframe_current = -1,
			   .owner_skip = 3,
			   .frame_is_entry = -1,
			   .code_mask = ~3ull },
		.verified = "3.14.10 (Debian, _Py_DebugOffsets)",
	},
	{
		.major = 3,
		.minor = 15,
		.debug = 0,
		.debug_offsets = 1,
		.gil_home = GS_GIL_IN_INTERP,
		.gil_last_holder = 8,
		.gil_locked = 16,
		.tstate_interp = 0x10,
		.dropreq_disp = 0x18,
		.dropreq_bit = 1,
		.stack = { .tstate_next = 8,
			   .cframe_current = -1,
			   .owner_skip = 3,
			   .frame_is_entry = -1,
			   .code_mask = ~3ull },
		.verified = "3.15.2 (Debian, _Py_DebugOffsets)",
	},
};

const struct gs_pylayout *gs_pylayout_find(unsigned major, unsigned minor, int debug)
{
	for (size_t i = 0; i < GS_ARRAY_SIZE(layouts); i++) {
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

/* Where each number sits in _Py_DebugOffsets, per minor version (one row per version, like
 * the table above). All start with cookie, version, free_threaded,
 * runtime_state{size, finalizing, interpreters_head} and interpreter_state{size, ...}; 3.14 adds
 * interpreter_state.threads_main (moving ceval_gil and the GIL fields by 8) and two fields at
 * its end; 3.15 adds thread_state.base_frame, last_profiled_frame and one more before thread_id.
 * Checked against Debian's 3.13.5, 3.14.10 and 3.15.2 (the native thread id read back from a
 * live thread state, the stacks against the interpreters' own tracebacks). */
struct do_pos {
	unsigned minor;
	/* the GIL and the thread state */
	unsigned ceval_gil, gil, locked, holder, ts_size, thread_id, native_tid;
	/* the stack walker */
	unsigned threads_head, ts_frame, fr_previous, fr_code, fr_instr, fr_owner;
	unsigned co_filename, co_name, co_qualname, co_linetable, co_firstlineno, co_adaptive;
	unsigned by_size, by_sval, un_state, un_length, un_ascii;
};

static const struct do_pos do_positions[] = {
	{ .minor = 13,
	  .ceval_gil = 112,
	  .gil = 120,
	  .locked = 136,
	  .holder = 144,
	  .ts_size = 152,
	  .thread_id = 192,
	  .native_tid = 200,
	  .threads_head = 72,
	  .ts_frame = 184,
	  .fr_previous = 232,
	  .fr_code = 240,
	  .fr_instr = 248,
	  .fr_owner = 264,
	  .co_filename = 280,
	  .co_name = 288,
	  .co_qualname = 296,
	  .co_linetable = 304,
	  .co_firstlineno = 312,
	  .co_adaptive = 344,
	  .by_size = 520,
	  .by_sval = 528,
	  .un_state = 544,
	  .un_length = 552,
	  .un_ascii = 560 },
	{ .minor = 14,
	  .ceval_gil = 120,
	  .gil = 128,
	  .locked = 144,
	  .holder = 152,
	  .ts_size = 176,
	  .thread_id = 216,
	  .native_tid = 224,
	  .threads_head = 72,
	  .ts_frame = 208,
	  .fr_previous = 256,
	  .fr_code = 264,
	  .fr_instr = 272,
	  .fr_owner = 288,
	  .co_filename = 320,
	  .co_name = 328,
	  .co_qualname = 336,
	  .co_linetable = 344,
	  .co_firstlineno = 352,
	  .co_adaptive = 384,
	  .by_size = 600,
	  .by_sval = 608,
	  .un_state = 624,
	  .un_length = 632,
	  .un_ascii = 640 },
	{ .minor = 15,
	  .ceval_gil = 120,
	  .gil = 128,
	  .locked = 144,
	  .holder = 152,
	  .ts_size = 176,
	  .thread_id = 240,
	  .native_tid = 248,
	  .threads_head = 72,
	  .ts_frame = 208,
	  .fr_previous = 320,
	  .fr_code = 328,
	  .fr_instr = 336,
	  .fr_owner = 352,
	  .co_filename = 384,
	  .co_name = 392,
	  .co_qualname = 400,
	  .co_linetable = 408,
	  .co_firstlineno = 416,
	  .co_adaptive = 448,
	  .by_size = 696,
	  .by_sval = 704,
	  .un_state = 720,
	  .un_length = 728,
	  .un_ascii = 736 },
};

/* the fixed part: cookie, version, free_threaded, runtime_state.size and interpreters_head,
 * interpreter_state.size */
enum {
	DO_VERSION = 8,
	DO_FREE_THREADED = 16,
	DO_RT_SIZE = 24,
	DO_INTERP_HEAD = 40,
	DO_IS_SIZE = 48,
	DO_MIN = 256
};

_Static_assert(DO_MIN <= GS_PYLAYOUT_DEBUG_OFFSETS_LEN, "the GIL's numbers lie in the stack walker's bytes");

static const struct do_pos *do_pos_find(unsigned minor)
{
	for (size_t i = 0; i < GS_ARRAY_SIZE(do_positions); i++)
		if (do_positions[i].minor == minor)
			return &do_positions[i];
	return NULL;
}

/* The stack walker's numbers: every one an offset inside its object, checked before it is
 * narrowed to 32 bits (they index gilscope's own buffers). */
static int do_stack(struct gs_pylayout *l, const struct do_pos *d, const uint8_t *b, size_t len)
{
	struct gs_pystack_layout s = l->stack;
	const unsigned small[] = { d->ts_frame,       d->native_tid,  d->fr_previous, d->fr_code,     d->fr_instr,
				   d->fr_owner,       d->co_filename, d->co_name,     d->co_qualname, d->co_linetable,
				   d->co_firstlineno, d->co_adaptive, d->by_size,     d->by_sval,     d->un_state,
				   d->un_length,      d->un_ascii };

	if (len < GS_PYLAYOUT_DEBUG_OFFSETS_LEN || memcmp(b, "xdebugpy", 8) != 0)
		return -1;
	for (size_t i = 0; i < GS_ARRAY_SIZE(small); i++)
		if (u64at(b, small[i]) > 4096)
			return -1;
	if (u64at(b, d->threads_head) > (1u << 20))
		return -1;
	s.interp_threads_head = (uint32_t)u64at(b, d->threads_head);
	s.tstate_frame = (uint32_t)u64at(b, d->ts_frame);
	s.frame_previous = (uint32_t)u64at(b, d->fr_previous);
	s.frame_code = (uint32_t)u64at(b, d->fr_code);
	s.frame_instr = (uint32_t)u64at(b, d->fr_instr);
	s.frame_owner = (uint32_t)u64at(b, d->fr_owner);
	s.code_filename = (uint32_t)u64at(b, d->co_filename);
	s.code_name = (uint32_t)u64at(b, d->co_name);
	s.code_qualname = (uint32_t)u64at(b, d->co_qualname);
	s.code_linetable = (uint32_t)u64at(b, d->co_linetable);
	s.code_firstlineno = (uint32_t)u64at(b, d->co_firstlineno);
	s.code_adaptive = (uint32_t)u64at(b, d->co_adaptive);
	s.bytes_size = (uint32_t)u64at(b, d->by_size);
	s.bytes_sval = (uint32_t)u64at(b, d->by_sval);
	s.uni_state = (uint32_t)u64at(b, d->un_state);
	s.uni_length = (uint32_t)u64at(b, d->un_length);
	s.uni_ascii_size = (uint32_t)u64at(b, d->un_ascii);
	/* the numbers must be small offsets inside their objects */
	if (s.frame_owner > 256 || s.code_adaptive > 1024 || s.uni_ascii_size > 128 ||
	    s.uni_state >= s.uni_ascii_size || s.uni_ascii_size < 8 || s.uni_length > s.uni_ascii_size - 8 ||
	    s.bytes_sval > 128)
		return -1;
	l->stack = s;
	l->tstate_native_tid = (uint32_t)u64at(b, d->native_tid);
	l->have_stack = 1;
	return 0;
}

int gs_pylayout_stack_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned minor)
{
	const struct do_pos *d = do_pos_find(minor);
	return d ? do_stack(l, d, buf, len) : -1;
}

/* The GIL's and the thread state's numbers. */
static int do_gil(struct gs_pylayout *l, const struct do_pos *dp, const uint8_t *buf, int free_threaded)
{
	uint64_t rt_size, is_size, ts_size, gil, locked, holder, ceval_gil, head, ntid, tid;
	uint32_t shift = free_threaded ? 8u : 0u; /* the `enabled` int of free-threaded builds */

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
	 * them (shifted in free-threaded builds) */
	/* (written as subtractions: a huge number from the file must not wrap around) */
	if (rt_size < 1024 || rt_size > (1u << 24) || is_size < 1024 || is_size > (1u << 24) || ts_size < 64 ||
	    ts_size > 65536 || head > rt_size - 8 || ceval_gil > is_size - 8 || gil > is_size - 64 ||
	    locked != gil + l->gil_locked + shift || holder != gil + l->gil_last_holder + shift || ntid > ts_size - 8 ||
	    tid > ts_size - 8)
		/* (sizes are checked first, so `size - 8` cannot wrap; `offset + 8` could) */
		return -1;
	l->interp_gil = (uint32_t)gil;
	l->interp_ceval_gil = (uint32_t)ceval_gil;
	l->interp_main = (uint32_t)head + 8;
	l->tstate_native_tid = (uint32_t)ntid;
	l->tstate_thread_id = (uint32_t)tid;
	l->gil_locked += shift;
	l->gil_last_holder += shift;
	return 0;
}

int gs_pylayout_from_debug_offsets(struct gs_pylayout *l, const uint8_t *buf, size_t len, unsigned major,
				   unsigned minor, int *free_threaded, const char **reason)
{
	const struct do_pos *dp = major == 3 ? do_pos_find(minor) : NULL;
	uint64_t ver;

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
	if (do_gil(l, dp, buf, *free_threaded) < 0) {
		*reason = "_Py_DebugOffsets holds numbers that do not fit together";
		return -1;
	}
	l->have_stack = 0;
	(void)do_stack(l, dp, buf, len);
	return 0;
}
