/* Unit tests: the Python stack walker on synthetic memory in the 3.11 layout: a normal chain,
 * a deep one (300 frames), a cyclic one, a truncated one, and a frame whose code object is not
 * a code object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cpython/pystack.h"
#include "probe/x86_glibc.h"

#define BASE 0x10000000ull
#define SIZE (1u << 22)
#define CODE_TYPE 0x7777000ull

static uint8_t mem[SIZE];

static int rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	(void)ctx;
	if (addr < BASE || addr - BASE + len > SIZE)
		return -14;
	memcpy(dst, mem + (addr - BASE), len);
	return 0;
}

static void p64(uint64_t addr, uint64_t v) { memcpy(mem + (addr - BASE), &v, 8); }
static void p32(uint64_t addr, uint32_t v) { memcpy(mem + (addr - BASE), &v, 4); }

static uint64_t str_at(uint64_t addr, const char *s)
{
	size_t n = strlen(s);
	p64(addr + 0x10, n);
	mem[addr - BASE + 0x20] = 0x60; /* compact, ascii */
	memcpy(mem + (addr - BASE) + 0x30, s, n);
	return addr;
}

/* code object k named fK at line 10*k, with a one-entry location table (8 units, no column) */
static uint64_t code_at(int k)
{
	uint64_t c = BASE + 0x100000 + (uint64_t)k * 0x400;
	char name[32];
	snprintf(name, sizeof(name), "f%d", k);
	p64(c + 8, CODE_TYPE);
	p64(c + 0x80, str_at(c + 0x200, name));
	p64(c + 0x70, str_at(c + 0x280, "prog.py"));
	p64(c + 0x88, c + 0x300);
	p64(c + 0x300 + 0x10, 2);
	mem[c - BASE + 0x300 + 0x20] = 0xef; /* code 13, 8 units */
	mem[c - BASE + 0x300 + 0x21] = 0x00; /* line delta 0 */
	p32(c + 0x48, (uint32_t)(10 * k));
	return c;
}

/* frames 0..n-1, frame i calls nothing and is called by i+1 (frame 0 innermost) */
static uint64_t frame_addr(int i) { return BASE + 0x20000 + (uint64_t)i * 0x80; }

static void build(int n)
{
	memset(mem, 0, sizeof(mem));
	p64(BASE + 0x100, BASE + 0x1000);         /* interpreters.main -> interp */
	p64(BASE + 0x1000 + 0x10, BASE + 0x2000); /* threads.head -> tstate */
	p64(BASE + 0x2000 + 0xa0, 777);           /* native thread id */
	p64(BASE + 0x2000 + 0x38, BASE + 0x3000); /* cframe */
	p64(BASE + 0x3000 + 8, frame_addr(0));    /* cframe->current_frame */
	for (int i = 0; i < n; i++) {
		uint64_t f = frame_addr(i), c = code_at(i % 512);
		p64(f + 0x20, c);
		p64(f + 0x38, c + 0xb8 + 2); /* prev_instr: second code unit */
		p64(f + 0x30, i + 1 < n ? frame_addr(i + 1) : 0);
	}
}

struct got {
	uint32_t tid;
	struct gs_pyframe f[GS_PYSTACK_MAX_FRAMES];
	int n;
};

static void cb(uint32_t tid, const struct gs_pyframe *f, int n, void *arg)
{
	struct got *g = arg;
	g->tid = tid;
	g->n = n;
	memcpy(g->f, f, (size_t)n * sizeof(*f));
}

static void check_names(struct gs_pystacks *ps, const struct got *g)
{
	for (int i = 0; i < g->n; i++) {
		const char *q, *fn;
		char want[32];
		snprintf(want, sizeof(want), "f%d", i);
		assert_int_equal(gs_pystacks_code(ps, g->f[i].code, &q, &fn), 0);
		assert_string_equal(q, want);
		assert_string_equal(fn, "prog.py");
		assert_int_equal(g->f[i].line, 10 * i);
	}
}

static void test_normal_and_deep(void **state)
{
	(void)state;
	for (int n = 3; n <= 300; n += 297) {
		struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
		struct got g = { 0 };
		build(n);
		assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
		assert_int_equal(g.tid, 777);
		assert_int_equal(g.n, n); /* complete, innermost first */
		check_names(ps, &g);
		gs_pystacks_free(ps);
	}
}

