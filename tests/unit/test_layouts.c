/* Unit tests: the per-version layouts, _Py_DebugOffsets parsing (3.13-3.15, free-threaded
 * included) on synthetic images, and the GIL-holder walk over synthetic memory of each layout;
 * that the merged table and parser give the numbers the two old ones (pylayout.c's and
 * pystack.c's) gave, for every version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cpython/pylayout.h"
#include "cpython/python.h"
#include "cpython/pystack.h"
#include "probe/x86_glibc.h"

static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

/* A _Py_DebugOffsets image as CPython 3.minor lays it out (positions from pylayout.c's
 * do_positions, values as Debian's builds have them). */
static void make_do(uint8_t *b, unsigned minor, int free_threaded)
{
	unsigned gil_pos = minor == 13 ? 120 : 128, ceval_pos = gil_pos - 8, ts = minor == 13 ? 152 : 176;
	unsigned tid_pos = minor == 15 ? 240 : ts + 40, ntid_pos = tid_pos + 8;
	uint64_t gil = 0x1e48, shift = free_threaded ? 8 : 0;
	memset(b, 0, 512);
	memcpy(b, "xdebugpy", 8);
	put64(b, 8, 0x03000000ull | (uint64_t)minor << 16 | 0x05f0);
	put64(b, 16, (uint64_t)free_threaded);
	put64(b, 24, 0x452f0); /* sizeof(_PyRuntimeState) */
	put64(b, 40, 0x278);   /* interpreters.head */
	put64(b, 48, 0x2f9a0); /* sizeof(PyInterpreterState) */
	put64(b, ceval_pos, 0x10);
	put64(b, gil_pos, gil);
	put64(b, gil_pos + 16, gil + 16 + shift);
	put64(b, gil_pos + 24, gil + 8 + shift);
	put64(b, ts, 0x130);
	put64(b, tid_pos, 0x98);
	put64(b, ntid_pos, 0xa0);
}

static void test_debug_offsets_each_version(void **state)
{
	(void)state;
	for (unsigned minor = 13; minor <= 15; minor++) {
		uint8_t b[512];
		struct gs_pylayout l = *gs_pylayout_find(3, minor, 0);
		const char *reason = NULL;
		int ft = -1;
		make_do(b, minor, 0);
		assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, minor, &ft, &reason), 0);
		assert_int_equal(ft, 0);
		assert_int_equal(l.interp_gil, 0x1e48);
		assert_int_equal(l.interp_ceval_gil, 0x10);
		assert_int_equal(l.interp_main, 0x280);
		assert_int_equal(l.tstate_native_tid, 0xa0);
		assert_int_equal(l.gil_locked, 16);
	}
}

static void test_debug_offsets_free_threaded(void **state)
{
	uint8_t b[512];
	struct gs_pylayout l = *gs_pylayout_find(3, 14, 0);
	const char *reason = NULL;
	int ft = 0;
	(void)state;
	make_do(b, 14, 1);
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 14, &ft, &reason), 0);
	assert_int_equal(ft, 1);
	/* struct _gil_runtime_state starts with `int enabled` in free-threaded builds */
	assert_int_equal(l.gil_locked, 24);
	assert_int_equal(l.gil_last_holder, 16);
}

static void test_debug_offsets_rejected(void **state)
{
	uint8_t b[512];
	struct gs_pylayout l = *gs_pylayout_find(3, 13, 0);
	const char *reason = NULL;
	int ft;
	(void)state;
	make_do(b, 13, 0);
	memcpy(b, "xdebugpz", 8); /* bad cookie */
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 13, &ft, &reason), -1);
	assert_non_null(strstr(reason, "cookie"));
	make_do(b, 13, 0);
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 14, &ft, &reason), -1); /* version */
	assert_non_null(strstr(reason, "version"));
	make_do(b, 13, 0);
	put64(b, 136, 0x9999); /* locked not where the GIL struct puts it */
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 13, &ft, &reason), -1);
	assert_non_null(strstr(reason, "do not fit"));
	make_do(b, 13, 0);
	put64(b, 48, 1ull << 40); /* absurd interpreter size */
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 13, &ft, &reason), -1);
	make_do(b, 13, 0);
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, 100, 3, 13, &ft, &reason), -1); /* short */
	/* a version this gilscope has no positions for */
	assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, 16, &ft, &reason), -1);
}

