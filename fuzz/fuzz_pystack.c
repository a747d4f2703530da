/* fuzz_pystack.c - what gilscope reads out of a Python process's memory: the remote frame
 * walker (pystack.c, 3.9 to 3.15 layouts) and the GIL-holder walk (python.c) over a fuzzed
 * memory image, the _Py_DebugOffsets parser (pylayout.c: the GIL numbers and the stack
 * walker's), the line-table decoders of 3.9, 3.10 and 3.11+, and the merge of native and
 * Python frames (native.c gs_native_merge).
 *
 * Input: byte 0 picks versions (bit 0: 3.11 or 3.12 walker; bits 1-2: 3.13-3.15 debug
 * offsets; bits 3-5: the GIL-holder layout; bits 6-7: a 3.13-3.15 walker instead), bytes 1-4
 * the index and first line for the location table, the rest is memory at BASE (the pointer to
 * the main interpreter at BASE+0x100, PyCode_Type at CODE_TYPE) and is also the debug-offsets
 * image and the location table. */
#include "fuzz.h"

#include "cpython/pylayout.h"
#include "cpython/native.h"
#include "cpython/pystack.h"
#include "cpython/python.h"
#include "base/util.h"

#define BASE 0x100000ull
#define CODE_TYPE (BASE + 0x40)

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

struct seen {
	struct gs_pystacks *ps;
	unsigned long frames;
};

static void cb(uint32_t tid, const struct gs_pyframe *f, int n, void *arg)
{
	struct seen *s = arg;
	(void)tid;
	if (n < 0 || n > GS_PYSTACK_MAX_FRAMES)
		abort();
	for (int i = 0; i < n; i++) {
		const char *q, *fn;
		if (gs_pystacks_code(s->ps, f[i].code, &q, &fn) == 0 && (!q || !fn || strlen(q) > 1024))
			abort();
	}
	s->frames += (unsigned long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		unsigned major, minor;
	} holder_versions[] = { { 3, 9 }, { 3, 10 }, { 3, 11 }, { 3, 12 }, { 3, 13 }, { 3, 14 }, { 3, 15 }, { 3, 11 } };
	struct image m;
	struct gs_pystacks *ps;
	struct seen s = { 0 };
	uint8_t sel;
	int32_t index, first;
	uint16_t i16, f16;

	gs_verbose = 0;
	if (size < 5)
		return 0;
	sel = data[0];
	memcpy(&i16, data + 1, 2);
	memcpy(&f16, data + 3, 2);
	index = (int16_t)i16;
	first = (int32_t)(((uint32_t)f16 << 16) | f16); /* large and negative first lines too */
	m.p = data + 5;
	m.len = size - 5;

	/* the frame walker, twice: the second walk goes through the code object cache. Bits 6-7
	 * pick a 3.13-3.15 layout read from the image's start (_Py_DebugOffsets opens _PyRuntime),
	 * the main interpreter pointer then at BASE+0x400 */
	if (sel >> 6) {
		ps = gs_pystacks_synthetic_do(12 + (sel >> 6), m.p, m.len, BASE + 0x400, CODE_TYPE);
	} else {
		ps = gs_pystacks_synthetic((sel & 1) ? 12 : 11, BASE + 0x100, CODE_TYPE);
		if (!ps)
			abort();
	}
	if (ps) {
		s.ps = ps;
		for (int k = 0; k < 2; k++)
			(void)gs_pystacks_sample(ps, rd, &m, cb, &s);
		gs_pystacks_free(ps);
	}

	/* the GIL holder, as `record -p` reads it */
	{
		const struct gs_pylayout *l = gs_pylayout_find(holder_versions[(sel >> 3) & 7].major,
							       holder_versions[(sel >> 3) & 7].minor, 0);
		if (l) {
			long tid = gs_gil_holder_walk(l, BASE, rd, &m);
			if (tid > 0x7fffffff)
				abort();
		}
	}

	/* _Py_DebugOffsets */
	{
		unsigned minor = 13 + ((sel >> 1) & 3);
		const struct gs_pylayout *base = gs_pylayout_find(3, minor > 15 ? 15 : minor, 0);
		if (base) {
			struct gs_pylayout l = *base;
			const char *reason = NULL;
			int ft = -1;
			if (gs_pylayout_from_debug_offsets(&l, m.p, m.len, 3, minor, &ft, &reason) == 0) {
				/* every offset it accepts lies inside its structure */
				if (l.interp_main < 8 || l.tstate_native_tid > 65536 - 8 ||
				    l.tstate_thread_id > 65536 - 8 || l.interp_gil > (1u << 24) - 64 ||
				    l.interp_ceval_gil > (1u << 24) - 8 || (ft != 0 && ft != 1))
					abort();
				/* and the stack walker's, when it took them, index its buffers safely */
				if (l.have_stack &&
				    (l.stack.frame_owner > 256 || l.stack.code_adaptive > 1024 ||
				     l.stack.uni_ascii_size > 128 || l.stack.uni_state >= l.stack.uni_ascii_size ||
				     l.stack.bytes_sval > 128 || l.stack.frame_previous > 4096 ||
				     l.stack.code_qualname > 4096 || l.stack.interp_threads_head > (1u << 20)))
					abort();
			} else if (!reason) {
				abort();
			}
		}
	}

	/* the location table, and 3.9's co_lnotab and 3.10's co_linetable */
	(void)gs_linetable_line(m.p, m.len, first, index);
	(void)gs_linetable_line(m.p, m.len, 0, m.len > 0 ? (int)(m.len * 4) : 0);
	(void)gs_lnotab_line(m.p, m.len, first, index);
	(void)gs_linetable310_line(m.p, m.len, first, index);

	/* the 3.9 and 3.10 walkers (PyFrameObject chains, the TID through struct pthread) */
	ps = gs_pystacks_synthetic((sel & 1) ? 10 : 9, BASE + 0x100, CODE_TYPE);
	if (!ps)
		abort();
	s.ps = ps;
	(void)gs_pystacks_sample(ps, rd, &m, cb, &s);
	gs_pystacks_free(ps);

	/* merging with a native stack: flags, stack pointers and entries from the image */
	if (m.len >= 64) {
		unsigned flags[32];
		uint64_t sps[32], eaddr[32];
		uint8_t entry[32], evals[32];
		int out[64], mismatch, npc = m.p[0] % 33, n = m.p[1] % 33, got;
		for (int i = 0; i < 32; i++) {
			flags[i] = m.p[2 + i] & 3;
			entry[i] = m.p[34 % m.len] & (1u << (i & 7)) ? 1 : 0;
			sps[i] = 0x1000 + (uint64_t)i * m.p[(i + 3) % m.len];
			eaddr[i] = 0x1000 + (uint64_t)m.p[(i * 7) % m.len] * 16;
		}
		got = gs_native_merge(flags, (sel & 2) ? sps : NULL, npc, sel & 4, entry, (sel & 8) ? eaddr : NULL, n,
				      out, (int)(m.p[2] % 64) + 1, &mismatch, evals);
		for (int j = 0; j < got; j++)
			if (out[j] >= npc || out[j] < -n)
				abort();
	}
	return 0;
}
