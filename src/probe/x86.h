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

/* Ring layout shared with the generated code: one ring per possible CPU (nrings, a power of 2),
 * ring r at base + r * X86_RING_STRIDE(nslots). A ring is a 256-byte header and nslots 32-byte
 * slots. The header: the writers' u64 head (the next slot number) and u64 lost (events dropped
 * on a full ring) on the first cache line, the reader's u64 tail (the slots read, written once
 * per drain) on a line of its own, away from the writers' line and its adjacent-line pair. A
 * slot: u64 seq+1 (written last: the commit), u64 TSC, u32 tid, u32 code, u64 GIL reference.
 * A writer picks the ring of the CPU it runs on (rdpid, or rdtscp's TSC_AUX: cpu | node << 12),
 * so a ring's lines stay in one CPU's cache; the thread may migrate between reading the CPU and
 * reserving, so the reservation stays atomic (lock cmpxchg: a full ring takes no slot number). */
#define X86_RING_HEAD_OFF 0u
#define X86_RING_LOST_OFF 8u
#define X86_RING_TAIL_OFF 128u
#define X86_RING_RHDR 256u
#define X86_SLOT_SIZE 32u
#define X86_RING_STRIDE(nslots) (X86_RING_RHDR + (uint64_t)(nslots)*X86_SLOT_SIZE)
#define X86_RING_MAX 4096u            /* TSC_AUX's CPU field is 12 bits */
#define X86_RING_MAX_SLOTS (1u << 22) /* a ring's stride must fit an imm32 */

/* How the recording sequence finds the CPU it runs on. */
enum x86_cpu_insn {
	X86_CPU_NONE = 0, /* one ring for all */
	X86_CPU_RDPID,    /* rdpid: the cheap one */
	X86_CPU_RDTSCP,   /* rdtscp's TSC_AUX (its TSC is thrown away) */
};

/* Where the rings are and how to pick one: what x86_emit_record needs. */
struct x86_ring_geom {
	uint64_t base;   /* the rings' address in the process that runs the code */
	uint64_t nslots; /* slots per ring: a power of 2, 1 .. X86_RING_MAX_SLOTS */
	uint32_t nrings; /* a power of 2, 1 .. X86_RING_MAX */
	enum x86_cpu_insn cpu;
	int pushf; /* save the flags with pushf/popf (no lahf/sahf in 64-bit mode) */
};

/* The geometry for ncpus possible CPUs and total_slots slots in all (at least 2^10 per ring),
 * for this CPU's instructions; base 0. */
struct x86_ring_geom x86_ring_geom_for(unsigned ncpus, uint64_t total_slots);
/* The bytes the rings take. */
size_t x86_ring_size(const struct x86_ring_geom *g);

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
 * pick this CPU's ring, reserve a slot with lock cmpxchg (or count a lost event when the ring
 * is full), read the slot (a page of the ring met for the first time is then mapped by a read
 * fault, which maps the pages around it that gilscope has allocated ahead, 16 for one fault with
 * the kernel's 64 KiB fault-around, where a write fault maps one), store rdtsc (read after the
 * reservation: see gs_inline_drain), the thread id read at %fs:tid_off, code and the GIL
 * reference, then commit. ordered: an lfence first, so that the
 * TSC is read after every earlier instruction has run (an acquisition: after the load that saw
 * the GIL free, so after the TSC of the release that freed it, even on another CPU: rdtsc is
 * not ordered, and the rings' order says nothing). Returns the length (at most 210 bytes). */
size_t x86_emit_record(uint8_t *out, const struct x86_ring_geom *g, uint32_t tid_off, uint32_t code,
		       const struct x86_ref *ref, int ordered);
/* jmp rel32 from `from` to `to`: 5 bytes, or 0 when out of range. */
size_t x86_emit_jmp(uint8_t *out, uint64_t from, uint64_t to);
/* Copies instruction(s) from address `from` to `to`, fixing RIP-relative displacements.
 * Returns len, or 0 when an instruction cannot be moved (branch, or out of range). */
size_t x86_relocate(const uint8_t *in, size_t len, uint64_t from, uint64_t to, uint8_t *out);

/* This CPU's time stamp counter (the clock the inline probes' trampolines read). */
uint64_t x86_rdtsc(void);

#endif
