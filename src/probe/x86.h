/* x86.h - x86-64 machine code: a small instruction-length decoder, and the code emitted for
 * the inline probes.
 *
 * gilscope needs three things from machine code: the targets of direct calls and jumps
 * (to find static functions such as take_gil in stripped interpreters), the bounds of a
 * linear walk through a function, and the value an instruction stored (to tell a GIL
 * acquisition, locked=1, from a release, locked=0, at a watchpoint hit, whose sample IP is
 * the instruction after the store). The inline probes (inline.c) need trampolines: a recording
 * sequence, jumps, and instructions moved with their RIP-relative operands fixed. Pure: no
 * state, no I/O. The rest of the architecture-specific code: ptrace.c (tracee registers,
 * remote system calls), x86_glibc.h (the TID's place in glibc's struct pthread, perf's register
 * order) and native.c (perf-to-DWARF register numbering); x86_rdtsc here reads our own TSC.
 */
#ifndef GS_X86_H
#define GS_X86_H

#include <stddef.h>
#include <stdint.h>

enum x86_kind {
	X86_OTHER = 0,
	X86_CALL_REL, /* e8 rel32: target valid */
	X86_JMP_REL,  /* e9 rel32 / eb rel8: target valid */
	X86_JCC_REL,  /* conditional jump: target valid */
	X86_RET,
	X86_JMP_IND_RIP,  /* ff 25 disp32: jmp *disp(%rip) (PLT stubs); mem_addr valid */
	X86_CALL_IND_RIP, /* ff 15 disp32: call *disp(%rip) (-fno-plt); mem_addr valid */
	X86_STORE_IMM,    /* c7 /0 or c6 /0 to memory: imm and mem operand valid */
	X86_STORE_REG,    /* 89 /r or 88 /r to memory: src_reg valid */
	X86_LEA,          /* 8d /r: reg = destination, memory operand valid */
	X86_MOV_IMM,      /* b8+r imm32 (or imm64): reg = destination, imm valid */
};

#define X86_REG_NONE (-1)
#define X86_REG_RIP 16

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
	unsigned disp_off; /* byte offset of the disp32 in the instruction when rip_relative */
	int base_reg;      /* memory operand's base register (0..15), X86_REG_RIP, or X86_REG_NONE */
	int reg;           /* X86_LEA / X86_MOV_IMM: destination register (rdi = 7) */
};

/* Decodes one instruction at p (address addr, avail bytes readable). Returns its length
 * (1..15) or 0 when the bytes are not a valid or supported instruction. */
unsigned x86_decode(const uint8_t *p, size_t avail, uint64_t addr, struct x86_insn *out);

/* Given the bytes just before address ip (buf holds the n bytes [ip-n, ip)), finds the
 * memory store instruction that ends exactly at ip. Returns 1 and fills *out for an
 * immediate store, 2 for a register store, 0 when no store ends there. */
int x86_store_ending_at(const uint8_t *buf, size_t n, uint64_t ip, struct x86_insn *out);

/* ---- inline probes: code generation (see inline.c) ------------------------------------------ */

/* Ring layout shared with the generated code: a 4096-byte header (u64 head at 0, u64 tail at
 * 8, u64 lost at 16) and 32-byte slots from 4096: u64 seq+1 (written last: the commit), u64 TSC,
 * u32 tid, u32 code. */
#define X86_RING_HDR 4096u
/* The ring header's words: the writers' shared head (lock xadd) and lost counter on the first
 * cache line, the reader's tail on a line of its own (written once per drain, read by writers
 * to see a full ring), so that the reader never takes the writers' line away from them. */
#define X86_RING_HEAD_OFF 0u
#define X86_RING_LOST_OFF 16u
#define X86_RING_TAIL_OFF 64u
#define X86_SLOT_SIZE 32u

/* Which GIL an event concerns: the address of its `locked` field, computed in the trampoline. */
enum x86_ref_kind {
	X86_REF_NONE = 0,
	X86_REF_BASE,  /* disp(%base): the store's own memory operand */
	X86_REF_ABS,   /* a static address */
	X86_REF_CHAIN, /* take_gil's argument: ((tstate + c0)->... + c1) + add: tstate->interp->ceval.gil + locked */
};

struct x86_ref {
	enum x86_ref_kind kind;
	int base; /* X86_REF_BASE: register number */
	int64_t disp;
	uint64_t abs;
	uint32_t c0, c1, add;
};

/* Emits the recording sequence (preserves every register and the flags, skips the red zone):
 * reserve a slot with lock xadd, store rdtsc, the thread id read at %fs:tid_off, code and the
 * GIL reference, then commit; counts a lost event when the ring is full. Slots are 32 bytes:
 * u64 seq+1, u64 TSC, u32 tid, u32 code, u64 GIL ref. Returns the length (at most 200 bytes). */
size_t x86_emit_record(uint8_t *out, uint64_t ring, uint64_t nslots, uint32_t tid_off, uint32_t code,
		       const struct x86_ref *ref);
/* jmp rel32 from `from` to `to`: 5 bytes, or 0 when out of range. */
size_t x86_emit_jmp(uint8_t *out, uint64_t from, uint64_t to);
/* Copies instruction(s) from address `from` to `to`, fixing RIP-relative displacements.
 * Returns len, or 0 when an instruction cannot be moved (branch, or out of range). */
size_t x86_relocate(const uint8_t *in, size_t len, uint64_t from, uint64_t to, uint8_t *out);

/* This CPU's time stamp counter (the clock the inline probes' trampolines read). */
uint64_t x86_rdtsc(void);

#endif
