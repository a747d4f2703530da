/* Unit tests: ELF symbol lookup and CPython detection on every interpreter of this machine
 * (skipped, with the reason, when one is not installed). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "cpython/elfsym.h"
#include "cpython/python.h"

#define PYENV_LIB "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
#define DEBIAN "/usr/bin/python3.11"
#define DEBIAN_DBG "/usr/bin/python3.11d"

static int need(const char *path)
{
	if (access(path, R_OK) == 0)
		return 1;
	fprintf(stderr, "SKIPPED: %s is not installed on this machine\n", path);
	return 0;
}

static void check_image(const char *path, const char *version, int stripped, int debug, int shared)
{
	struct gs_pyimage img;
	char why[512] = "";
	int err = gs_pyimage_analyse(path, &img, why, sizeof(why));
	if (err)
		fprintf(stderr, "%s\n", why);
	assert_int_equal(err, 0);
	assert_string_equal(img.version, version);
	assert_int_equal(img.stripped, stripped);
	assert_int_equal(img.debug, debug);
	assert_int_equal(img.shared, shared);
	assert_true(img.layout_checked); /* the `locked = 1` store in take_gil is where the layout says */
	assert_true(img.have_layout);
	assert_true(img.take_gil_offset > 0);
}

static void test_pyenv_shared_symbols(void **state)
{
	struct gs_elf *e;
	uint64_t sym, size, by_calls = 0;
	(void)state;
	if (!need(PYENV_LIB))
		skip();
	check_image(PYENV_LIB, "3.11.7", 0, 0, 1);
	/* the call-target analysis used on stripped builds finds the same function as .symtab */
	assert_int_equal(gs_elf_open(PYENV_LIB, &e), 0);
	assert_int_equal(gs_elf_symbol(e, "take_gil", &sym, &size), 0);
	gs_elf_free(e);
	assert_int_equal(gs_pyimage_take_gil_by_calls(PYENV_LIB, &by_calls), 0);
	assert_int_equal(by_calls, sym);
}

static void test_debian_stripped(void **state)
{
	struct gs_pyimage img;
	char why[512];
	uint64_t by_calls = 0;
	(void)state;
	if (!need(DEBIAN))
		skip();
	check_image(DEBIAN, "3.11.2", 1, 0, 0);
	gs_pyimage_analyse(DEBIAN, &img, why, sizeof(why));
	/* with python3.11-dbg's debug file, take_gil comes from its .symtab; the call-target
	 * analysis (used when there is none) must find the same function */
	assert_int_equal(gs_pyimage_take_gil_by_calls(DEBIAN, &by_calls), 0);
	assert_int_equal(by_calls, img.take_gil_vaddr);
	assert_int_equal(img.nacquire, 1);
	assert_int_equal(img.nrelease, 6); /* drop_gil out of line + inlined into 5 functions */
}

static void test_debian_debug(void **state)
{
	(void)state;
	if (!need(DEBIAN_DBG))
		skip();
	check_image(DEBIAN_DBG, "3.11.2", 0, 1, 0);
}

/* Every other interpreter of this machine: version, build kind, layout checked against the
 * machine code, one acquisition site and at least one release site, and where a symbol table
 * exists, PyEval_AcquireLock's tail jump lands on its take_gil. */
/* pystack.c's positions in _Py_DebugOffsets before the layout tables were merged (threads_head,
 * ts_frame, ts_native, fr_previous, fr_code, fr_instr, fr_owner, co_filename, co_name,
 * co_qualname, co_linetable, co_firstlineno, co_adaptive, by_size, by_sval, un_state, un_length,
 * un_ascii): the merged parser must read the same numbers out of each real interpreter. */
static void check_stack_as_before(const struct gs_pyimage *img)
{
	static const unsigned old[3][19] = {
		{ 13, 72, 184, 200, 232, 240, 248, 264, 280, 288, 296, 304, 312, 344, 520, 528, 544, 552, 560 },
		{ 14, 72, 208, 224, 256, 264, 272, 288, 320, 328, 336, 344, 352, 384, 600, 608, 624, 632, 640 },
		{ 15, 72, 208, 248, 320, 328, 336, 352, 384, 392, 400, 408, 416, 448, 696, 704, 720, 728, 736 },
	};
	const struct gs_pystack_layout *st = &img->layout.stack;
	const uint32_t got[18] = { st->interp_threads_head, st->tstate_frame,   img->layout.tstate_native_tid,
				   st->frame_previous,      st->frame_code,     st->frame_instr,
				   st->frame_owner,         st->code_filename,  st->code_name,
				   st->code_qualname,       st->code_linetable, st->code_firstlineno,
				   st->code_adaptive,       st->bytes_size,     st->bytes_sval,
				   st->uni_state,           st->uni_length,     st->uni_ascii_size };
	uint8_t b[1024];
	struct gs_elf *elf;
	assert_int_equal(img->layout.have_stack, 1);
	assert_int_equal(gs_elf_open(img->path, &elf), 0);
	assert_int_equal(gs_elf_read(elf, img->runtime_vaddr, b, sizeof(b)), 0);
	gs_elf_free(elf);
	for (int i = 0; i < 18; i++) {
		uint64_t v;
		memcpy(&v, b + old[img->minor - 13][1 + i], 8);
		assert_int_equal(got[i], v);
	}
}

