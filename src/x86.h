/* x86.h - the only architecture-specific code: a small x86-64 instruction-length decoder.
 *
 * gilscope needs three things from machine code: the targets of direct calls and jumps
 * (to find static functions such as take_gil in stripped interpreters), the bounds of a
 * linear walk through a function, and the value an instruction stored (to tell a GIL
 * acquisition, locked=1, from a release, locked=0, at a watchpoint hit, whose sample IP is
 * the instruction after the store). Everything else in gilscope is architecture-neutral.
 */
#ifndef GS_X86_H
#define GS_X86_H

#include <stddef.h>
#include <stdint.h>

enum x86_kind {
	X86_OTHER = 0,
	X86_CALL_REL,   /* e8 rel32: target valid */
	X86_JMP_REL,    /* e9 rel32 / eb rel8: target valid */
	X86_JCC_REL,    /* conditional jump: target valid */
	X86_RET,
	X86_JMP_IND_RIP, /* ff 25 disp32: jmp *disp(%rip) (PLT stubs); mem_addr valid */
	X86_CALL_IND_RIP, /* ff 15 disp32: call *disp(%rip) (-fno-plt); mem_addr valid */
	X86_STORE_IMM,  /* c7 /0 or c6 /0 to memory: imm and mem operand valid */
	X86_STORE_REG,  /* 89 /r or 88 /r to memory: src_reg valid */
};

struct x86_insn {
	unsigned len;
	enum x86_kind kind;
	uint64_t target;   /* branch target (absolute, given the instruction's address) */
	int64_t imm;       /* stored immediate, sign-extended */
	unsigned width;    /* store width in bytes */
	int rip_relative;  /* memory operand is disp(%rip) */
	uint64_t mem_addr; /* absolute address when rip_relative */
	int64_t disp;      /* displacement of the memory operand */
	int src_reg;       /* for X86_STORE_REG: register number 0..15 (rax=0 .. r15=15) */
};

/* Decodes one instruction at p (address addr, avail bytes readable). Returns its length
 * (1..15) or 0 when the bytes are not a valid or supported instruction. */
unsigned x86_decode(const uint8_t *p, size_t avail, uint64_t addr, struct x86_insn *out);

/* Given the bytes just before address ip (buf holds the n bytes [ip-n, ip)), finds the
 * memory store instruction that ends exactly at ip. Returns 1 and fills *out for an
 * immediate store, 2 for a register store, 0 when no store ends there. */
int x86_store_ending_at(const uint8_t *buf, size_t n, uint64_t ip, struct x86_insn *out);

#endif

/* ptrace helpers for the entry-point breakpoint (architecture-specific register access). */
#include <sys/types.h>
/* Inserts a breakpoint at addr in stopped tracee pid; *saved receives the original word. */
int x86_bp_insert(pid_t pid, uint64_t addr, long *saved);
/* After the tracee stopped with SIGTRAP: returns 1 when it stopped on the breakpoint at addr,
 * in which case the original word is restored and the PC moved back to addr. */
int x86_bp_hit_and_remove(pid_t pid, uint64_t addr, long saved);