static void test_cyclic_and_truncated(void **state)
{
	struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	struct got g = { 0 };
	uint64_t walks, errors;
	(void)state;
	build(3);
	p64(frame_addr(2) + 0x30, frame_addr(0)); /* the outermost frame points back to the innermost */
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_true(g.n <= GS_PYSTACK_MAX_FRAMES); /* bounded, no hang */
	assert_true(g.n >= 3);
	build(3);
	p64(frame_addr(1) + 0x30, 0xdead00000000ull); /* the chain runs into unmapped memory */
	memset(&g, 0, sizeof(g));
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, 2);
	check_names(ps, &g);
	gs_pystacks_stats(ps, &walks, &errors);
	assert_true(errors >= 1);
	build(3);
	p64(code_at(1) + 8, 0x1234); /* not a code object: that frame is skipped */
	memset(&g, 0, sizeof(g));
	gs_pystacks_free(ps);
	ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, 2);
	/* no interpreter yet (before Py_Initialize): no thread, no error */
	p64(BASE + 0x100, 0);
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 0);
	gs_pystacks_free(ps);
}

static void test_reused_code_address(void **state)
{
	/* a code object freed and its memory reused by another: the cache must notice */
	struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	struct got g = { 0 };
	const char *q, *fn;
	uint32_t gen0;
	(void)state;
	build(2);
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_int_equal(gs_pystacks_code(ps, g.f[1].code, &q, &fn), 0);
	assert_string_equal(q, "f1");
	gen0 = g.f[1].gen;
	p64(code_at(1) + 0x80, str_at(code_at(1) + 0x380, "other_function"));
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_int_equal(gs_pystacks_code(ps, g.f[1].code, &q, &fn), 0);
	assert_string_equal(q, "other_function");
	assert_true(g.f[1].gen != gen0);
	gs_pystacks_free(ps);
}

/* 3.9/3.10: PyFrameObject chains (f_back), the thread found through pthread_self()'s struct
 * pthread, lines from co_lnotab (3.9, byte offsets) or co_linetable (3.10, code units) */
static void build_legacy(int minor, int n, uint64_t pthread)
{
	memset(mem, 0, sizeof(mem));
	p64(BASE + 0x100, BASE + 0x1000);      /* interpreters.main -> interp */
	p64(BASE + 0x1000 + 8, BASE + 0x2000); /* tstate_head */
	p64(BASE + 0x2000 + 176, pthread);     /* thread_id = pthread_self() */
	if (pthread + GS_GLIBC_PTHREAD_TID_OFFSET + 4 <= BASE + SIZE)
		p32(pthread + GS_GLIBC_PTHREAD_TID_OFFSET, 4242); /* struct pthread's tid */
	p64(BASE + 0x2000 + 24, frame_addr(0));                   /* frame */
	for (int i = 0; i < n; i++) {
		uint64_t f = frame_addr(i), c = BASE + 0x100000 + (uint64_t)i * 0x400;
		char name[32];
		snprintf(name, sizeof(name), "f%d", i);
		p64(c + 8, CODE_TYPE);
		p64(c + 112, str_at(c + 0x200, name));
		p64(c + 104, str_at(c + 0x280, "prog.py"));
		p32(c + 40, (uint32_t)(10 * i));
		p64(c + 120, c + 0x300);
		p64(c + 0x300 + 0x10, 4);
		/* two entries: bytes 0-5 on the first line, from byte 6 on the next (+1) */
		mem[c - BASE + 0x320] = 6;
		mem[c - BASE + 0x321] = minor == 9 ? 1 : 0;
		mem[c - BASE + 0x322] = minor == 9 ? 20 : 20;
		mem[c - BASE + 0x323] = 1;
		p64(f + 24, i + 1 < n ? frame_addr(i + 1) : 0);
		p64(f + 32, c);
		/* f_lasti: byte 8 (3.9), code unit 4 = byte 8 (3.10): the second line */
		p32(f + (minor == 9 ? 104 : 96), minor == 9 ? 8 : 4);
	}
}

