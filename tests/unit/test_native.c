/* Native stacks: the perf record decoder, the perf map parser, the merge of native and Python
 * frames, and a real DWARF unwinding of this test's own stack with libdwfl. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "cpython/native.h"
#include "record/natsample.h"

/* ---- the ring record decoder ------------------------------------------------------------- */

static size_t build_sample(uint8_t *buf, uint64_t id, uint32_t pid, uint32_t tid, uint64_t time, int with_regs,
			   uint64_t stack_size, uint64_t dyn)
{
	struct perf_event_header h = { .type = PERF_RECORD_SAMPLE };
	uint8_t *p = buf + sizeof(h);
	uint64_t abi = with_regs ? PERF_SAMPLE_REGS_ABI_64 : PERF_SAMPLE_REGS_ABI_NONE;
	memcpy(p, &id, 8);
	memcpy(p + 8, &pid, 4);
	memcpy(p + 12, &tid, 4);
	memcpy(p + 16, &time, 8);
	memcpy(p + 24, &abi, 8);
	p += 32;
	if (with_regs) {
		for (uint64_t i = 0; i < GS_NATIVE_NREGS; i++) {
			uint64_t v = 0x1000 + i;
			memcpy(p, &v, 8);
			p += 8;
		}
	}
	memcpy(p, &stack_size, 8);
	p += 8;
	if (stack_size) {
		memset(p, 0xab, stack_size);
		p += stack_size;
		memcpy(p, &dyn, 8);
		p += 8;
	}
	h.size = (uint16_t)(p - buf);
	memcpy(buf, &h, sizeof(h));
	return h.size;
}

static void test_decode_sample(void **state)
{
	uint64_t buf[512];
	struct gs_natrec r;
	size_t n;
	(void)state;
	n = build_sample((uint8_t *)buf, 77, 10, 11, 12345, 1, 64, 40);
	assert_int_equal(gs_natrec_decode((struct perf_event_header *)buf, &r), 0);
	assert_int_equal(r.kind, GS_NATREC_SAMPLE);
	assert_int_equal(r.id, 77);
	assert_int_equal(r.pid, 10);
	assert_int_equal(r.tid, 11);
	assert_int_equal(r.time, 12345);
	assert_non_null(r.regs);
	assert_int_equal(r.regs[0], 0x1000);
	assert_int_equal(r.regs[GS_NATIVE_NREGS - 1], 0x1000 + GS_NATIVE_NREGS - 1);
	assert_int_equal(r.stack_len, 40); /* dyn_size: what the kernel could copy */
	assert_int_equal(r.stack[0], 0xab);

	/* every truncation of it is refused, never read past */
	for (size_t cut = sizeof(struct perf_event_header); cut < n; cut += 8) {
		struct perf_event_header *h = (struct perf_event_header *)buf;
		uint8_t *copy = malloc(cut);
		memcpy(copy, buf, cut);
		((struct perf_event_header *)copy)->size = (uint16_t)cut;
		assert_int_equal(gs_natrec_decode((struct perf_event_header *)copy, &r), -EINVAL);
		free(copy);
		(void)h;
	}
	/* a dyn_size larger than the copy is bounded by the copy */
	build_sample((uint8_t *)buf, 1, 1, 1, 1, 1, 32, 1u << 20);
	assert_int_equal(gs_natrec_decode((struct perf_event_header *)buf, &r), 0);
	assert_int_equal(r.stack_len, 32);
	/* a kernel thread: no registers, no stack */
	build_sample((uint8_t *)buf, 1, 1, 1, 1, 0, 0, 0);
	assert_int_equal(gs_natrec_decode((struct perf_event_header *)buf, &r), 0);
	assert_null(r.regs);
	assert_int_equal(r.stack_len, 0);
	/* a stack size beyond the record */
	n = build_sample((uint8_t *)buf, 1, 1, 1, 1, 1, 64, 64);
	{
		uint64_t huge = 1ull << 40;
		memcpy((uint8_t *)buf + 8 + 32 + GS_NATIVE_NREGS * 8, &huge, 8);
		assert_int_equal(gs_natrec_decode((struct perf_event_header *)buf, &r), -EINVAL);
	}
}

