/* dropreq.h - where CPython asks the GIL's holder to drop it (a switch request), and where the
 * request is reset, found in the interpreter's machine code (stripped builds too).
 *
 * A thread whose timed wait in take_gil expired asks the holder to let go; the holder sees the
 * request in its evaluation loop, drops the GIL (a forced drop) and, in drop_gil, resets the
 * request and waits on switch_cond until another thread took the GIL. Where the request lives,
 * per version (read from each interpreter's machine code, cross-checked with its DWARF):
 *   3.9-3.12  interp->ceval.gil_drop_request, an int (interp + 0x4c / 0x48 / 0x68 / 0x174):
 *             set by `movl $1, OFF(%reg)` in take_gil (SET_GIL_DROP_REQUEST), reset by
 *             `movl $0, OFF(%reg)` in drop_gil before waiting on switch_cond, and in take_gil
 *             (after the switch; and by a waiter that must exit).
 *   3.13+     bit 0 (_PY_GIL_DROP_REQUEST_BIT) of the holder's tstate->eval_breaker (+0x18): set
 *             by `lock or $1, 0x18(%reg)` in take_gil (_Py_set_eval_breaker_bit(holder_tstate)),
 *             cleared by `lock and $~1, 0x18(%reg)` in drop_gil before waiting on switch_cond, and
 *             in take_gil (the new holder clears its own bit; a waiter that must exit).
 * The offsets are the layout's (pylayout.h: dropreq_disp, dropreq_bit); an instruction counts only
 * when its memory operand is base register + that offset (no stack, no RIP-relative) and, for a
 * set, it is in take_gil. Pure given the ELF file: no process is touched.
 */
#ifndef GS_DROPREQ_H
#define GS_DROPREQ_H

#include <stdint.h>

#include "cpython/elfsym.h"
#include "cpython/pylayout.h"

#define GS_MAX_DROPREQ_SITES 8

/* One instruction that sets (value 1) or resets (value 0) the drop request. */
struct gs_dropreq_site {
	uint64_t insn; /* the instruction's address (inline probes move it into a trampoline) */
	unsigned len;
	uint8_t bytes[15];
	uint64_t after;  /* the next instruction's address (where a uprobe sees it done) */
	uint64_t offset; /* its file offset */
	int value;
	int honour; /* a reset in drop_gil, followed by the wait on switch_cond */
};

struct gs_dropreq {
	struct gs_dropreq_site sites[GS_MAX_DROPREQ_SITES];
	int nsites, nset, nreset;
};

/* Finds the sites in take_gil [take_gil, its end) and in the out-of-line drop_gil (0: unknown).
 * Returns the number of set sites found (0: none, the request cannot be seen this way). */
int gs_dropreq_find(const struct gs_elf *elf, const struct gs_pylayout *l, uint64_t take_gil, uint64_t drop_gil,
		    struct gs_dropreq *out);

#endif