static void test_legacy_layouts(void **state)
{
	(void)state;
	for (unsigned minor = 9; minor <= 10; minor++) {
		struct gs_pystacks *ps = gs_pystacks_synthetic(minor, BASE + 0x100, CODE_TYPE);
		static struct got g;
		assert_non_null(ps);
		build_legacy((int)minor, 5, BASE + 0x5000);
		memset(&g, 0, sizeof(g));
		assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
		assert_int_equal(g.tid, 4242);
		assert_int_equal(g.n, 5);
		for (int i = 0; i < g.n; i++) {
			const char *q, *fn;
			char want[32];
			snprintf(want, sizeof(want), "f%d", i);
			assert_int_equal(gs_pystacks_code(ps, g.f[i].code, &q, &fn), 0);
			assert_string_equal(q, want);
			assert_int_equal(g.f[i].line, 10 * i + 1);
			assert_int_equal(g.f[i].entry, 1); /* every frame is its own call of the loop */
		}
		/* a pthread_t that cannot be read: the thread is skipped, not misnamed */
		build_legacy((int)minor, 2, BASE + SIZE - 0x100);
		memset(&g, 0, sizeof(g));
		assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
		assert_int_equal(g.n, 0);
		gs_pystacks_free(ps);
	}
}

static void test_legacy_line_tables(void **state)
{
	/* 3.9 co_lnotab: (addr incr, line incr) pairs, line incr signed */
	const uint8_t lnotab[] = { 0, 1, 6, 2, 10, (uint8_t)-1 };
	/* 3.10 co_linetable: (end delta, line delta) pairs, -128: no line */
	const uint8_t lt310[] = { 4, 1, 6, 2, 4, 0x80, 8, (uint8_t)-1 };
	(void)state;
	assert_int_equal(gs_lnotab_line(lnotab, sizeof(lnotab), 10, 0), 11);
	assert_int_equal(gs_lnotab_line(lnotab, sizeof(lnotab), 10, 5), 11);
	assert_int_equal(gs_lnotab_line(lnotab, sizeof(lnotab), 10, 6), 13);
	assert_int_equal(gs_lnotab_line(lnotab, sizeof(lnotab), 10, 16), 12);
	assert_int_equal(gs_lnotab_line(lnotab, sizeof(lnotab), 10, -1), 10);
	assert_int_equal(gs_lnotab_line(lnotab, 3, 10, 100), 11); /* odd length: the last half pair ignored */
	assert_int_equal(gs_linetable310_line(lt310, sizeof(lt310), 10, 0), 11);
	assert_int_equal(gs_linetable310_line(lt310, sizeof(lt310), 10, 4), 13);
	assert_int_equal(gs_linetable310_line(lt310, sizeof(lt310), 10, 10), -1); /* no line */
	assert_int_equal(gs_linetable310_line(lt310, sizeof(lt310), 10, 14), 12);
	assert_int_equal(gs_linetable310_line(lt310, sizeof(lt310), 10, 22), -1); /* past the end */
	assert_int_equal(gs_linetable310_line(lt310, 0, 10, 0), -1);
}

/* 3.11: frames with is_entry set close a call of the evaluation loop */
static void test_entry_frames(void **state)
{
	struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	static struct got g;
	(void)state;
	build(4);
	mem[frame_addr(1) - BASE + 0x44] = 1; /* f1 entered the loop from C */
	mem[frame_addr(3) - BASE + 0x44] = 1;
	assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, 4);
	assert_int_equal(g.f[0].entry, 0);
	assert_int_equal(g.f[1].entry, 1);
	assert_int_equal(g.f[2].entry, 0);
	assert_int_equal(g.f[3].entry, 1);
	gs_pystacks_free(ps);
}

/* gs_mem_words_reader on the synthetic memory: counts its calls; `fail_from` words on are not
 * read (the caller reads them one by one) */
static int words_calls, words_fail_from = 1 << 30;

static int words(void *ctx, const uint64_t *addrs, uint64_t *out, int n)
{
	words_calls++;
	for (int i = 0; i < n; i++)
		if (i >= words_fail_from || rd(ctx, addrs[i], &out[i], 8) < 0)
			return i;
	return n;
}

static int reads;

static int counting_rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	reads++;
	return rd(ctx, addr, dst, len);
}

