/* x86.c - x86-64 instruction decoding (a length decoder, the subset compiled C code uses) and the
 * code emission of the inline probes (see x86.h). */
#include "probe/x86.h"

#include <cpuid.h>
#include <string.h>

/* Operand flags for the one-byte map. */
enum {
	M = 1,
	IB = 2,
	IZ = 4,
	IW = 8,
	BAD = 16,
	PFX = 32,
	SPECIAL = 64
};

static unsigned char one_byte(unsigned op)
{
	if (op < 0x40) {
		unsigned lo = op & 7;
		if (op == 0x0f)
			return SPECIAL;
		if (op == 0x26 || op == 0x2e || op == 0x36 || op == 0x3e)
			return PFX;
		if (lo <= 3)
			return M;
		if (lo == 4)
			return IB;
		if (lo == 5)
			return IZ;
		return BAD; /* push/pop seg, daa etc.: invalid in 64-bit mode */
	}
	if (op < 0x50)
		return PFX; /* REX */
	if (op < 0x60)
		return 0;
	switch (op) {
	case 0x63:
		return M;
	case 0x64:
	case 0x65:
	case 0x66:
	case 0x67:
		return PFX;
	case 0x68:
		return IZ;
	case 0x69:
		return M | IZ;
	case 0x6a:
		return IB;
	case 0x6b:
		return M | IB;
	case 0x6c:
	case 0x6d:
	case 0x6e:
	case 0x6f:
		return 0;
	}
	if (op >= 0x70 && op <= 0x7f)
		return IB;
	switch (op) {
	case 0x80:
	case 0x83:
		return M | IB;
	case 0x81:
		return M | IZ;
	case 0x82:
		return BAD;
	}
	if (op >= 0x84 && op <= 0x8f)
		return M;
	if (op >= 0x90 && op <= 0x9f)
		return op == 0x9a ? BAD : 0;
	if (op >= 0xa0 && op <= 0xa3)
		return SPECIAL; /* moffs */
	if (op == 0xa8)
		return IB;
	if (op == 0xa9)
		return IZ;
	if (op >= 0xa4 && op <= 0xaf)
		return 0;
	if (op >= 0xb0 && op <= 0xb7)
		return IB;
	if (op >= 0xb8 && op <= 0xbf)
		return SPECIAL; /* imm32 or imm64 with REX.W */
	switch (op) {
	case 0xc0:
	case 0xc1:
	case 0xc6:
		return M | IB;
	case 0xc2:
	case 0xca:
		return IW;
	case 0xc3:
	case 0xc9:
	case 0xcb:
	case 0xcc:
	case 0xcf:
		return 0;
	case 0xc4:
	case 0xc5:
		return SPECIAL; /* VEX */
	case 0xc7:
		return M | IZ;
	case 0xc8:
		return IW | IB;
	case 0xcd:
		return IB;
	case 0xce:
	case 0xd4:
	case 0xd5:
	case 0xd6:
		return BAD;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		return M;
	case 0xd7:
		return 0;
	}
	if (op >= 0xd8 && op <= 0xdf)
		return M;
	if (op >= 0xe0 && op <= 0xe7)
		return IB;
	switch (op) {
	case 0xe8:
	case 0xe9:
		return IZ;
	case 0xea:
		return BAD;
	case 0xeb:
		return IB;
	case 0xf0:
	case 0xf2:
	case 0xf3:
		return PFX;
	case 0xf6:
	case 0xf7:
		return SPECIAL; /* imm depends on modrm.reg */
	case 0xfe:
	case 0xff:
		return M;
	}
	return 0; /* ec-ef, f1, f4, f5, f8-fd */
}

