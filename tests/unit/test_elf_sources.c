/* Unit tests: where static symbols come from, on ELF fixtures built by make_elf_fixtures.sh:
 * .symtab, MiniDebugInfo (.gnu_debugdata), a build-id debug file, nothing, and garbage. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "cpython/elfsym.h"

static const char *dir;

static char *fixture(const char *name)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static uint64_t lookup(const char *name, const char *sym, char *from, size_t fromlen)
{
	struct gs_elf *e;
	uint64_t addr = 0, size;
	assert_int_equal(gs_elf_open(fixture(name), &e), 0);
	if (gs_elf_symbol(e, sym, &addr, &size) < 0)
		addr = 0;
	snprintf(from, fromlen, "%s", gs_elf_symbols_from(e));
	gs_elf_free(e);
	return addr;
}

static void test_sources(void **state)
{
	char from[1024];
	uint64_t want;
	(void)state;
	unsetenv("GILSCOPE_DEBUG_ROOT");
	want = lookup("prog", "secret_take", from, sizeof(from));
	assert_true(want != 0);
	assert_string_equal(from, ".symtab");

	/* stripped: the static function is gone, the exported one is still there */
	assert_int_equal(lookup("stripped", "secret_take", from, sizeof(from)), 0);
	assert_string_equal(from, ".dynsym only");
	assert_true(lookup("stripped", "exported_fn", from, sizeof(from)) != 0);

	/* MiniDebugInfo gives it back, at the same address */
	assert_int_equal(lookup("minidebug", "secret_take", from, sizeof(from)), want);
	assert_non_null(strstr(from, "MiniDebugInfo"));

	/* so does the debug file found by build id */
	setenv("GILSCOPE_DEBUG_ROOT", fixture("debugroot"), 1);
	assert_int_equal(lookup("stripped", "secret_take", from, sizeof(from)), want);
	assert_non_null(strstr(from, "debug file"));
	unsetenv("GILSCOPE_DEBUG_ROOT");

	/* a corrupt .gnu_debugdata is ignored, not fatal */
	assert_int_equal(lookup("baddebugdata", "secret_take", from, sizeof(from)), 0);
	assert_string_equal(from, ".dynsym only");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_sources) };
	dir = argc > 1 ? argv[1] : getenv("GILSCOPE_FIXTURES");
	if (!dir) {
		fprintf(stderr, "usage: test_elf_sources FIXTURE_DIR (built by make_elf_fixtures.sh)\n");
		return 1;
	}
	return cmocka_run_group_tests_name("symbol sources", tests, NULL, NULL);
}
