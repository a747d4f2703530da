/* Unit tests: the per-version layouts, _Py_DebugOffsets parsing (3.13-3.15, free-threaded
 * included) on synthetic images, and the GIL-holder walk over synthetic memory of each layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cpython/pylayout.h"
#include "cpython/python.h"
#include "cpython/pystack.h"

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
		poke32(&m, pthread + 0x2d0, 4242);
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
		0xe9, 0x02,             /* code 13 (no column), 2 units, line +1 */
		0x80, 0x05,             /* code 0 (short form), 1 unit, same line */
		0xda, 0x04, 0x08,       /* code 11 (one line form), 3 units, line +1 */
		0xf8,                   /* code 15, 1 unit: no location */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debug_offsets_each_version), cmocka_unit_test(test_debug_offsets_free_threaded),
		cmocka_unit_test(test_debug_offsets_rejected), cmocka_unit_test(test_table),
		cmocka_unit_test(test_holder_walk_every_layout), cmocka_unit_test(test_linetable),
	};
	return cmocka_run_group_tests_name("layouts", tests, NULL, NULL);
}