static unsigned char two_byte(unsigned op)
{
	if (op <= 0x03 || op == 0x0d)
		return M;
	if (op <= 0x0f)
		return (op == 0x04 || op == 0x0a || op == 0x0c || op == 0x0f) ? BAD : 0;
	if (op <= 0x2f)
		return (op >= 0x24 && op <= 0x27) ? BAD : M;
	if (op <= 0x37)
		return 0;
	if (op == 0x38)
		return SPECIAL;
	if (op == 0x3a)
		return SPECIAL;
	if (op <= 0x3f)
		return BAD;
	if (op >= 0x70 && op <= 0x73)
		return M | IB;
	if (op == 0x77)
		return 0;
	if (op <= 0x7f)
		return M;
	if (op <= 0x8f)
		return IZ; /* jcc rel32 */
	if (op <= 0x9f)
		return M;
	switch (op) {
	case 0xa0:
	case 0xa1:
	case 0xa2:
	case 0xa8:
	case 0xa9:
	case 0xaa:
		return 0;
	case 0xa4:
	case 0xac:
	case 0xba:
	case 0xc2:
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return M | IB;
	}
	if (op >= 0xc8 && op <= 0xcf)
		return 0;
	return M;
}

/* Length of the ModRM/SIB/displacement bytes. Returns 0 if truncated. */
static unsigned modrm_len(const uint8_t *p, size_t avail, int addr32, int *rip_rel, int64_t *disp)
{
	unsigned mod, rm, len = 1;
	(void)addr32;
	if (avail < 1)
		return 0;
	mod = p[0] >> 6;
	rm = p[0] & 7;
	*rip_rel = 0;
	*disp = 0;
	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (avail < 2)
			return 0;
		len++;
		if (mod == 0 && (p[1] & 7) == 5) {
			if (avail < len + 4)
				return 0;
			*disp = (int32_t)((uint32_t)p[len] | (uint32_t)p[len + 1] << 8 | (uint32_t)p[len + 2] << 16 |
					  (uint32_t)p[len + 3] << 24);
			return len + 4;
		}
	}
	if (mod == 0 && rm == 5) {
		if (avail < len + 4)
			return 0;
		*rip_rel = 1;
		*disp = (int32_t)((uint32_t)p[len] | (uint32_t)p[len + 1] << 8 | (uint32_t)p[len + 2] << 16 |
				  (uint32_t)p[len + 3] << 24);
		return len + 4;
	}
	if (mod == 1) {
		if (avail < len + 1)
			return 0;
		*disp = (int8_t)p[len];
		return len + 1;
	}
	if (mod == 2) {
		if (avail < len + 4)
			return 0;
		*disp = (int32_t)((uint32_t)p[len] | (uint32_t)p[len + 1] << 8 | (uint32_t)p[len + 2] << 16 |
				  (uint32_t)p[len + 3] << 24);
		return len + 4;
	}
	return len;
}

static int64_t read_imm(const uint8_t *p, unsigned size)
{
	switch (size) {
	case 1:
		return (int8_t)p[0];
	case 2:
		return (int16_t)((uint16_t)p[0] | (uint16_t)p[1] << 8);
	case 4:
		return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	case 8: {
		uint64_t v = 0;
		for (int i = 7; i >= 0; i--)
			v = v << 8 | p[i];
		return (int64_t)v;
	}
	}
	return 0;
}

/* The legacy prefixes from p[*i]: *i at the first byte that is not one; 0 when none is left. */
static int skip_prefixes(const uint8_t *p, size_t avail, unsigned *i, int *opsize16, int *addr32)
{
	for (; *i < avail; (*i)++) {
		uint8_t op = p[*i];
		if (op == 0x66)
			*opsize16 = 1;
		else if (op == 0x67)
			*addr32 = 1;
		else if (!(op == 0xf0 || op == 0xf2 || op == 0xf3 || op == 0x2e || op == 0x36 || op == 0x3e ||
			   op == 0x26 || op == 0x64 || op == 0x65))
			return 1;
	}
	return 0;
}

/* The base register of a memory operand (ModRM mod != 3, SIB when rm is 4), X86_REG_NONE when it
 * has none (SIB base 5 with mod 0: disp32 only). */
static int mem_base(const uint8_t *modrm, int rex, int rip_rel)
{
	unsigned rm = modrm[0] & 7, mod = modrm[0] >> 6;
	if (rip_rel)
		return X86_REG_RIP;
	if (rm == 4) {
		unsigned b = modrm[1] & 7;
		return (mod == 0 && b == 5) ? X86_REG_NONE : (int)(b | ((rex & 1) ? 8u : 0u));
	}
	return (int)(rm | ((rex & 1) ? 8u : 0u));
}