static void test_every_interpreter(void **state)
{
	static const struct {
		const char *path, *version;
		int stripped, shared;
	} cases[] = {
		{ "/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0", "3.9", 0, 1 },
		{ "/root/.pyenv/versions/3.10.13/lib/libpython3.10.so.1.0", "3.10", 0, 1 },
		{ "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0", "3.12.1", 0, 1 },
		{ "/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0", "3.13.0", 0, 1 },
		{ "/opt/gilscope-pythons/3.13/usr/bin/python3.13", "3.13.5", 1, 0 },
		{ "/opt/gilscope-pythons/3.14/usr/bin/python3.14", "3.14.10", 1, 0 },
		{ "/opt/gilscope-pythons/3.15/usr/bin/python3.15", "3.15.2", 1, 0 },
	};
	int ran = 0;
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gs_pyimage img;
		char why[512] = "";
		uint64_t by_calls = 0;
		if (!need(cases[i].path))
			continue;
		ran++;
		assert_int_equal(gs_pyimage_analyse(cases[i].path, &img, why, sizeof(why)), 0);
		assert_string_equal(img.version, cases[i].version);
		assert_int_equal(img.stripped, cases[i].stripped);
		assert_int_equal(img.shared, cases[i].shared);
		assert_true(img.layout_checked);
		assert_int_equal(img.nacquire, 1);
		assert_true(img.nrelease >= 1);
		assert_true(img.prologue_len >= 5);
		assert_int_equal(gs_pyimage_take_gil_by_calls(cases[i].path, &by_calls), 0);
		assert_int_equal(by_calls, img.take_gil_vaddr);
		if (img.minor >= 13) {
			assert_string_equal(img.layout_source, "_Py_DebugOffsets");
			check_stack_as_before(&img);
		} else {
			assert_int_equal(img.layout.have_stack, 1);
		}
	}
	if (!ran)
		skip();
}

static void test_not_python(void **state)
{
	struct gs_pyimage img;
	char why[512];
	(void)state;
	assert_int_equal(gs_pyimage_analyse("/bin/sh", &img, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "_PyRuntime"));
	/* not an ELF file at all */
	assert_int_equal(gs_pyimage_analyse("/etc/passwd", &img, why, sizeof(why)), -ENOENT);
	assert_int_equal(gs_pyimage_analyse("/nonexistent/python", &img, why, sizeof(why)), -ENOENT);
}

static void test_elf_basics(void **state)
{
	struct gs_elf *e;
	uint64_t addr, size, off, s, en;
	(void)state;
	assert_int_equal(gs_elf_open("/etc/passwd", &e), -GS_ENOTELF);
	if (!need(DEBIAN))
		skip();
	assert_int_equal(gs_elf_open(DEBIAN, &e), 0);
	assert_false(gs_elf_has_symtab(e));
	assert_int_equal(gs_elf_dynsym(e, "PyEval_SaveThread", &addr, &size), 0);
	assert_int_equal(gs_elf_vaddr_to_offset(e, addr, &off), 0);
	assert_true(off < addr); /* non-PIE: file offsets are below the 0x400000 base */
	assert_int_equal(gs_elf_function_bounds(e, addr + 3, &s, &en), 0);
	assert_int_equal(s, addr);
	assert_true(en > addr);
	assert_int_equal(gs_elf_symbol(e, "no_such_symbol_anywhere", &addr, &size), -ENOENT);
	gs_elf_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pyenv_shared_symbols), cmocka_unit_test(test_debian_stripped),
		cmocka_unit_test(test_debian_debug),         cmocka_unit_test(test_not_python),
		cmocka_unit_test(test_every_interpreter),    cmocka_unit_test(test_elf_basics),
	};
	return cmocka_run_group_tests_name("python detection", tests, NULL, NULL);
}
