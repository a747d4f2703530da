/* Unit tests: Python thread names (pyname.c) on synthetic memory built for each version's
 * instance-attribute layout (3.9/3.10 dict at tp_dictoffset, 3.11 values before the object,
 * 3.12 tagged dict-or-values, 3.13+ inline values, a materialised dict), the main thread's name
 * through the module globals, non-ASCII names, hostile counts, torn memory, and the switch
 * interval; the convoy's duration buckets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "analysis/convoy.h"
#include "cpython/pyname.h"

#define BASE 0x10000000ull
#define SIZE (1u << 20)
#define FRAME (BASE + 0x100)
#define SELF (BASE + 0x400)
#define MAINOBJ (BASE + 0x500)
#define TYPE (BASE + 0x600)
#define STRTYPE (BASE + 0xa00)
#define KEYS (BASE + 0xb00)
#define GKEYS (BASE + 0xb80)
#define GLOBALS (BASE + 0xc00)
#define STRS (BASE + 0xc40)
#define DICTS (BASE + 0x1000)
#define VALUES (BASE + 0x1200)

static uint8_t mem[SIZE];
static int fail_all;

static int rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	(void)ctx;
	if (fail_all || addr < BASE || addr - BASE + len > SIZE)
		return -14;
	memcpy(dst, mem + (addr - BASE), len);
	return 0;
}

static void p64(uint64_t addr, uint64_t v) { memcpy(mem + (addr - BASE), &v, 8); }

static struct gs_pylayout layout(unsigned minor)
{
	struct gs_pylayout l = *gs_pylayout_find(3, minor, 0);
	if (minor >= 13) { /* the (DO) numbers: 3.13.0's */
		l.obj.frame_localsplus = 72;
		l.stack = gs_pylayout_find(3, 12, 0)->stack;
	}
	return l;
}

static uint64_t nstr;

/* a compact str: ASCII, or UCS-2 when wide */
static uint64_t str(const struct gs_pylayout *l, const char *s, int wide)
{
	uint64_t a = STRS + nstr;
	size_t n = strlen(s);
	nstr += 0x80;
	p64(a + 8, STRTYPE);
	p64(a + l->stack.uni_length, n);
	mem[a - BASE + l->stack.uni_state] = wide ? (0x20 | 2 << 2) : 0x60;
	if (!wide) {
		memcpy(mem + (a - BASE) + l->stack.uni_ascii_size, s, n);
	} else {
		for (size_t i = 0; i < n; i++) { /* "b" stands for U+03B2 */
			uint16_t c = s[i] == 'b' ? 0x3b2 : (uint8_t)s[i];
			memcpy(mem + (a - BASE) + l->obj.uni_compact_size + 2 * i, &c, 2);
		}
	}
	return a;
}

/* keys object at k with the given key names (split kind from 3.11), values in combined entries */
static void keys(const struct gs_pylayout *l, uint64_t k, const char *const *names, const uint64_t *vals, int n,
		 int kind)
{
	uint64_t e;
	if (l->obj.keys_legacy) {
		p64(k + 8, 8);
		p64(k + 32, (uint64_t)n);
		e = k + 40 + 8;
		for (int i = 0; i < n; i++) {
			p64(e + 24 * (uint64_t)i + 8, str(l, names[i], 0));
			p64(e + 24 * (uint64_t)i + 16, vals ? vals[i] : 0);
		}
		return;
	}
	mem[k - BASE + 8] = 3;
	mem[k - BASE + 9] = 3;
	mem[k - BASE + 10] = (uint8_t)kind;
	p64(k + 24, (uint64_t)n);
	e = k + 32 + 8;
	for (int i = 0; i < n; i++) {
		p64(e + 16 * (uint64_t)i, str(l, names[i], 0));
		p64(e + 16 * (uint64_t)i + 8, vals ? vals[i] : 0);
	}
}

/* obj, a Thread whose _name is name, kept the version's way (dict: a materialised dict) */
static void thread_obj(const struct gs_pylayout *l, uint64_t obj, uint64_t values, uint64_t name, int dict)
{
	const struct gs_pyobj_layout *o = &l->obj;
	p64(obj + 8, TYPE);
	p64(values + o->values_skip + 8, name);
	if (dict || o->attr_home == GS_ATTR_DICTOFFSET) {
		uint64_t d = DICTS + (obj - SELF);
		p64(d + o->dict_keys, KEYS);
		p64(d + o->dict_values, values); /* a split dict over the same values */
		if (o->attr_home == GS_ATTR_DICTOFFSET)
			p64(obj + 16, d);
		else
			p64(obj - 24, d);
		return;
	}
	if (o->attr_home == GS_ATTR_VALUES_311)
		p64(obj - 32, values);
	else if (o->attr_home == GS_ATTR_TAGGED_312)
		p64(obj - 24, values - 1);
}

