/* fuzz_pyname.c - a thread's Python name read out of a fuzzed memory image (pyname.c): the
 * Thread found through a _bootstrap_inner frame, its `_name` through each version's attribute
 * layout, dict keys, compact strings decoded to UTF-8; the main thread's through the module
 * globals; the switch interval.
 *
 * Input: byte 0 picks the layout (3.9 + byte % 7; 3.13+ with 3.13.0's _Py_DebugOffsets numbers),
 * the rest is memory at BASE, with the frame at BASE + 0x100 and _PyRuntime at BASE (the images
 * of tests/unit/test_pyname.c, written by it with GS_PYNAME_SEEDS=DIR, are the seeds). */
#include "fuzz.h"

#include "cpython/pyname.h"
#include "base/util.h"

#define BASE 0x10000000ull
#define FRAME (BASE + 0x100)

struct image {
	const uint8_t *p;
	size_t len;
};

static int rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	const struct image *m = ctx;
	if (addr < BASE || addr - BASE > m->len || len > m->len - (addr - BASE))
		return -14; /* -EFAULT */
	memcpy(dst, m->p + (addr - BASE), len);
	return 0;
}

static void check(int n, const char *out, size_t cap)
{
	if (n >= 0 && ((size_t)n >= cap || strlen(out) != (size_t)n))
		abort();
	if (n < 0 && out[0])
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_pylayout l;
	struct image m;
	char out[GS_PYNAME_MAX];
	uint64_t us;
	unsigned minor;
	int n;

	gs_verbose = 0;
	if (size < 1)
		return 0;
	minor = 9 + data[0] % 7;
	l = *gs_pylayout_find(3, minor, 0);
	if (minor >= 13) {
		l.obj.frame_localsplus = 72;
		l.stack = gs_pylayout_find(3, 12, 0)->stack;
		l.interp_gil = 0x410;
		l.interp_ceval_gil = 0x180;
		l.interp_main = 0x30;
	}
	m.p = data + 1;
	m.len = size - 1;
	n = gs_pyname_thread(&l.obj, &l.stack, rd, &m, FRAME, out, sizeof(out));
	check(n, out, sizeof(out));
	n = gs_pyname_thread(&l.obj, &l.stack, rd, &m, FRAME, out, 8);
	check(n, out, 8);
	n = gs_pyname_main_thread(&l.obj, &l.stack, rd, &m, FRAME, out, sizeof(out));
	check(n, out, sizeof(out));
	if (gs_pyname_switch_interval(&l, BASE, rd, &m, &us) == 0 && (us == 0 || us > 3600ull * 1000000))
		abort();
	return 0;
}