static void test_table(void **state)
{
	(void)state;
	for (unsigned minor = 9; minor <= 15; minor++) {
		const struct gs_pylayout *l = gs_pylayout_find(3, minor, 0);
		assert_non_null(l);
		assert_int_equal(l->gil_locked, 16);
		assert_int_equal(l->gil_last_holder, 8);
		assert_int_equal(l->gil_home, minor <= 11 ? GS_GIL_IN_RUNTIME : GS_GIL_IN_INTERP);
		assert_int_equal(l->debug_offsets, minor >= 13);
	}
	assert_null(gs_pylayout_find(3, 8, 0));
	assert_null(gs_pylayout_find(3, 16, 0));
	assert_null(gs_pylayout_find(3, 12, 1)); /* no debug-build layout for 3.12 */
	assert_non_null(gs_pylayout_find(3, 11, 1));
}

/* Synthetic memory: a flat buffer standing for addresses [BASE, BASE + size). */
#define BASE 0x10000000ull
struct fakemem {
	uint8_t b[0x40000];
	int reads;
};

static int fake_read(void *ctx, uint64_t addr, void *dst, size_t len)
{
	struct fakemem *m = ctx;
	m->reads++;
	if (addr < BASE || addr - BASE + len > sizeof(m->b))
		return -14; /* -EFAULT: as for an unmapped address */
	memcpy(dst, m->b + (addr - BASE), len);
	return 0;
}

static void poke64(struct fakemem *m, uint64_t addr, uint64_t v) { memcpy(m->b + (addr - BASE), &v, 8); }
static void poke32(struct fakemem *m, uint64_t addr, uint32_t v) { memcpy(m->b + (addr - BASE), &v, 4); }

/* Builds the runtime -> (interpreter) -> GIL -> thread state chain of layout l, with the GIL
 * held by TID 4242, and checks the walk finds it; then frees the GIL, then breaks a pointer. */
static void holder_case(const struct gs_pylayout *l)
{
	static struct fakemem m;
	uint64_t rt = BASE + 0x1000, interp = BASE + 0x20000, tstate = BASE + 0x30000, pthread = BASE + 0x38000, gil;
	memset(&m, 0, sizeof(m));
	if (l->gil_home == GS_GIL_IN_RUNTIME) {
		gil = rt + l->gil;
	} else {
		gil = interp + (l->interp_gil ? l->interp_gil : 0x400);
		poke64(&m, rt + l->interp_main, interp);
		poke64(&m, interp + l->interp_ceval_gil, gil);
	}
	poke32(&m, gil + l->gil_locked, 1);
	poke64(&m, gil + l->gil_last_holder, tstate);
	if (l->tstate_native_tid) {
		poke64(&m, tstate + l->tstate_native_tid, 4242);
	} else {
		poke64(&m, tstate + l->tstate_thread_id, pthread);
		poke32(&m, pthread + GS_GLIBC_PTHREAD_TID_OFFSET, 4242);
	}
	assert_int_equal(gs_gil_holder_walk(l, rt, fake_read, &m), 4242);
	poke32(&m, gil + l->gil_locked, 0);
	assert_int_equal(gs_gil_holder_walk(l, rt, fake_read, &m), 0);
	poke32(&m, gil + l->gil_locked, 1);
	poke64(&m, gil + l->gil_last_holder, 0xdead0000000ull); /* torn or garbage pointer */
	assert_true(gs_gil_holder_walk(l, rt, fake_read, &m) < 0);
	if (l->gil_home == GS_GIL_IN_INTERP) {
		poke64(&m, rt + l->interp_main, 0); /* not initialised yet */
		assert_true(gs_gil_holder_walk(l, rt, fake_read, &m) < 0);
	}
}

static void test_holder_walk_every_layout(void **state)
{
	(void)state;
	for (unsigned minor = 9; minor <= 15; minor++) {
		struct gs_pylayout l = *gs_pylayout_find(3, minor, 0);
		if (l.debug_offsets) {
			uint8_t b[512];
			const char *reason;
			int ft;
			make_do(b, minor, 0);
			assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, minor, &ft, &reason), 0);
		}
		holder_case(&l);
	}
}