static void test_decode_other_records(void **state)
{
	uint64_t buf[16] = { 0 };
	struct perf_event_header *h = (struct perf_event_header *)buf;
	struct gs_natrec r;
	uint32_t pid = 5, tid = 6;
	uint64_t time = 99, id = 3;
	(void)state;
	/* switch-in, trailer only */
	h->type = PERF_RECORD_SWITCH;
	h->size = sizeof(*h) + 24;
	memcpy((uint8_t *)buf + 8, &pid, 4);
	memcpy((uint8_t *)buf + 12, &tid, 4);
	memcpy((uint8_t *)buf + 16, &time, 8);
	memcpy((uint8_t *)buf + 24, &id, 8);
	assert_int_equal(gs_natrec_decode(h, &r), 0);
	assert_int_equal(r.kind, GS_NATREC_SWITCH_IN);
	assert_int_equal(r.tid, 6);
	assert_int_equal(r.time, 99);
	h->misc = PERF_RECORD_MISC_SWITCH_OUT;
	assert_int_equal(gs_natrec_decode(h, &r), 0);
	assert_int_equal(r.kind, GS_NATREC_SWITCH_OUT);
	h->size = sizeof(*h) + 16;
	assert_int_equal(gs_natrec_decode(h, &r), -EINVAL);
	h->size = 4;
	assert_int_equal(gs_natrec_decode(h, &r), -EINVAL);
	/* lost */
	memset(buf, 0, sizeof(buf));
	h->type = PERF_RECORD_LOST;
	h->size = sizeof(*h) + 16;
	time = 42;
	memcpy((uint8_t *)buf + 16, &time, 8);
	assert_int_equal(gs_natrec_decode(h, &r), 0);
	assert_int_equal(r.kind, GS_NATREC_LOST);
	assert_int_equal(r.time, 42);
	/* unknown types are skipped */
	h->type = 1000;
	assert_int_equal(gs_natrec_decode(h, &r), 0);
	assert_int_equal(r.kind, GS_NATREC_OTHER);
}

/* ---- perf maps ----------------------------------------------------------------------------- */

static void test_perfmap_lines(void **state)
{
	uint64_t start, size;
	const char *name;
	(void)state;
	assert_int_equal(gs_perfmap_parse_line("7f12a0001000 2b py::work:/tmp/x y.py\n", &start, &size, &name), 0);
	assert_int_equal(start, 0x7f12a0001000ull);
	assert_int_equal(size, 0x2b);
	assert_string_equal(name, "py::work:/tmp/x y.py\n");
	assert_int_equal(gs_perfmap_parse_line("0x10 0x20 f", &start, &size, &name), 0);
	assert_int_equal(start, 0x10);
	assert_int_equal(gs_perfmap_parse_line("", &start, &size, &name), -EINVAL);
	assert_int_equal(gs_perfmap_parse_line("zz 10 f", &start, &size, &name), -EINVAL);
	assert_int_equal(gs_perfmap_parse_line("10 0 f", &start, &size, &name), -EINVAL); /* empty */
	assert_int_equal(gs_perfmap_parse_line("10 20", &start, &size, &name), -EINVAL);  /* no name */
	assert_int_equal(gs_perfmap_parse_line("10 20 \n", &start, &size, &name), -EINVAL);
	assert_int_equal(gs_perfmap_parse_line("11112222333344445 1 f", &start, &size, &name), -EINVAL); /* 17 digits */
	assert_int_equal(gs_perfmap_parse_line("ffffffffffffffff 2 f", &start, &size, &name), -EINVAL);  /* wraps */
}

/* ---- merging -------------------------------------------------------------------------------- */

/* native, innermost first: 0 leaf (C), 1 eval, 2 C call, 3 eval, 4 thread start
 * Python, innermost first: 0 inner (entry of the inner call), 1 mid, 2 outer (entry) */
