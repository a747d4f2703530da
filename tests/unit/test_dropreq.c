/* Unit tests: the GIL drop request's set and reset instructions (cpython/dropreq.h) found in every
 * release-build interpreter of this machine, stripped ones too (skipped, with the reason, when one is
 * missing). Debug builds call SET_GIL_DROP_REQUEST out of line: not covered (3.11d keeps the watchpoint). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cpython/python.h"
#include "probe/x86.h"

static const char *const pythons[] = {
	"/root/.pyenv/versions/3.9.18/lib/libpython3.9.so.1.0",
	"/root/.pyenv/versions/3.10.13/lib/libpython3.10.so.1.0",
	"/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0",
	"/usr/bin/python3.11",
	"/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0",
	"/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0",
	"/opt/gilscope-pythons/3.13/usr/bin/python3.13",
	"/opt/gilscope-pythons/3.14/usr/bin/python3.14",
	"/opt/gilscope-pythons/3.15/usr/bin/python3.15",
};

static void test_every_interpreter(void **state)
{
	int ran = 0;
	(void)state;
	for (size_t i = 0; i < sizeof(pythons) / sizeof(pythons[0]); i++) {
		struct gs_pyimage img;
		const struct gs_dropreq *d = &img.dropreq;
		char why[512] = "";
		int honour = 0;
		if (access(pythons[i], R_OK) != 0) {
			fprintf(stderr, "SKIPPED: %s is not installed on this machine\n", pythons[i]);
			continue;
		}
		ran++;
		assert_int_equal(gs_pyimage_analyse(pythons[i], &img, why, sizeof(why)), 0);
		fprintf(stderr, "%s (%s): %d set, %d reset:", pythons[i], img.version, d->nset, d->nreset);
		for (int k = 0; k < d->nsites; k++) {
			struct x86_insn in;
			fprintf(stderr, " %s%s@%#lx/%u", d->sites[k].value ? "set" : "reset",
				d->sites[k].honour ? "(drop_gil)" : "", (unsigned long)d->sites[k].insn,
				d->sites[k].len);
			/* each one can be replaced by a jump and moved into a trampoline as it is */
			assert_true(d->sites[k].len >= 5);
			assert_int_equal(x86_decode(d->sites[k].bytes, d->sites[k].len, d->sites[k].insn, &in),
					 d->sites[k].len);
			assert_false(in.rip_relative);
			honour += d->sites[k].honour;
		}
		fprintf(stderr, "\n");
		assert_int_equal(d->nset, 1); /* SET_GIL_DROP_REQUEST / _Py_set_eval_breaker_bit, once */
		assert_true(honour >= 1);     /* drop_gil's reset before it waits on switch_cond */
	}
	if (!ran)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_interpreter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