unsigned x86_decode(const uint8_t *p, size_t avail, uint64_t addr, struct x86_insn *out)
{
	unsigned i = 0, op, flags, imm = 0, mlen = 0;
	int opsize16 = 0, addr32 = 0, rex = 0, rip_rel = 0;
	int64_t disp = 0;
	const uint8_t *modrm = NULL;
	int twobyte = 0;

	memset(out, 0, sizeof(*out));
	if (avail > 15)
		avail = 15;
	/* legacy prefixes, then an optional REX */
	if (!skip_prefixes(p, avail, &i, &opsize16, &addr32))
		return 0;
	op = p[i];
	if (op >= 0x40 && op <= 0x4f) {
		rex = op;
		i++;
		if (i >= avail)
			return 0;
		op = p[i];
	}
	i++;

	if (op == 0x0f) {
		if (i >= avail)
			return 0;
		op = p[i++];
		twobyte = 1;
		flags = two_byte(op);
		if (flags & SPECIAL) { /* 0f 38 xx modrm / 0f 3a xx modrm ib */
			int is3a = op == 0x3a;
			if (i >= avail)
				return 0;
			i++;
			flags = M | (is3a ? IB : 0);
		}
	} else if (op == 0xc4 || op == 0xc5) { /* VEX */
		unsigned map = 1;
		if (op == 0xc5) {
			if (i + 1 >= avail)
				return 0;
			i += 1;
		} else {
			if (i + 2 >= avail)
				return 0;
			map = p[i] & 0x1f;
			i += 2;
		}
		i++; /* opcode */
		flags = M | (map == 3 ? IB : 0);
	} else {
		flags = one_byte(op);
		if (flags & BAD)
			return 0;
		if (flags & PFX)
			return 0; /* a prefix after REX */
		if (flags & SPECIAL) {
			if (op >= 0xa0 && op <= 0xa3) {
				imm = addr32 ? 4 : 8;
				flags = 0;
			} else if (op >= 0xb8 && op <= 0xbf) {
				imm = (rex & 8) ? 8 : (opsize16 ? 2 : 4);
				flags = 0;
			} else if (op == 0xf6 || op == 0xf7) {
				if (i >= avail)
					return 0;
				flags = M;
				if (((p[i] >> 3) & 7) <= 1)
					flags |= (op == 0xf6) ? IB : IZ;
			}
		}
	}
	if (flags & BAD)
		return 0;
	if (flags & M) {
		modrm = p + i;
		mlen = modrm_len(p + i, avail - i, addr32, &rip_rel, &disp);
		if (!mlen)
			return 0;
		i += mlen;
	}
	if (flags & IB)
		imm += 1;
	if (flags & IW)
		imm += 2;
	if (flags & IZ)
		imm += opsize16 ? 2 : 4;
	if (i + imm > avail)
		return 0;

	out->len = i + imm;
	out->disp = disp;
	out->rip_relative = rip_rel;
	out->base_reg = X86_REG_NONE;
	out->reg = X86_REG_NONE;
	if (rip_rel)
		out->disp_off = (unsigned)(modrm - p) + 1;
	if (modrm && (modrm[0] >> 6) != 3)
		out->base_reg = mem_base(modrm, rex, rip_rel);
	if (rip_rel)
		out->mem_addr = addr + out->len + (uint64_t)disp;

	if (!twobyte) {
		if (op == 0xe8 || op == 0xe9) {
			out->kind = op == 0xe8 ? X86_CALL_REL : X86_JMP_REL;
			out->target = addr + out->len + (uint64_t)read_imm(p + i, opsize16 ? 2 : 4);
		} else if (op == 0xeb) {
			out->kind = X86_JMP_REL;
			out->target = addr + out->len + (uint64_t)read_imm(p + i, 1);
		} else if (op >= 0x70 && op <= 0x7f) {
			out->kind = X86_JCC_REL;
			out->target = addr + out->len + (uint64_t)read_imm(p + i, 1);
		} else if (op == 0xc3 || op == 0xc2) {
			out->kind = X86_RET;
		} else if (op == 0xff && modrm && ((modrm[0] >> 3) & 7) == 4 && rip_rel) {
			out->kind = X86_JMP_IND_RIP;
		} else if (op == 0xff && modrm && ((modrm[0] >> 3) & 7) == 2 && rip_rel) {
			out->kind = X86_CALL_IND_RIP;
		} else if ((op == 0xc7 || op == 0xc6) && modrm && (modrm[0] >> 6) != 3 && ((modrm[0] >> 3) & 7) == 0) {
			out->kind = X86_STORE_IMM;
			out->width = op == 0xc6 ? 1 : ((rex & 8) ? 8 : (opsize16 ? 2 : 4));
			out->imm = read_imm(p + i, op == 0xc6 ? 1 : (opsize16 ? 2 : 4));
		} else if (op == 0x8d && modrm && (modrm[0] >> 6) != 3) {
			out->kind = X86_LEA;
			out->reg = ((modrm[0] >> 3) & 7) | ((rex & 4) ? 8 : 0);
		} else if (op >= 0xb8 && op <= 0xbf) {
			out->kind = X86_MOV_IMM;
			out->reg = (int)((op - 0xb8) | ((rex & 1) ? 8u : 0u));
			out->imm = read_imm(p + i, imm);
			if (imm == 4)
				out->imm = (int64_t)(uint32_t)out->imm; /* mov r32, imm32 zero-extends */
		} else if ((op == 0x89 || op == 0x88) && modrm && (modrm[0] >> 6) != 3) {
			out->kind = X86_STORE_REG;
			out->width = op == 0x88 ? 1 : ((rex & 8) ? 8 : (opsize16 ? 2 : 4));
			out->src_reg = ((modrm[0] >> 3) & 7) | ((rex & 4) ? 8 : 0);
		}
	} else if (op >= 0x80 && op <= 0x8f) {
		out->kind = X86_JCC_REL;
		out->target = addr + out->len + (uint64_t)read_imm(p + i, opsize16 ? 2 : 4);
	}
	return out->len;
}