static void test_linetable(void **state)
{
	/* one entry of each form of CPython's location table (Objects/locations.md) */
	static const uint8_t t[] = {
		0xe9, 0x02,                   /* code 13 (no column), 2 units, line +1 */
		0x80, 0x05,                   /* code 0 (short form), 1 unit, same line */
		0xda, 0x04, 0x08,             /* code 11 (one line form), 3 units, line +1 */
		0xf8,                         /* code 15, 1 unit: no location */
		0xf0, 0x07, 0x00, 0x01, 0x02, /* code 14 (long form), 1 unit, line -3 */
	};
	(void)state;
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 0), 11);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 1), 11);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 2), 11);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 5), 12);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 6), -1);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 7), 9);
	assert_int_equal(gs_linetable_line(t, sizeof(t), 10, 8), -1); /* past the end */
	/* hostile tables: no entry header, a varint that never ends */
	static const uint8_t bad1[] = { 0x05, 0x80 };
	static const uint8_t bad2[] = { 0xe8, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40 };
	assert_int_equal(gs_linetable_line(bad1, sizeof(bad1), 1, 0), -1);
	assert_int_equal(gs_linetable_line(bad2, sizeof(bad2), 1, 0), -1);
	assert_int_equal(gs_linetable_line(t, 0, 1, 0), -1);
}

/* ---- the merged table gives what the two old tables gave ------------------------------------ */

/* pystack.c's own table before the merge (l39, l310, l311, l312; 3.11 served the debug build
 * too), field by field, and pylayout.c's GIL and thread-id numbers. */
struct old_stack {
	unsigned minor;
	uint32_t threads_head, next, native_tid, frame;
	int32_t cframe_current;
	uint32_t previous, code, instr, owner;
	int owner_skip;
	int32_t is_entry;
	int legacy;
	uint32_t thread_id; /* used only by the legacy walkers */
	uint32_t filename, name, qualname, linetable, firstlineno, adaptive, by_size, by_sval, un_state, un_length,
		un_ascii;
};

static const struct old_stack old_stacks[] = {
	{ 9, 8, 8, 0, 24, -1, 24, 32, 104, 0, 0, -1, 9, 176, 104, 112, 112, 120, 40, 0, 0x10, 0x20, 0x20, 0x10, 0x30 },
	{ 10, 8, 8, 0, 24, -1, 24, 32, 96, 0, 0, -1, 10, 176, 104, 112, 112, 120, 40, 0, 0x10, 0x20, 0x20, 0x10, 0x30 },
	{ 11, 0x10, 8,    0xa0, 0x38, 8,    0x30, 0x20, 0x38, 0x45, 0,    0x44, 0,
	  0,  0x70, 0x78, 0x80, 0x88, 0x48, 0xb8, 0x10, 0x20, 0x20, 0x10, 0x30 },
	{ 12, 0x48, 8,    0x90, 0x38, 0,    8,    0,    0x38, 0x46, 3,    -1,  0,
	  0,  0x70, 0x78, 0x80, 0x88, 0x44, 0xc0, 0x10, 0x20, 0x20, 0x10, 0x28 },
};

static void check_old_stack(const struct gs_pylayout *l, const struct old_stack *o)
{
	const struct gs_pystack_layout *s = &l->stack;
	assert_int_equal(l->have_stack, 1);
	assert_int_equal(s->interp_threads_head, o->threads_head);
	assert_int_equal(s->tstate_next, o->next);
	assert_int_equal(l->tstate_native_tid, o->native_tid);
	assert_int_equal(s->tstate_frame, o->frame);
	assert_int_equal(s->cframe_current, o->cframe_current);
	assert_int_equal(s->frame_previous, o->previous);
	assert_int_equal(s->frame_code, o->code);
	assert_int_equal(s->frame_instr, o->instr);
	assert_int_equal(s->frame_owner, o->owner);
	assert_int_equal(s->owner_skip, o->owner_skip);
	assert_int_equal(s->frame_is_entry, o->is_entry);
	assert_int_equal(s->legacy, o->legacy);
	if (o->legacy)
		assert_int_equal(l->tstate_thread_id, o->thread_id);
	assert_true(s->code_mask == ~0ull);
	assert_int_equal(s->code_filename, o->filename);
	assert_int_equal(s->code_name, o->name);
	assert_int_equal(s->code_qualname, o->qualname);
	assert_int_equal(s->code_linetable, o->linetable);
	assert_int_equal(s->code_firstlineno, o->firstlineno);
	assert_int_equal(s->code_adaptive, o->adaptive);
	assert_int_equal(s->bytes_size, o->by_size);
	assert_int_equal(s->bytes_sval, o->by_sval);
	assert_int_equal(s->uni_state, o->un_state);
	assert_int_equal(s->uni_length, o->un_length);
	assert_int_equal(s->uni_ascii_size, o->un_ascii);
}

