/* dropreq.c - the drop request's set and reset instructions (see dropreq.h). */
#include "cpython/dropreq.h"
#include "base/util.h"
#include "probe/x86.h"

#include <stdlib.h>
#include <string.h>

enum rmw_op {
	RMW_NONE = 0,
	RMW_OR,
	RMW_AND
};

/* A locked `or`/`and` of an immediate into memory (f0 [REX] 80/81/83 /1 or /4): the operation
 * and its immediate, sign-extended. */
static enum rmw_op locked_rmw(const uint8_t *p, unsigned len, int64_t *imm)
{
	unsigned i = 1, reg;
	uint8_t op;
	if (len < 4 || p[0] != 0xf0)
		return RMW_NONE;
	if (p[i] >= 0x40 && p[i] <= 0x4f)
		i++;
	op = p[i];
	if (i + 2 >= len || (op != 0x80 && op != 0x81 && op != 0x83))
		return RMW_NONE;
	reg = (p[i + 1] >> 3) & 7;
	if (op == 0x81) {
		int32_t v;
		memcpy(&v, p + len - 4, 4);
		*imm = v;
	} else {
		*imm = (int8_t)p[len - 1];
	}
	return reg == 1 ? RMW_OR : reg == 4 ? RMW_AND : RMW_NONE;
}

/* Does in (bytes p) set (1) or reset (0) the request, or neither (-1)? */
static int request_value(const struct gs_pylayout *l, const struct x86_insn *in, const uint8_t *p)
{
	int64_t imm = 0;
	if (in->rip_relative || in->base_reg < 0 || in->base_reg >= 16 || in->base_reg == 4 ||
	    (uint64_t)in->disp != l->dropreq_disp)
		return -1;
	if (!l->dropreq_bit) {
		if (in->kind == X86_STORE_IMM && in->width == 4 && (in->imm == 0 || in->imm == 1))
			return (int)in->imm;
		return -1;
	}
	switch (locked_rmw(p, in->len, &imm)) {
	case RMW_OR:
		return imm == (int64_t)l->dropreq_bit ? 1 : -1;
	case RMW_AND:
		return imm == ~(int64_t)l->dropreq_bit ? 0 : -1;
	default:
		return -1;
	}
}

static void add(const struct gs_elf *elf, struct gs_dropreq *out, uint64_t at, const uint8_t *p, unsigned len,
		int value, int honour)
{
	struct gs_dropreq_site *s;
	for (int i = 0; i < out->nsites; i++)
		if (out->sites[i].insn == at)
			return;
	if (out->nsites >= GS_MAX_DROPREQ_SITES || len > sizeof(s->bytes))
		return;
	s = &out->sites[out->nsites];
	memset(s, 0, sizeof(*s));
	if (gs_elf_vaddr_to_offset(elf, at + len, &s->offset) < 0)
		return;
	s->insn = at;
	s->len = len;
	memcpy(s->bytes, p, len);
	s->after = at + len;
	s->value = value;
	s->honour = honour;
	out->nsites++;
	if (value)
		out->nset++;
	else
		out->nreset++;
}

/* Linear decode of the function at start; sets only where sets are allowed (take_gil). depth > 0:
 * small direct callees too (LTO builds move RESET_GIL_DROP_REQUEST out of drop_gil: Debian's 3.11). */
static void scan(const struct gs_elf *elf, const struct gs_pylayout *l, uint64_t start, int sets, int honour, int depth,
		 uint64_t max, struct gs_dropreq *out)
{
	uint64_t fs, fe, off = 0;
	uint8_t *buf;
	size_t n;
	if (!start || gs_elf_function_bounds(elf, start, &fs, &fe) < 0 || fs != start || fe <= fs || fe - fs > max)
		return;
	n = (size_t)(fe - fs);
	buf = gs_malloc(n);
	if (gs_elf_read(elf, fs, buf, n) == 0) {
		while (off < n) {
			struct x86_insn in;
			unsigned len = x86_decode(buf + off, n - off, fs + off, &in);
			int v;
			if (!len)
				break; /* stop rather than guess */
			v = request_value(l, &in, buf + off);
			if (v == 0 || (v == 1 && sets))
				add(elf, out, fs + off, buf + off, len, v, v == 0 && honour);
			if (depth > 0 && in.kind == X86_CALL_REL && in.target != fs)
				scan(elf, l, in.target, 0, honour, depth - 1, 512, out);
			off += len;
		}
	}
	free(buf);
}

int gs_dropreq_find(const struct gs_elf *elf, const struct gs_pylayout *l, uint64_t take_gil, uint64_t drop_gil,
		    struct gs_dropreq *out)
{
	memset(out, 0, sizeof(*out));
	if (!l->dropreq_disp)
		return 0;
	scan(elf, l, take_gil, 1, 0, 0, 1u << 16, out);
	if (out->nset)
		scan(elf, l, drop_gil, 0, 1, 1, 1u << 16, out);
	else
		memset(out, 0, sizeof(*out));
	return out->nset;
}