static void image(const struct gs_pylayout *l, const char *name, int wide, int dict, uint64_t tag)
{
	static const char *const names[] = { "_target", "_name", "_args" };
	static const char *const gnames[] = { "_active", "_main_thread" };
	const struct gs_pyobj_layout *o = &l->obj;
	uint64_t gvals[2] = { 0, MAINOBJ };
	uint64_t v1 = VALUES, v2 = VALUES + 0x100;

	memset(mem, 0, sizeof(mem));
	nstr = 0;
	p64(STRTYPE + o->type_flags, 1ull << 28);
	p64(TYPE + o->type_flags, (1ull << 4) | (o->attr_home == GS_ATTR_INLINE_313 && !dict ? 1ull << 2 : 0));
	p64(TYPE + o->type_basicsize, 16);
	p64(TYPE + o->type_dictoffset, o->attr_home == GS_ATTR_DICTOFFSET ? 16 : (uint64_t)-1);
	p64(TYPE + o->type_cached_keys, KEYS);
	keys(l, KEYS, names, NULL, 3, 2);
	if (o->attr_home == GS_ATTR_INLINE_313 && !dict) { /* values after the object, `valid` set */
		v1 = SELF + 16;
		v2 = MAINOBJ + 16;
		mem[v1 - BASE + 3] = mem[v2 - BASE + 3] = 1;
	}
	thread_obj(l, SELF, v1, str(l, name, wide), dict);
	thread_obj(l, MAINOBJ, v2, str(l, "MainThread", 0), dict);
	p64(FRAME + o->frame_localsplus, SELF | tag);
	p64(FRAME + o->frame_globals, GLOBALS);
	keys(l, GKEYS, gnames, gvals, 2, 1);
	p64(GLOBALS + o->dict_keys, GKEYS);
}

/* GS_PYNAME_SEEDS=DIR: each image is written there as a fuzz_pyname seed (byte 0: the version) */
static void seed(unsigned minor, const char *what)
{
	const char *dir = getenv("GS_PYNAME_SEEDS");
	char path[512];
	size_t end = 0x2000;
	FILE *f;
	uint8_t v = (uint8_t)(minor - 9);
	if (!dir)
		return;
	while (end && !mem[end - 1])
		end--;
	snprintf(path, sizeof(path), "%s/3.%u-%s", dir, minor, what);
	if ((f = fopen(path, "wb"))) {
		fwrite(&v, 1, 1, f);
		fwrite(mem, 1, end, f);
		fclose(f);
	}
}

static void check(unsigned minor, int dict)
{
	struct gs_pylayout l = layout(minor);
	char out[GS_PYNAME_MAX];
	image(&l, "db-pool-3", 0, dict, minor >= 14 ? 1 : 0);
	seed(minor, dict ? "dict" : "values");
	assert_int_equal(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)), 9);
	assert_string_equal(out, "db-pool-3");
	assert_int_equal(gs_pyname_main_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)), 10);
	assert_string_equal(out, "MainThread");
	image(&l, "wbrker", 1, dict, 0);
	seed(minor, dict ? "dict-ucs2" : "values-ucs2");
	assert_int_equal(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)), 7);
	assert_string_equal(out, "w\xce\xb2rker");
	/* cut at a character: 7 bytes of room hold three betas, not half of the fourth */
	image(&l, "bbbb", 1, dict, 0);
	assert_int_equal(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, 8), 6);
}

static int nreads;

static int counting_rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	nreads++;
	return rd(ctx, addr, dst, len);
}

/* The memo: a second thread of the class reads one entry instead of the keys; a memo that no
 * longer fits (the entry holds another key) is found out and the name still read right. */