static void test_merged_rows_match_old_tables(void **state)
{
	/* pylayout.c's rows before the merge: gil, drop_request, interp_main, thread ids */
	static const struct {
		unsigned minor;
		uint32_t gil, interp_gil, interp_ceval_gil, main_interp, drop_request, interp_main, native_tid,
			thread_id;
	} old_gil[] = {
		{ 9, 0x160, 0, 0, 0, 0, 0x28, 0, 0xb0 },
		{ 10, 0x160, 0, 0, 0, 0, 0x28, 0, 0xb0 },
		{ 11, 0x168, 0, 0, 0, 0xe6a0, 0x30, 0xa0, 0x98 },
		{ 12, 0, 0x410, 0x180, 0x12a68, 0x12a68 + 0x174, 0x30, 0x90, 0x88 },
		{ 13, 0, 0, 0, 0, 0, 0, 0, 0x98 },
		{ 14, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 15, 0, 0, 0, 0, 0, 0, 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(old_gil) / sizeof(old_gil[0]); i++) {
		const struct gs_pylayout *l = gs_pylayout_find(3, old_gil[i].minor, 0);
		assert_non_null(l);
		assert_int_equal(l->gil, old_gil[i].gil);
		assert_int_equal(l->ceval_gil, old_gil[i].minor <= 11 ? 8 : 0);
		assert_int_equal(l->interp_gil, old_gil[i].interp_gil);
		assert_int_equal(l->interp_ceval_gil, old_gil[i].interp_ceval_gil);
		assert_int_equal(l->main_interp, old_gil[i].main_interp);
		assert_int_equal(l->drop_request, old_gil[i].drop_request);
		assert_int_equal(l->interp_main, old_gil[i].interp_main);
		assert_int_equal(l->tstate_native_tid, old_gil[i].native_tid);
		assert_int_equal(l->tstate_thread_id, old_gil[i].thread_id);
		assert_int_equal(l->tstate_interp, 0x10);
		/* 3.13+: the stack offsets wait for _Py_DebugOffsets */
		assert_int_equal(l->have_stack, old_gil[i].minor <= 12);
	}
	for (size_t i = 0; i < sizeof(old_stacks) / sizeof(old_stacks[0]); i++)
		check_old_stack(gs_pylayout_find(3, old_stacks[i].minor, 0), &old_stacks[i]);
	check_old_stack(gs_pylayout_find(3, 11, 1), &old_stacks[2]); /* the 3.11 debug build */
}

/* pystack.c's positions in _Py_DebugOffsets before the merge: threads_head, ts_frame,
 * ts_native, fr_previous, fr_code, fr_instr, fr_owner, co_filename, co_name, co_qualname,
 * co_linetable, co_firstlineno, co_adaptive, by_size, by_sval, un_state, un_length, un_ascii */
static const unsigned old_do_stack[3][19] = {
	{ 13, 72, 184, 200, 232, 240, 248, 264, 280, 288, 296, 304, 312, 344, 520, 528, 544, 552, 560 },
	{ 14, 72, 208, 224, 256, 264, 272, 288, 320, 328, 336, 344, 352, 384, 600, 608, 624, 632, 640 },
	{ 15, 72, 208, 248, 320, 328, 336, 352, 384, 392, 400, 408, 416, 448, 696, 704, 720, 728, 736 },
};

static void test_debug_offsets_stack_positions(void **state)
{
	/* a distinct value at each position (within the parser's bounds), so that every field shows
	 * where it was read */
	static const uint64_t val[18] = { 0x58, 0x48, 0xa0, 0x08, 0x10, 0x18, 0x4a, 0x60, 0x68,
					  0x70, 0x78, 0x44, 0xc8, 0x11, 0x21, 0x22, 0x12, 0x30 };
	(void)state;
	for (int v = 0; v < 3; v++) {
		unsigned minor = old_do_stack[v][0];
		uint8_t b[GS_PYLAYOUT_DEBUG_OFFSETS_LEN];
		struct gs_pylayout l = *gs_pylayout_find(3, minor, 0), only = l, short_img = l;
		const struct gs_pystack_layout *s = &l.stack;
		const char *reason;
		int ft;
		memset(b, 0, sizeof(b));
		make_do(b, minor, 0);
		for (int i = 0; i < 18; i++)
			put64(b, old_do_stack[v][1 + i], val[i]);
		assert_int_equal(gs_pylayout_from_debug_offsets(&l, b, sizeof(b), 3, minor, &ft, &reason), 0);
		assert_int_equal(l.have_stack, 1);
		assert_int_equal(s->interp_threads_head, val[0]);
		assert_int_equal(s->tstate_frame, val[1]);
		assert_int_equal(l.tstate_native_tid, val[2]);
		assert_int_equal(s->frame_previous, val[3]);
		assert_int_equal(s->frame_code, val[4]);
		assert_int_equal(s->frame_instr, val[5]);
		assert_int_equal(s->frame_owner, val[6]);
		assert_int_equal(s->code_filename, val[7]);
		assert_int_equal(s->code_name, val[8]);
		assert_int_equal(s->code_qualname, val[9]);
		assert_int_equal(s->code_linetable, val[10]);
		assert_int_equal(s->code_firstlineno, val[11]);
		assert_int_equal(s->code_adaptive, val[12]);
		assert_int_equal(s->bytes_size, val[13]);
		assert_int_equal(s->bytes_sval, val[14]);
		assert_int_equal(s->uni_state, val[15]);
		assert_int_equal(s->uni_length, val[16]);
		assert_int_equal(s->uni_ascii_size, val[17]);
		/* and the constants the old parser set */
		assert_int_equal(s->tstate_next, 8);
		assert_int_equal(s->cframe_current, -1);
		assert_int_equal(s->owner_skip, 3);
		assert_int_equal(s->frame_is_entry, -1);
		assert_int_equal(s->legacy, 0);
		assert_true(s->code_mask == (minor >= 14 ? ~3ull : ~0ull));
		/* the stack step alone reads the same */
		assert_int_equal(gs_pylayout_stack_from_debug_offsets(&only, b, sizeof(b), minor), 0);
		assert_memory_equal(&only.stack, &l.stack, sizeof(l.stack));
		assert_int_equal(only.tstate_native_tid, l.tstate_native_tid);
		/* a short image: the GIL's numbers, no stacks */
		assert_int_equal(gs_pylayout_from_debug_offsets(&short_img, b, 512, 3, minor, &ft, &reason), 0);
		assert_int_equal(short_img.have_stack, 0);
		assert_int_equal(short_img.interp_gil, l.interp_gil);
		/* a stack number out of bounds: no stacks, the GIL still known */
		short_img = *gs_pylayout_find(3, minor, 0);
		put64(b, old_do_stack[v][1 + 12], 5000); /* co_adaptive */
		assert_int_equal(gs_pylayout_from_debug_offsets(&short_img, b, sizeof(b), 3, minor, &ft, &reason), 0);
		assert_int_equal(short_img.have_stack, 0);
		assert_int_equal(short_img.tstate_native_tid, 0xa0);
		only = *gs_pylayout_find(3, minor, 0);
		assert_int_equal(gs_pylayout_stack_from_debug_offsets(&only, b, sizeof(b), minor), -1);
		assert_int_equal(only.have_stack, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debug_offsets_each_version),
		cmocka_unit_test(test_debug_offsets_free_threaded),
		cmocka_unit_test(test_debug_offsets_rejected),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_holder_walk_every_layout),
		cmocka_unit_test(test_linetable),
		cmocka_unit_test(test_merged_rows_match_old_tables),
		cmocka_unit_test(test_debug_offsets_stack_positions),
	};
	return cmocka_run_group_tests_name("layouts", tests, NULL, NULL);
}