int x86_store_ending_at(const uint8_t *buf, size_t n, uint64_t ip, struct x86_insn *out)
{
	int found = 0;
	struct x86_insn insn;

	/* Try every start from the longest possible instruction to the shortest; an immediate
	 * store wins over a register store (its last bytes are the value either way). */
	for (size_t back = n < 15 ? n : 15; back >= 2; back--) {
		const uint8_t *p = buf + n - back;
		if (x86_decode(p, back, ip - back, &insn) != back)
			continue;
		if (insn.kind == X86_STORE_IMM) {
			*out = insn;
			return 1;
		}
		if (insn.kind == X86_STORE_REG && !found) {
			*out = insn;
			found = 2;
		}
	}
	return found;
}

/* ---- code emission for the inline probes --------------------------------------------------- */

static size_t put(uint8_t *out, size_t o, const void *b, size_t n)
{
	memcpy(out + o, b, n);
	return o + n;
}

/* rdi = the GIL reference (rdi was saved by the caller). */
static size_t emit_ref(uint8_t *out, const struct x86_ref *ref)
{
	size_t o = 0;
	int32_t d32;
	switch (ref ? ref->kind : X86_REF_NONE) {
	case X86_REF_BASE:
		/* lea disp32(%base),%rdi */
		out[o++] = (uint8_t)(0x48 | (ref->base >= 8 ? 1 : 0));
		out[o++] = 0x8d;
		out[o++] = (uint8_t)(0x80 | (7 << 3) | (ref->base & 7));
		if ((ref->base & 7) == 4)
			out[o++] = 0x24; /* SIB: base rsp/r12, no index */
		d32 = (int32_t)ref->disp;
		memcpy(out + o, &d32, 4);
		o += 4;
		break;
	case X86_REF_ABS:
		out[o++] = 0x48; /* movabs $abs,%rdi */
		out[o++] = 0xbf;
		memcpy(out + o, &ref->abs, 8);
		o += 8;
		break;
	case X86_REF_CHAIN:
		/* mov c0(%rdi),%rdi; test %rdi,%rdi; je .z; mov c1(%rdi),%rdi; test; je .z;
		 * lea add(%rdi),%rdi; .z: (a NULL link leaves 0: "unknown GIL") */
		out[o++] = 0x48;
		out[o++] = 0x8b;
		out[o++] = 0xbf;
		memcpy(out + o, &ref->c0, 4);
		o += 4;
		out[o++] = 0x48;
		out[o++] = 0x85;
		out[o++] = 0xff; /* test %rdi,%rdi */
		out[o++] = 0x74;
		out[o++] = 7 + 3 + 2 + 7; /* je .z */
		out[o++] = 0x48;
		out[o++] = 0x8b;
		out[o++] = 0xbf;
		memcpy(out + o, &ref->c1, 4);
		o += 4;
		out[o++] = 0x48;
		out[o++] = 0x85;
		out[o++] = 0xff;
		out[o++] = 0x74;
		out[o++] = 7;
		out[o++] = 0x48;
		out[o++] = 0x8d;
		out[o++] = 0xbf; /* lea add(%rdi),%rdi */
		memcpy(out + o, &ref->add, 4);
		o += 4;
		break;
	default:
		out[o++] = 0x31; /* xor %edi,%edi */
		out[o++] = 0xff;
	}
	return o;
}

