/* Unit tests: the x86-64 decoder on byte sequences copied from the interpreters' disassembly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe/x86.h"

static void test_store_imm_base_disp(void **state)
{
	/* 4ceaaf: movl $0x1,0x178(%r15)   (Debian 3.11 take_gil) */
	static const uint8_t b[] = { 0x41, 0xc7, 0x87, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 };
	struct x86_insn in;
	(void)state;
	assert_int_equal(x86_decode(b, sizeof(b), 0x4ceaaf, &in), 11);
	assert_int_equal(in.kind, X86_STORE_IMM);
	assert_int_equal(in.imm, 1);
	assert_int_equal(in.width, 4);
	assert_int_equal(in.disp, 0x178);
	assert_false(in.rip_relative);
}

static void test_store_imm_rip(void **state)
{
	/* 4fe24c: movl $0x0,0x558142(%rip)  # a56398 */
	static const uint8_t b[] = { 0xc7, 0x05, 0x42, 0x81, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00 };
	struct x86_insn in;
	(void)state;
	assert_int_equal(x86_decode(b, sizeof(b), 0x4fe24c, &in), 10);
	assert_int_equal(in.kind, X86_STORE_IMM);
	assert_int_equal(in.imm, 0);
	assert_true(in.rip_relative);
	assert_int_equal(in.mem_addr, 0xa56398);
}

static void test_branches(void **state)
{
	/* 4c5b34: call 4c5b17 ; 4c5b39: jmp 4cea20 ; 75 0b: jne +11 ; c3: ret */
	static const uint8_t call[] = { 0xe8, 0xde, 0xff, 0xff, 0xff };
	static const uint8_t jmp[] = { 0xe9, 0xe2, 0x8e, 0x00, 0x00 };
	static const uint8_t jne[] = { 0x75, 0x0b };
	static const uint8_t ret[] = { 0xc3 };
	static const uint8_t plt[] = { 0xff, 0x25, 0x0a, 0x1c, 0x52, 0x00 }; /* 41f7b0: jmp *0x521c0a(%rip) */
	struct x86_insn in;
	(void)state;
	assert_int_equal(x86_decode(call, sizeof(call), 0x4c5b34, &in), 5);
	assert_int_equal(in.kind, X86_CALL_REL);
	assert_int_equal(in.target, 0x4c5b17);
	assert_int_equal(x86_decode(jmp, sizeof(jmp), 0x4c5b39, &in), 5);
	assert_int_equal(in.kind, X86_JMP_REL);
	assert_int_equal(in.target, 0x4cea20);
	assert_int_equal(x86_decode(jne, sizeof(jne), 0x1000, &in), 2);
	assert_int_equal(in.kind, X86_JCC_REL);
	assert_int_equal(in.target, 0x100d);
	assert_int_equal(x86_decode(ret, sizeof(ret), 0, &in), 1);
	assert_int_equal(in.kind, X86_RET);
	assert_int_equal(x86_decode(plt, sizeof(plt), 0x41f7b0, &in), 6);
	assert_int_equal(in.kind, X86_JMP_IND_RIP);
	assert_int_equal(in.mem_addr, 0x9413c0);
}

static void test_lengths(void **state)
{
	struct {
		uint8_t b[15];
		unsigned len;
	} cases[] = {
		{ { 0x48, 0x8b, 0x05, 0x37, 0x09, 0x59, 0x00 }, 7 }, /* mov 0x590937(%rip),%rdi */
		{ { 0x48, 0x85, 0xff }, 3 },                         /* test %rdi,%rdi */
		{ { 0x50 }, 1 },                                     /* push %rax */
		{ { 0xbf, 0x90, 0x99, 0x8c, 0x00 }, 5 },             /* mov $0x8c9990,%edi */
		{ { 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8 }, 10 },      /* movabs */
		{ { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 }, 6 },       /* nopw 0x0(%rax,%rax,1) */
		{ { 0xf3, 0x0f, 0x1e, 0xfa }, 4 },                   /* endbr64 */
		{ { 0x48, 0x81, 0xec, 0x88, 0x00, 0x00, 0x00 }, 7 }, /* sub $0x88,%rsp */
		{ { 0x0f, 0x84, 0x10, 0x00, 0x00, 0x00 }, 6 },       /* je rel32 */
		{ { 0xc5, 0xf9, 0x6f, 0x05, 1, 2, 3, 4 }, 8 },       /* vmovdqa (VEX) rip */
		{ { 0xf6, 0x40, 0x10, 0x01 }, 4 },                   /* testb $1,0x10(%rax) */
		{ { 0x8b, 0x44, 0x24, 0x08 }, 4 },                   /* mov 0x8(%rsp),%eax */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct x86_insn in;
		assert_int_equal(x86_decode(cases[i].b, cases[i].len, 0, &in), cases[i].len);
		/* one byte short: not a complete instruction */
		assert_int_equal(x86_decode(cases[i].b, cases[i].len - 1, 0, &in), 0);
	}
}

static void test_store_ending_at(void **state)
{
	/* bytes before a watchpoint sample IP: some instruction, then movl $0x1,0x178(%r15) */
	static const uint8_t b[] = {
		0x48, 0x89, 0xdf, 0x41, 0xc7, 0x87, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00
	};
	/* mov %ebx,0x10(%rax): a register store */
	static const uint8_t r[] = { 0x90, 0x90, 0x90, 0x89, 0x58, 0x10 };
	struct x86_insn in;
	(void)state;
	assert_int_equal(x86_store_ending_at(b, sizeof(b), 0x4ceaba, &in), 1);
	assert_int_equal(in.imm, 1);
	assert_int_equal(x86_store_ending_at(r, sizeof(r), 0x2000, &in), 2);
	assert_int_equal(in.src_reg, 3);
	/* garbage: no store ends there */
	static const uint8_t g[] = { 0x90, 0x90, 0x90, 0x90 };
	assert_int_equal(x86_store_ending_at(g, sizeof(g), 0x3000, &in), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_imm_base_disp),
		cmocka_unit_test(test_store_imm_rip),
		cmocka_unit_test(test_branches),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_store_ending_at),
	};
	return cmocka_run_group_tests_name("x86", tests, NULL, NULL);
}