static void test_code_checked_once_per_sample(void **state)
{
	/* two threads running the same code objects: each cached code object is checked once per
	 * sample, all of a walk's by one words read; a replaced one is still noticed, also when
	 * the words read fails part way */
	(void)state;
	for (int fail = 0; fail <= 1; fail++) {
		struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
		static struct got g;
		const char *q, *fn;
		int r1;
		build(6);
		p64(BASE + 0x2000 + 8, BASE + 0x2800); /* a second thread state, the same frames */
		p64(BASE + 0x2800 + 0xa0, 778);
		p64(BASE + 0x2800 + 0x38, BASE + 0x3000);
		gs_pystacks_set_words_reader(ps, words);
		words_fail_from = fail ? 2 : 1 << 30;
		assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 2); /* fills the cache */
		check_names(ps, &g);
		reads = words_calls = 0;
		assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 2);
		check_names(ps, &g);
		assert_int_equal(words_calls, 1); /* the first thread's walk checked all six */
		r1 = reads;
		/* interp, head, 2 x (tstate, cframe), one window read for the whole chain, and the
		 * words the failing reader left (4 of 6) */
		assert_int_equal(r1, 7 + (fail ? 4 : 0));
		p64(code_at(3) + 0x80, str_at(code_at(3) + 0x380, "replaced"));
		assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 2);
		assert_int_equal(g.n, 6);
		assert_int_equal(gs_pystacks_code(ps, g.f[3].code, &q, &fn), 0);
		assert_string_equal(q, "replaced");
		assert_int_equal(g.f[3].line, 30);
		gs_pystacks_free(ps);
	}
}

/* gs_mem_vreader on the synthetic memory: counts its calls, reads pieces in order up to the first
 * that cannot be read */
static int vreads;

static int vrd(void *ctx, const struct gs_memv *v, int n)
{
	int k = 0;
	vreads++;
	while (k < n && rd(ctx, v[k].addr, v[k].dst, v[k].len) == 0)
		k++;
	return k;
}

static void same_frames(const struct got *a, const struct got *b)
{
	assert_int_equal(a->tid, b->tid);
	assert_int_equal(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		assert_int_equal(a->f[i].code, b->f[i].code);
		assert_int_equal(a->f[i].line, b->f[i].line);
		assert_int_equal(a->f[i].addr, b->f[i].addr);
	}
}

static void test_vectored_reads_guess_and_check(void **state)
{
	/* with a vectored reader a thread of a sample costs one read (its thread state, the cframe's
	 * frame pointer and the pages of its innermost frame, as at the last sample) and the stacks are
	 * the ones the plain reads give, also when the guess is wrong: the stack grew and moved, the
	 * thread state points to another cframe, the interpreter went away */
	struct gs_pystacks *plain = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	struct gs_pystacks *vec = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	static struct got a, b;
	(void)state;
	gs_pystacks_set_words_reader(vec, words);
	gs_pystacks_set_vreader(vec, vrd);
	words_fail_from = 1 << 30;
	build(6);
	for (int round = 0; round < 6; round++) {
		if (round == 3) {
			build(12);                                /* deeper: the innermost frame is elsewhere */
			p64(BASE + 0x2000 + 0x38, BASE + 0x3400); /* another cframe */
			p64(BASE + 0x3400 + 8, frame_addr(0));
			p64(BASE + 0x3000 + 8, frame_addr(5)); /* the old one, stale: not to be used */
		}
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		assert_int_equal(gs_pystacks_sample(plain, rd, NULL, cb, &a), 1);
		reads = vreads = words_calls = 0;
		assert_int_equal(gs_pystacks_sample(vec, counting_rd, NULL, cb, &b), 1);
		same_frames(&a, &b);
		check_names(vec, &b);
		if (round == 2 || round == 5) {
			/* settled: the head (1), the thread with its code objects' check (1), nothing else */
			assert_int_equal(vreads, 2);
			assert_int_equal(reads, 0);
			assert_int_equal(words_calls, 0);
		}
	}
	/* a code object replaced at its address is seen through the check read with the thread */
	{
		const char *q, *fn;
		p64(code_at(3) + 0x80, str_at(code_at(3) + 0x380, "replaced"));
		assert_int_equal(gs_pystacks_sample(vec, counting_rd, NULL, cb, &b), 1);
		assert_int_equal(b.n, 12);
		assert_int_equal(gs_pystacks_code(vec, b.f[3].code, &q, &fn), 0);
		assert_string_equal(q, "replaced");
	}
	p64(BASE + 0x100, 0); /* the interpreter finalized */
	assert_int_equal(gs_pystacks_sample(vec, counting_rd, NULL, cb, &b), 0);
	gs_pystacks_free(plain);
	gs_pystacks_free(vec);
}