static void check_memo(unsigned minor, int dict)
{
	struct gs_pylayout l = layout(minor);
	struct gs_pyname_memo m = { 0 };
	char out[GS_PYNAME_MAX];
	int full, memo;
	image(&l, "db-pool-3", 0, dict, minor >= 14 ? 1 : 0);
	nreads = 0;
	assert_int_equal(gs_pyname_thread_memo(&l.obj, &l.stack, counting_rd, NULL, FRAME, &m, out, sizeof(out)), 9);
	full = nreads;
	assert_true(m.keys != 0);
	image(&l, "worker-12", 0, dict, minor >= 14 ? 1 : 0);
	nreads = 0;
	assert_int_equal(gs_pyname_thread_memo(&l.obj, &l.stack, counting_rd, NULL, FRAME, &m, out, sizeof(out)), 9);
	assert_string_equal(out, "worker-12");
	memo = nreads;
	assert_true(memo < full);
	p64(m.entry + m.koff, 0x1234); /* the entry now holds another key: the keys are read again */
	assert_true(gs_pyname_thread_memo(&l.obj, &l.stack, counting_rd, NULL, FRAME, &m, out, sizeof(out)) < 0 ||
		    strcmp(out, "worker-12") == 0);
}

static void test_every_layout(void **state)
{
	(void)state;
	for (unsigned minor = 9; minor <= 15; minor++) {
		check(minor, 0);
		check_memo(minor, 0);
		if (minor >= 11) {
			check(minor, 1); /* __dict__ materialised */
			check_memo(minor, 1);
		}
	}
}

static void test_hostile_memory(void **state)
{
	struct gs_pylayout l = layout(12);
	char out[GS_PYNAME_MAX];
	(void)state;
	image(&l, "x", 0, 0, 0);
	p64(KEYS + 24, 1ull << 40); /* a huge key count */
	assert_true(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)) < 0);
	image(&l, "x", 0, 0, 0);
	mem[KEYS - BASE + 9] = 200; /* a huge index size */
	assert_true(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)) < 0);
	image(&l, "x", 0, 0, 0);
	p64(STRTYPE + l.obj.type_flags, 0); /* the name is not a str */
	assert_int_equal(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)), -ENOENT);
	image(&l, "x", 0, 0, 0);
	p64(FRAME + l.obj.frame_localsplus, 0); /* no self */
	assert_int_equal(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)), -ENOENT);
	image(&l, "x", 0, 0, 0);
	p64(SELF + 8, BASE + SIZE - 8); /* a type at the end of memory */
	assert_true(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)) < 0);
	fail_all = 1;
	assert_true(gs_pyname_thread(&l.obj, &l.stack, rd, NULL, FRAME, out, sizeof(out)) < 0);
	fail_all = 0;
}

static void test_bootstrap_and_interval(void **state)
{
	struct gs_pylayout l = layout(11);
	uint64_t us = 0;
	(void)state;
	assert_true(gs_pyname_is_bootstrap("Thread._bootstrap_inner", "/usr/lib/python3.11/threading.py"));
	assert_true(gs_pyname_is_bootstrap("_bootstrap_inner", "threading.py"));
	assert_false(gs_pyname_is_bootstrap("Thread._bootstrap", "/usr/lib/python3.11/threading.py"));
	assert_false(gs_pyname_is_bootstrap("Thread._bootstrap_inner", "mythreading.pyc"));
	memset(mem, 0, sizeof(mem));
	assert_int_equal(gs_pyname_switch_interval(&l, BASE, rd, NULL, &us), -ENOENT); /* not initialised */
	p64(BASE + l.gil, 5000);
	assert_int_equal(gs_pyname_switch_interval(&l, BASE, rd, NULL, &us), 0);
	assert_int_equal(us, 5000);
	l = layout(12); /* in the main interpreter, through ceval.gil */
	memset(mem, 0, sizeof(mem));
	p64(BASE + l.interp_main, BASE + 0x2000);
	p64(BASE + 0x2000 + l.interp_ceval_gil, BASE + 0x3000);
	p64(BASE + 0x3000, 1000);
	assert_int_equal(gs_pyname_switch_interval(&l, BASE, rd, NULL, &us), 0);
	assert_int_equal(us, 1000);
}

static void test_convoy_buckets(void **state)
{
	(void)state;
	assert_int_equal(gs_convoy_bucket(0), 0);
	assert_int_equal(gs_convoy_bucket(~0ull), GS_CONVOY_BUCKETS - 1);
	for (uint64_t ns = 1024; ns < (1ull << 37); ns = ns * 9 / 8 + 1) {
		unsigned b = gs_convoy_bucket(ns);
		uint64_t mid = gs_convoy_bucket_mid(b);
		assert_true(b > 0 && b < GS_CONVOY_BUCKETS - 1);
		assert_true(mid > ns * 15 / 16 && mid < ns * 17 / 16 + 1); /* within half a step (1/16) */
		assert_true(gs_convoy_bucket(ns + ns / 4) > b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_layout),
		cmocka_unit_test(test_hostile_memory),
		cmocka_unit_test(test_bootstrap_and_interval),
		cmocka_unit_test(test_convoy_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