static void test_merge_by_names(void **state)
{
	const unsigned flags[] = { 0, GS_NATFRAME_EVAL, 0, GS_NATFRAME_EVAL, 0 };
	const uint8_t entry[] = { 1, 0, 1 };
	const int want[] = { 0, -1, 1, 2, -2, -3, 3, 4 };
	int out[32], mismatch = -1;
	int m;
	(void)state;
	m = gs_native_merge(flags, NULL, 5, 1, entry, NULL, 3, out, 32, &mismatch, NULL);
	assert_int_equal(m, 8);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(mismatch, 0);

	/* a third loop call the Python side does not have: told */
	{
		const unsigned f3[] = { GS_NATFRAME_EVAL, GS_NATFRAME_EVAL, GS_NATFRAME_EVAL };
		m = gs_native_merge(f3, NULL, 3, 1, entry, NULL, 3, out, 32, &mismatch, NULL);
		assert_int_equal(mismatch, 1);
		assert_int_equal(m, 6);
	}
	/* the copy ended after the first loop call: the outer Python frames go outermost, no mismatch */
	{
		const int want2[] = { 0, -1, 1, 2, -2, -3 };
		m = gs_native_merge(flags, NULL, 3, 0, entry, NULL, 3, out, 32, &mismatch, NULL);
		assert_int_equal(m, 6);
		assert_memory_equal(out, want2, sizeof(want2));
		assert_int_equal(mismatch, 0);
	}
	/* no native frames: the Python stack alone */
	m = gs_native_merge(flags, NULL, 0, 0, entry, NULL, 3, out, 32, &mismatch, NULL);
	assert_int_equal(m, 3);
	assert_int_equal(out[0], -1);
	assert_int_equal(out[2], -3);
	/* bounded output */
	m = gs_native_merge(flags, NULL, 5, 1, entry, NULL, 3, out, 4, &mismatch, NULL);
	assert_int_equal(m, 4);
}

/* 3.12+: entry frames found by address, the names unknown (a stripped build) */
static void test_merge_by_addresses(void **state)
{
	const unsigned flags[] = { 0, 0, 0, 0, 0 };
	const uint64_t sps[] = { 0x1000, 0x1100, 0x1400, 0x1500, 0x1900 };
	const uint8_t entry[] = { 1, 0, 1 };
	const uint64_t eaddr[] = { 0x1180, 0, 0x1600 }; /* in frames 1 and 3 */
	const int want[] = { 0, -1, 1, 2, -2, -3, 3, 4 };
	int out[32], mismatch = -1;
	int m;
	(void)state;
	uint8_t evals[5];
	m = gs_native_merge(flags, sps, 5, 1, entry, eaddr, 3, out, 32, &mismatch, evals);
	assert_int_equal(m, 8);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(mismatch, 0);
	assert_int_equal(evals[0], 0);
	assert_int_equal(evals[1], 1);
	assert_int_equal(evals[2], 0);
	assert_int_equal(evals[3], 1);
	assert_int_equal(evals[4], 0);
}

/* ---- a real unwinding -------------------------------------------------------------------- */

static uint64_t captured_regs[GS_NATIVE_NREGS];
static uint8_t captured_stack[32768];
static size_t captured_len;

/* What the kernel does for a sample: copy the raw stack, redzones and all (so not under ASan). */
static __attribute__((noinline, no_sanitize("address"))) void copy_stack(uint8_t *dst, uintptr_t src, size_t len)
{
	const volatile uint8_t *s = (const volatile uint8_t *)src;
	for (size_t i = 0; i < len; i++)
		dst[i] = s[i];
}