static void test_vectored_reads_legacy(void **state)
{
	/* 3.9 and 3.10: the thread id through the pthread_t of the last sample in the same read; a new
	 * pthread_t at the same thread state gives the new thread's id */
	(void)state;
	for (unsigned minor = 9; minor <= 10; minor++) {
		struct gs_pystacks *ps = gs_pystacks_synthetic(minor, BASE + 0x100, CODE_TYPE);
		static struct got g;
		gs_pystacks_set_vreader(ps, vrd);
		build_legacy((int)minor, 5, BASE + 0x5000);
		for (int i = 0; i < 3; i++) {
			memset(&g, 0, sizeof(g));
			assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
			assert_int_equal(g.tid, 4242);
			assert_int_equal(g.n, 5);
		}
		p32(BASE + 0x5000 + GS_GLIBC_PTHREAD_TID_OFFSET, 4343); /* the pthread_t reused by another thread */
		assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
		assert_int_equal(g.tid, 4343);
		p64(BASE + 0x2000 + 176, BASE + 0x6000); /* another pthread_t */
		p32(BASE + 0x6000 + GS_GLIBC_PTHREAD_TID_OFFSET, 4444);
		assert_int_equal(gs_pystacks_sample(ps, rd, NULL, cb, &g), 1);
		assert_int_equal(g.tid, 4444);
		gs_pystacks_free(ps);
	}
}

/* A reader that, when the frame pointer of the cframe at 0x3400 is read, first pushes a frame (f6)
 * and makes it current, as the thread would between two reads of one sample. */
static int hook_armed;
static int hook_rd(void *ctx, uint64_t addr, void *dst, size_t len)
{
	if (hook_armed && addr == BASE + 0x3400 + 8) {
		uint64_t x = BASE + 0x1f800, c6 = BASE + 0x100000 + 6 * 0x400;
		hook_armed = 0;
		/* the thread pushes g (f6) at x and makes it current */
		p64(x + 0x20, c6);
		p64(x + 0x38, c6 + 0xb8 + 2);
		p64(x + 0x30, frame_addr(0));
		p64(BASE + 0x3400 + 8, x);
	}
	return rd(ctx, addr, dst, len);
}

static int hook_vrd(void *ctx, const struct gs_memv *v, int n)
{
	int k = 0;
	while (k < n && hook_rd(ctx, v[k].addr, v[k].dst, v[k].len) == 0)
		k++;
	return k;
}

/* three frames, and where the next frame will be pushed the stale bytes of one that returned long
 * ago (f7) */
static void stale_below(void)
{
	uint64_t x = BASE + 0x1f800, c7;
	build(3);
	code_at(6);
	c7 = code_at(7);
	p64(x + 0x20, c7);
	p64(x + 0x38, c7 + 0xb8 + 2);
	p64(x + 0x30, frame_addr(0));
}