/* Saves the flags (into the stack, with rax already saved): seto %al; lahf; push %rax. pushf is
 * microcoded and popf slow (about 6 ns the pair here against under 1 ns). */
static size_t emit_flags_save(uint8_t *out, int pushf)
{
	static const uint8_t lahf[] = { 0x0f, 0x90, 0xc0, 0x9f, 0x50 }; /* seto %al; lahf; push %rax */
	if (pushf) {
		out[0] = 0x9c;
		return 1;
	}
	memcpy(out, lahf, sizeof(lahf));
	return sizeof(lahf);
}

/* pop %rax; add $0x7f,%al (sets OF when al = 1); sahf (the other five) - or popf. */
static size_t emit_flags_restore(uint8_t *out, int pushf)
{
	static const uint8_t sahf[] = { 0x58, 0x04, 0x7f, 0x9e };
	if (pushf) {
		out[0] = 0x9d;
		return 1;
	}
	memcpy(out, sahf, sizeof(sahf));
	return sizeof(sahf);
}

/* rsi = this CPU's ring: eax = the CPU (rdpid, rdtscp's TSC_AUX, or 0), masked to the rings,
 * times the stride, plus the base. Uses rax, rcx, rdx, rsi. */
static size_t emit_pick_ring(uint8_t *out, const struct x86_ring_geom *g)
{
	static const uint8_t rdpid[] = { 0xf3, 0x0f, 0xc7, 0xf8 };        /* rdpid %rax */
	static const uint8_t rdtscp[] = { 0x0f, 0x01, 0xf9, 0x89, 0xc8 }; /* rdtscp; mov %ecx,%eax */
	static const uint8_t none[] = { 0x31, 0xc0 };                     /* xor %eax,%eax */
	static const uint8_t imul[] = { 0x48, 0x69, 0xf0 };               /* imul $stride,%rax,%rsi */
	static const uint8_t add[] = { 0x48, 0x01, 0xce };                /* add %rcx,%rsi */
	uint32_t mask = g->nrings - 1, stride = (uint32_t)X86_RING_STRIDE(g->nslots);
	size_t o = 0;

	if (g->cpu == X86_CPU_RDPID)
		o = put(out, o, rdpid, sizeof(rdpid));
	else if (g->cpu == X86_CPU_RDTSCP)
		o = put(out, o, rdtscp, sizeof(rdtscp));
	else
		o = put(out, o, none, sizeof(none));
	out[o++] = 0x25; /* and $mask,%eax */
	o = put(out, o, &mask, 4);
	o = put(out, o, imul, sizeof(imul));
	o = put(out, o, &stride, 4);
	out[o++] = 0x48; /* movabs $base,%rcx */
	out[o++] = 0xb9;
	o = put(out, o, &g->base, 8);
	return put(out, o, add, sizeof(add));
}