static __attribute__((noinline)) void capture_here(void)
{
	ucontext_t uc;
	greg_t *g;
	uint64_t r[GS_NATIVE_NREGS];
	getcontext(&uc);
	g = uc.uc_mcontext.gregs;
	r[0] = (uint64_t)g[REG_RAX];
	r[1] = (uint64_t)g[REG_RBX];
	r[2] = (uint64_t)g[REG_RCX];
	r[3] = (uint64_t)g[REG_RDX];
	r[4] = (uint64_t)g[REG_RSI];
	r[5] = (uint64_t)g[REG_RDI];
	r[6] = (uint64_t)g[REG_RBP];
	r[7] = (uint64_t)g[REG_RSP];
	r[8] = (uint64_t)g[REG_RIP];
	r[9] = (uint64_t)g[REG_R8];
	r[10] = (uint64_t)g[REG_R9];
	r[11] = (uint64_t)g[REG_R10];
	r[12] = (uint64_t)g[REG_R11];
	r[13] = (uint64_t)g[REG_R12];
	r[14] = (uint64_t)g[REG_R13];
	r[15] = (uint64_t)g[REG_R14];
	r[16] = (uint64_t)g[REG_R15];
	memcpy(captured_regs, r, sizeof(r));
	captured_len = sizeof(captured_stack);
	{
		/* no further than the end of the stack mapping */
		FILE *f = fopen("/proc/self/maps", "r");
		char line[512];
		while (f && fgets(line, sizeof(line), f)) {
			unsigned long lo, hi;
			if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && r[7] >= lo && r[7] < hi &&
			    hi - r[7] < captured_len)
				captured_len = hi - r[7];
		}
		if (f)
			fclose(f);
	}
	copy_stack(captured_stack, (uintptr_t)r[7], captured_len);
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void second_level_caller(void)
{
	capture_here();
	__asm__ volatile("");
}

static __attribute__((noinline)) void first_level_caller(void)
{
	second_level_caller();
	__asm__ volatile("");
}

static void test_unwind_own_stack(void **state)
{
	char why[256];
	struct gs_native *n;
	uint64_t pcs[GS_NATIVE_UNWIND_MAX_FRAMES], sps[GS_NATIVE_UNWIND_MAX_FRAMES];
	int complete = -1, count, seen = 0;
	(void)state;
	first_level_caller();
	n = gs_native_new(getpid(), why, sizeof(why));
	assert_non_null(n);
	count = gs_native_unwind(n, (uint32_t)gettid(), captured_regs, captured_stack, captured_len, pcs, sps,
				 GS_NATIVE_UNWIND_MAX_FRAMES, &complete);
	assert_true(count >= 4);
	for (int i = 0; i < count; i++) {
		const char *name, *module;
		unsigned flags;
		gs_native_symbol(n, pcs[i], &name, &module, &flags);
		assert_int_equal(flags, 0);
		if (i > 0)
			assert_true(sps[i] >= sps[i - 1]); /* the stack grows down: callers above */
		if (seen == 0 && strcmp(name, "capture_here") == 0)
			seen = 1;
		else if (seen == 1 && strcmp(name, "second_level_caller") == 0)
			seen = 2;
		else if (seen == 2 && strcmp(name, "first_level_caller") == 0)
			seen = 3;
		else if (seen == 3 && strcmp(name, "test_unwind_own_stack") == 0)
			seen = 4;
		if (strcmp(name, "capture_here") == 0)
			assert_non_null(strstr(module, "test_native"));
	}
	assert_int_equal(seen, 4);     /* every caller, in order */
	assert_int_equal(complete, 1); /* down to _start */
	/* a copy cut short: fewer frames, not complete, nothing read beyond it */
	count = gs_native_unwind(n, (uint32_t)gettid(), captured_regs, captured_stack, 64, pcs, sps,
				 GS_NATIVE_UNWIND_MAX_FRAMES, &complete);
	assert_true(count >= 1);
	assert_int_equal(complete, 0);
	/* no stack at all */
	count = gs_native_unwind(n, (uint32_t)gettid(), captured_regs, NULL, 0, pcs, sps, GS_NATIVE_UNWIND_MAX_FRAMES,
				 &complete);
	assert_true(count >= 1); /* the sampled instruction itself */
	assert_int_equal(complete, 0);
	gs_native_free(n);
	gs_native_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_sample),      cmocka_unit_test(test_decode_other_records),
		cmocka_unit_test(test_perfmap_lines),      cmocka_unit_test(test_merge_by_names),
		cmocka_unit_test(test_merge_by_addresses), cmocka_unit_test(test_unwind_own_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