static void test_stale_window_after_a_cframe_switch(void **state)
{
	/* the thread state points to another cframe than at the last sample (3.11, 3.12: a C function
	 * called back into Python): its frame pointer is read after the guessed pages, and a frame
	 * pushed in between must not be read from their older copy (f7 where f6 is) */
	struct gs_pystacks *plain = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	struct gs_pystacks *vec = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	static struct got a, b;
	const char *q, *fn;
	(void)state;
	gs_pystacks_set_vreader(vec, hook_vrd);
	stale_below();
	assert_int_equal(gs_pystacks_sample(plain, rd, NULL, cb, &a), 1);
	assert_int_equal(gs_pystacks_sample(vec, rd, NULL, cb, &b), 1);
	/* the thread entered another cframe (a C function calling back into Python) */
	stale_below();
	p64(BASE + 0x2000 + 0x38, BASE + 0x3400);
	p64(BASE + 0x3400 + 8, frame_addr(0));
	hook_armed = 1;
	memset(&a, 0, sizeof(a));
	assert_int_equal(gs_pystacks_sample(plain, hook_rd, NULL, cb, &a), 1);
	stale_below();
	p64(BASE + 0x2000 + 0x38, BASE + 0x3400);
	p64(BASE + 0x3400 + 8, frame_addr(0));
	hook_armed = 1;
	memset(&b, 0, sizeof(b));
	assert_int_equal(gs_pystacks_sample(vec, hook_rd, NULL, cb, &b), 1);
	assert_int_equal(gs_pystacks_code(plain, a.f[0].code, &q, &fn), 0);
	assert_string_equal(q, "f6");
	assert_int_equal(gs_pystacks_code(vec, b.f[0].code, &q, &fn), 0);
	assert_string_equal(q, "f6");
	same_frames(&a, &b);
	gs_pystacks_free(plain);
	gs_pystacks_free(vec);
}

static void test_stale_frame_pointer(void **state)
{
	/* a thread state whose frame pointer is stale (seen under thread-per-request load on 3.14):
	 * garbage whose caller is itself, or a long chain of frames that hold no code object; given
	 * up after a few reads, not walked 2048 times */
	struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	static struct got g;
	(void)state;
	build(2);
	p64(frame_addr(1) + 0x20, 0xdead000); /* f1: no code object there */
	p64(frame_addr(1) + 0x30, frame_addr(1));
	reads = 0;
	assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, 1);
	assert_true(reads < 16);
	build(300);
	for (int i = 1; i < 300; i++)
		p64(frame_addr(i) + 0x20, BASE + 0x200000 + (uint64_t)i * 0x40); /* zeros: not code */
	reads = 0;
	assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, 1);
	assert_true(reads < 40);
	gs_pystacks_free(ps);
}

static void test_frames_read_through_windows(void **state)
{
	/* CPython's order: each caller's frame below its callee's, in one data stack; a chain of
	 * 40 frames is read by one or two reads, and a frame changed between samples is seen */
	struct gs_pystacks *ps = gs_pystacks_synthetic(11, BASE + 0x100, CODE_TYPE);
	static struct got g;
	uint64_t asked, hits;
	int n = 40;
	(void)state;
	build(0);
	p64(BASE + 0x3000 + 8, BASE + 0x40000 + (uint64_t)(n - 1) * 0x50);
	for (int i = 0; i < n; i++) {
		uint64_t f = BASE + 0x40000 + (uint64_t)(n - 1 - i) * 0x50, c = code_at(i);
		p64(f + 0x20, c);
		p64(f + 0x38, c + 0xb8 + 2);
		p64(f + 0x30, i + 1 < n ? f - 0x50 : 0);
	}
	assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, n);
	check_names(ps, &g);
	gs_pystacks_read_stats(ps, &asked, &hits);
	assert_int_equal(asked, (uint64_t)n);
	assert_true(hits >= (uint64_t)n - 2);
	p64(BASE + 0x40000 + 0x20, code_at(7)); /* the outermost frame now runs f7 */
	assert_int_equal(gs_pystacks_sample(ps, counting_rd, NULL, cb, &g), 1);
	assert_int_equal(g.n, n);
	assert_int_equal(g.f[n - 1].code, code_at(7));
	gs_pystacks_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_and_deep),
		cmocka_unit_test(test_cyclic_and_truncated),
		cmocka_unit_test(test_reused_code_address),
		cmocka_unit_test(test_legacy_layouts),
		cmocka_unit_test(test_legacy_line_tables),
		cmocka_unit_test(test_entry_frames),
		cmocka_unit_test(test_code_checked_once_per_sample),
		cmocka_unit_test(test_frames_read_through_windows),
		cmocka_unit_test(test_stale_frame_pointer),
		cmocka_unit_test(test_vectored_reads_guess_and_check),
		cmocka_unit_test(test_vectored_reads_legacy),
		cmocka_unit_test(test_stale_window_after_a_cframe_switch),
	};
	return cmocka_run_group_tests_name("python stacks", tests, NULL, NULL);
}