size_t x86_emit_record(uint8_t *out, const struct x86_ring_geom *g, uint32_t tid_off, uint32_t code,
		       const struct x86_ref *ref, int ordered)
{
	static const uint8_t save[] = { 0x48, 0x8d, 0x64, 0x24, 0x80,                  /* lea -0x80(%rsp),%rsp */
					0x50, 0x51, 0x52, 0x56, 0x57 };                /* push rax rcx rdx rsi rdi */
	static const uint8_t head[] = { 0x48, 0x8b, 0x06 };                            /* mov (%rsi),%rax */
	static const uint8_t check[] = { 0x48, 0x8b, 0x8e, X86_RING_TAIL_OFF, 0, 0, 0, /* retry: mov tail(%rsi),%rcx */
					 0x48, 0x89, 0xc2,                             /* mov %rax,%rdx */
					 0x48, 0x29, 0xca,                             /* sub %rcx,%rdx */
					 0x48, 0x81, 0xfa };                           /* cmp $nslots,%rdx */
	static const uint8_t reserve[] = { 0x48, 0x8d, 0x50, 0x01,                     /* lea 1(%rax),%rdx */
					   0xf0, 0x48, 0x0f, 0xb1, 0x16 };             /* lock cmpxchg %rdx,(%rsi) */
	static const uint8_t slot[] = { 0x48, 0x89, 0xc1,                              /* mov %rax,%rcx */
					0x25 };                                        /* and $mask,%eax */
	static const uint8_t slot2[] = { 0x48, 0xc1, 0xe0, 0x05,                       /* shl $5,%rax */
					 0x48, 0x8d, 0xb4, 0x06, X86_RING_RHDR & 0xff, X86_RING_RHDR >> 8,
					 0,    0,                     /* lea RHDR(%rsi,%rax),%rsi */
					 0x48, 0x8b, 0x16,            /* mov (%rsi),%rdx: a read first */
					 0x0f, 0x31,                  /* rdtsc */
					 0x48, 0xc1, 0xe2, 0x20,      /* shl $32,%rdx */
					 0x48, 0x09, 0xd0,            /* or %rdx,%rax */
					 0x48, 0x89, 0x46, 0x08,      /* mov %rax,8(%rsi) */
					 0x64, 0x8b, 0x04, 0x25 };    /* mov %fs:tid_off,%eax */
	static const uint8_t fill[] = { 0x89, 0x46, 0x10,             /* mov %eax,16(%rsi) */
					0xc7, 0x46, 0x14 };           /* movl $code,20(%rsi) */
	static const uint8_t commit[] = { 0x48, 0x89, 0x7e, 0x18,     /* mov %rdi,24(%rsi) */
					  0x48, 0x8d, 0x49, 0x01,     /* lea 1(%rcx),%rcx */
					  0x48, 0x89, 0x0e };         /* mov %rcx,(%rsi) */
	static const uint8_t post[] = { 0x5f, 0x5e, 0x5a, 0x59, 0x58, /* pop rdi rsi rdx rcx rax */
					0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00 }; /* lea 0x80(%rsp),%rsp */
	static const uint8_t lost[] = { 0xf0, 0x48, 0xff, 0x46, X86_RING_LOST_OFF };      /* lock incq lost(%rsi) */
	uint32_t n32 = (uint32_t)g->nslots, mask = (uint32_t)(g->nslots - 1);
	size_t o = 0, retry_at, jae_at, done_at, full_at;
	int32_t rel;

	if (ordered) { /* lfence: the rdtsc below cannot run before what came before has */
		out[o++] = 0x0f;
		out[o++] = 0xae;
		out[o++] = 0xe8;
	}
	o = put(out, o, save, sizeof(save));
	o += emit_flags_save(out + o, g->pushf);
	o += emit_ref(out + o, ref);
	o += emit_pick_ring(out + o, g);
	o = put(out, o, head, sizeof(head));
	retry_at = o;
	o = put(out, o, check, sizeof(check));
	o = put(out, o, &n32, 4);
	jae_at = o;
	o += 6; /* jge .full (0f 8d rel32), filled below: signed, a head read before the tail just read
		 * can be behind it (the cmpxchg then fails and reads the head again) */
	o = put(out, o, reserve, sizeof(reserve));
	out[o] = 0x75; /* jne retry: another writer took the slot (rax holds the new head) */
	out[o + 1] = (uint8_t)(int8_t)((int64_t)retry_at - (int64_t)(o + 2));
	o += 2;
	o = put(out, o, slot, sizeof(slot));
	o = put(out, o, &mask, 4);
	o = put(out, o, slot2, sizeof(slot2));
	o = put(out, o, &tid_off, 4);
	o = put(out, o, fill, sizeof(fill));
	o = put(out, o, &code, 4);
	o = put(out, o, commit, sizeof(commit));
	done_at = o;
	o += emit_flags_restore(out + o, g->pushf);
	o = put(out, o, post, sizeof(post));
	out[o] = 0xeb; /* jump over the full-ring path */
	out[o + 1] = (uint8_t)(sizeof(lost) + 2);
	o += 2;
	full_at = o;
	o = put(out, o, lost, sizeof(lost));
	out[o] = 0xeb; /* jmp done */
	out[o + 1] = (uint8_t)(int8_t)((int64_t)done_at - (int64_t)(o + 2));
	o += 2;
	out[jae_at] = 0x0f;
	out[jae_at + 1] = 0x8d;
	rel = (int32_t)((int64_t)full_at - (int64_t)(jae_at + 6));
	memcpy(out + jae_at + 2, &rel, 4);
	return o;
}

struct x86_ring_geom x86_ring_geom_for(unsigned ncpus, uint64_t total_slots)
{
	struct x86_ring_geom g = { .nrings = 1, .nslots = 1 };
	unsigned a, b, c, d;

	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 22)))
		g.cpu = X86_CPU_RDPID;
	else if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (d & (1u << 27)))
		g.cpu = X86_CPU_RDTSCP;
	g.pushf = !(__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & 1u)); /* LAHF/SAHF in 64-bit mode */
	while (g.cpu != X86_CPU_NONE && g.nrings < ncpus && g.nrings < X86_RING_MAX)
		g.nrings <<= 1;
	while (g.nslots < total_slots / g.nrings && g.nslots < X86_RING_MAX_SLOTS)
		g.nslots <<= 1;
	if (g.nslots < 1024)
		g.nslots = 1024;
	return g;
}

size_t x86_ring_size(const struct x86_ring_geom *g) { return (size_t)g->nrings * (size_t)X86_RING_STRIDE(g->nslots); }

size_t x86_emit_jmp(uint8_t *out, uint64_t from, uint64_t to)
{
	int64_t d = (int64_t)(to - (from + 5));
	int32_t rel;
	if (d > INT32_MAX || d < INT32_MIN)
		return 0;
	rel = (int32_t)d;
	out[0] = 0xe9;
	memcpy(out + 1, &rel, 4);
	return 5;
}

size_t x86_relocate(const uint8_t *in, size_t len, uint64_t from, uint64_t to, uint8_t *out)
{
	size_t off = 0;
	while (off < len) {
		struct x86_insn insn;
		unsigned l = x86_decode(in + off, len - off, from + off, &insn);
		if (!l || (insn.kind != X86_OTHER && insn.kind != X86_STORE_IMM && insn.kind != X86_STORE_REG))
			return 0;
		memcpy(out + off, in + off, l);
		if (insn.rip_relative) {
			int64_t nd = (int64_t)(insn.mem_addr - (to + off + l));
			int32_t d32;
			if (nd > INT32_MAX || nd < INT32_MIN)
				return 0;
			d32 = (int32_t)nd;
			memcpy(out + off + insn.disp_off, &d32, 4);
		}
		off += l;
	}
	return len;
}

uint64_t x86_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
