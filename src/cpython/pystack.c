/* pystack.c - the remote Python stack walker (see pystack.h). */
#define _GNU_SOURCE
#include "cpython/pystack.h"
#include "cpython/elfsym.h"
#include "probe/x86_glibc.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct code_entry {
	uint64_t addr;
	uint64_t qualname_ptr; /* to notice the address reused by another code object */
	uint32_t gen;
	char *qualname, *filename;
	int firstlineno;
	uint8_t *linetable;
	size_t linetable_len;
	uint64_t adaptive;   /* address of the first code unit */
	uint64_t checked;    /* the walk (gs_pystacks.sample) that last found it still the same object */
	int32_t lines_at[4]; /* the last few instruction offsets decoded, and their lines */
	int32_t lines[4];
	unsigned lines_next;
};

/* A copy of a few pages of the target, made by one read during a walk: the frames of 3.11+ lie
 * next to each other in their thread's data stack (the caller's below the callee's), so one
 * read brings a whole chain, where a read per frame costs a system call each. */
#define WIN_PAGE 4096ull
#define WIN_BACK 1 /* pages copied below the one a missed frame starts in */
#define WIN_MAX ((WIN_BACK + 2) * WIN_PAGE)
#define NWIN 4
#define WALK_MAX_BAD 8 /* frames of one walk that are not code: more, and the chain is not a thread's */
struct window {
	uint64_t lo;
	size_t len; /* 0: empty */
	uint8_t buf[WIN_MAX];
};

/* What a thread state gave at the last sample, to guess this one's reads (gs_pystacks_set_vreader):
 * direct-mapped by the thread state's address, the address kept as the tag. */
#define SPEC_N 64
#define SPEC_CODES 32
struct spec {
	uint64_t ts;     /* 0: empty */
	uint64_t cframe; /* 3.11: its cframe pointer then */
	uint64_t pt;     /* 3.9, 3.10: its pthread_t (the thread id is read through it) */
	uint64_t win_lo; /* the pages its innermost frame was read from (len 0: none) */
	size_t win_len;
	uint64_t codes[SPEC_CODES]; /* the code objects its walk checked (check_deferred) */
	int ncodes;
};

struct gs_pystacks {
	struct gs_pystack_layout l;    /* the version's row of the layout table (pylayout.h) */
	uint32_t tstate_native_tid;    /* 3.11+: PyThreadState.native_thread_id */
	uint32_t tstate_thread_id;     /* 3.9, 3.10: PyThreadState.thread_id, a pthread_t */
	size_t ts_len, fr_len, co_len; /* bytes to read of each object: no more than its fields need */
	uint64_t interp_main, code_type;
	struct code_entry *codes; /* open addressing by address */
	size_t cap;
	uint64_t walks, errors;
	uint64_t sample;             /* gs_pystacks_sample calls so far: the windows and checks of one */
	struct window win[NWIN];     /* emptied at each sample */
	unsigned win_next;           /* the next window replaced (round robin) */
	uint64_t reads, window_hits; /* frame reads asked for, and those served from a window */
	gs_mem_words_reader words;   /* optional: code objects checked by one read per thread */
	gs_mem_vreader vread;        /* optional: a thread's reads of a sample in one (struct spec) */
	struct spec spec[SPEC_N];
	uint64_t interp; /* the main interpreter's address at the last sample (0: none) */
};

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* Reads stop at the last field needed: an object at the end of a mapping must not fail. */
static void read_lengths(struct gs_pystacks *ps)
{
	const struct gs_pystack_layout *l = &ps->l;
	uint32_t tid = l->legacy ? ps->tstate_thread_id : ps->tstate_native_tid; /* the one read */
	ps->ts_len = max3(l->tstate_next, tid, l->tstate_frame) + 8;
	ps->fr_len = max3(max3(l->frame_previous, l->frame_code, l->frame_instr), l->frame_owner, 0) + 8;
	ps->co_len = max3(max3(l->code_qualname, l->code_filename, l->code_linetable), l->code_firstlineno, 8) + 8;
}

/* A walker with the layout l (which must have its stack offsets). */
static struct gs_pystacks *walker_new(const struct gs_pylayout *l, uint64_t interp_main, uint64_t code_type)
{
	struct gs_pystacks *ps = gs_calloc(1, sizeof(*ps));
	ps->l = l->stack;
	ps->tstate_native_tid = l->tstate_native_tid;
	ps->tstate_thread_id = l->tstate_thread_id;
	read_lengths(ps);
	ps->interp_main = interp_main;
	ps->code_type = code_type;
	ps->cap = 4096;
	ps->codes = gs_calloc(ps->cap, sizeof(*ps->codes));
	return ps;
}

struct gs_pystacks *gs_pystacks_new(const struct gs_python *py, char *why, size_t whylen)
{
	const struct gs_pyimage *img = &py->img;
	struct gs_pystacks *ps = NULL;
	struct gs_elf *elf;
	uint64_t addr, size;

	if (img->major != 3 || img->minor < 9) {
		snprintf(why, whylen, "Python stacks need CPython 3.9 or later (this is %s)", img->version);
		return NULL;
	}
	if (img->minor < 11 && img->debug) {
		snprintf(why, whylen, "no stack layout for the debug build of CPython %s", img->version);
		return NULL;
	}
	if (gs_elf_open(img->file, &elf) < 0) {
		snprintf(why, whylen, "cannot read %s", img->path);
		return NULL;
	}
	if (gs_elf_dynsym(elf, "PyCode_Type", &addr, &size) < 0 && gs_elf_symbol(elf, "PyCode_Type", &addr, &size) < 0)
		snprintf(why, whylen, "%s does not export PyCode_Type", img->path);
	else if (!img->have_layout || !img->layout.have_stack)
		snprintf(why, whylen,
			 "no stack layout for CPython %s, or its _Py_DebugOffsets stack offsets look wrong",
			 img->version);
	else
		ps = walker_new(&img->layout, py->runtime + img->layout.interp_main, addr + py->bias);
	gs_elf_free(elf);
	return ps;
}

struct gs_pystacks *gs_pystacks_synthetic_do(unsigned minor, const uint8_t *debug_offsets, size_t len,
					     uint64_t interp_main, uint64_t code_type)
{
	const struct gs_pylayout *row = minor >= 13 ? gs_pylayout_find(3, minor, 0) : NULL;
	struct gs_pylayout l;
	if (!row)
		return NULL;
	l = *row;
	if (gs_pylayout_stack_from_debug_offsets(&l, debug_offsets, len, minor) < 0)
		return NULL;
	return walker_new(&l, interp_main, code_type);
}

struct gs_pystacks *gs_pystacks_synthetic(unsigned minor, uint64_t interp_main, uint64_t code_type)
{
	const struct gs_pylayout *row = minor >= 9 && minor <= 12 ? gs_pylayout_find(3, minor, 0) : NULL;
	return row ? walker_new(row, interp_main, code_type) : NULL;
}

void gs_pystacks_free(struct gs_pystacks *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->cap; i++) {
		free(ps->codes[i].qualname);
		free(ps->codes[i].filename);
		free(ps->codes[i].linetable);
	}
	free(ps->codes);
	free(ps);
}

void gs_pystacks_set_words_reader(struct gs_pystacks *ps, gs_mem_words_reader words) { ps->words = words; }

void gs_pystacks_set_vreader(struct gs_pystacks *ps, gs_mem_vreader vread) { ps->vread = vread; }

void gs_pystacks_read_stats(const struct gs_pystacks *ps, uint64_t *frame_reads, uint64_t *window_hits)
{
	*frame_reads = ps->reads;
	*window_hits = ps->window_hits;
}

const struct gs_pystack_layout *gs_pystacks_layout(const struct gs_pystacks *ps) { return &ps->l; }

void gs_pystacks_stats(const struct gs_pystacks *ps, uint64_t *walks, uint64_t *errors)
{
	*walks = ps->walks;
	*errors = ps->errors;
}

static int read_varint(const uint8_t *t, size_t len, size_t *i, unsigned *out)
{
	unsigned v = 0, shift = 0;
	for (;;) {
		uint8_t b;
		if (*i >= len || shift > 28)
			return -1;
		b = t[(*i)++];
		v |= (unsigned)(b & 63) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	*out = v;
	return 0;
}

static int read_svarint(const uint8_t *t, size_t len, size_t *i, int *out)
{
	unsigned u;
	if (read_varint(t, len, i, &u) < 0)
		return -1;
	*out = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
	return 0;
}

int gs_linetable_line(const uint8_t *t, size_t len, int firstlineno, int index)
{
	size_t i = 0;
	int64_t line = firstlineno; /* deltas from a hostile table must not overflow an int */
	int addr = 0;
	while (i < len) {
		uint8_t h = t[i++];
		int code, units, delta = 0, has_line = 1;
		unsigned skip;
		if (!(h & 0x80))
			return -1;
		code = (h >> 3) & 15;
		units = (h & 7) + 1;
		switch (code) {
		case 15:
			has_line = 0;
			break;
		case 14:
			if (read_svarint(t, len, &i, &delta) < 0 || read_varint(t, len, &i, &skip) < 0 ||
			    read_varint(t, len, &i, &skip) < 0 || read_varint(t, len, &i, &skip) < 0)
				return -1;
			break;
		case 13:
			if (read_svarint(t, len, &i, &delta) < 0)
				return -1;
			break;
		case 10:
		case 11:
		case 12:
			delta = code - 10;
			i += 2;
			break;
		default:
			i += 1;
		}
		line += delta;
		if (line < INT32_MIN || line > INT32_MAX)
			return -1; /* malformed */
		if (index >= addr && index < addr + units)
			return has_line ? (int)line : -1;
		if (addr > INT32_MAX - 8)
			return -1;
		addr += units;
	}
	return -1;
}

int gs_lnotab_line(const uint8_t *t, size_t len, int firstlineno, int offset)
{
	int line = firstlineno, addr = 0;
	if (offset < 0)
		return firstlineno;
	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > offset)
			break;
		line += (int8_t)t[i + 1];
	}
	return line;
}

int gs_linetable310_line(const uint8_t *t, size_t len, int firstlineno, int offset)
{
	int line = -1, computed = firstlineno, end = 0;
	if (offset < 0)
		return firstlineno;
	for (size_t i = 0; i + 1 < len && end <= offset; i += 2) {
		int ldelta = (int8_t)t[i + 1];
		end += t[i];
		if (ldelta == -128) {
			line = -1;
		} else {
			computed += ldelta;
			line = computed;
		}
	}
	return end > offset ? line : -1;
}

static char *read_str(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t obj)
{
	uint8_t hdr[128];
	uint64_t len;
	uint8_t state;
	char *s;
	if (!obj || ps->l.uni_ascii_size > sizeof(hdr) || read(ctx, obj, hdr, ps->l.uni_ascii_size) < 0)
		return NULL;
	memcpy(&len, hdr + ps->l.uni_length, 8);
	state = hdr[ps->l.uni_state];
	if (len > 1024 || !(state & 0x20) || !(state & 0x40)) /* compact ASCII only */
		return gs_strdup("<non-ascii>");
	s = gs_malloc(len + 1);
	if (read(ctx, obj + ps->l.uni_ascii_size, s, len) < 0) {
		free(s);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* The entry of the code object at code, read when it is not cached or no longer the object cached
 * (NULL when it cannot be read: torn, or not a code object). With *defer set (a words reader is
 * there), a cached entry not yet checked in this sample is returned unchecked and *defer stays 1:
 * the caller checks it with the others of its walk (check_deferred); else *defer is cleared. */
static struct code_entry *code_lookup(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t code, int *defer)
{
	size_t h = (size_t)(code >> 4) * 2654435761u % ps->cap;
	struct code_entry *e;
	uint8_t co[512];
	uint64_t type, ltab, nm, fn;
	int32_t first;
	uint32_t gen = 0;
	int deferred = *defer;
	*defer = 0;
	for (size_t probe = 0; probe < 16; probe++) {
		e = &ps->codes[(h + probe) % ps->cap];
		if (e->addr == code) {
			/* code objects are freed and their memory reused: check it is still the same one,
			 * once per sample (the frames of one sample, of every thread, hold references) */
			uint64_t q;
			if (e->checked == ps->sample || deferred) {
				*defer = deferred && e->checked != ps->sample;
				e->checked = ps->sample; /* deferred: checked before this walk's thread is given */
				return e;
			}
			if (read(ctx, code + ps->l.code_qualname, &q, 8) == 0 && q == e->qualname_ptr) {
				e->checked = ps->sample;
				return e;
			}
			gen = e->gen + 1;
			break;
		}
		if (!e->addr)
			break;
	}
	if (e->addr && e->addr != code) /* the neighbourhood is full: replace */
		e = &ps->codes[h];
	if (ps->co_len > sizeof(co) || read(ctx, code, co, ps->co_len) < 0)
		return NULL;
	memcpy(&type, co + 8, 8);
	if (type != ps->code_type)
		return NULL;
	memcpy(&nm, co + ps->l.code_qualname, 8);
	memcpy(&fn, co + ps->l.code_filename, 8);
	memcpy(&ltab, co + ps->l.code_linetable, 8);
	memcpy(&first, co + ps->l.code_firstlineno, 4);
	free(e->qualname);
	free(e->filename);
	free(e->linetable);
	memset(e, 0, sizeof(*e));
	e->qualname = read_str(ps, read, ctx, nm);
	e->filename = read_str(ps, read, ctx, fn);
	if (!e->qualname || !e->filename) {
		free(e->qualname);
		free(e->filename);
		e->qualname = e->filename = NULL;
		return NULL;
	}
	e->firstlineno = first;
	e->qualname_ptr = nm;
	e->gen = gen;
	e->adaptive = code + ps->l.code_adaptive;
	if (ltab) {
		uint64_t n = 0;
		if (read(ctx, ltab + ps->l.bytes_size, &n, 8) == 0 && n <= 65536) {
			e->linetable = gs_malloc(n ? n : 1);
			if (read(ctx, ltab + ps->l.bytes_sval, e->linetable, n) == 0)
				e->linetable_len = n;
		}
	}
	e->addr = code;
	e->checked = ps->sample;
	for (size_t k = 0; k < GS_ARRAY_SIZE(e->lines_at); k++) {
		e->lines_at[k] = INT32_MIN; /* no offset decoded yet (a decoded INT32_MIN is the first line) */
		e->lines[k] = first;
	}
	return e;
}

int gs_pystacks_code(struct gs_pystacks *ps, uint64_t code, const char **qualname, const char **filename)
{
	size_t h = (size_t)(code >> 4) * 2654435761u % ps->cap;
	for (size_t probe = 0; probe < 16; probe++) {
		struct code_entry *e = &ps->codes[(h + probe) % ps->cap];
		if (e->addr == code) {
			*qualname = e->qualname;
			*filename = e->filename;
			return 0;
		}
	}
	return -ENOENT;
}

/* The line a frame of ce runs at instr (f_lasti before 3.11, the instruction pointer after),
 * decoded once per offset seen lately: a sampled thread is found at the same few places. */
static int frame_line(const struct gs_pystacks *ps, struct code_entry *ce, uint64_t instr)
{
	int at, line;
	if (!ce->linetable)
		return ce->firstlineno;
	if (ps->l.legacy) {
		at = (int32_t)(uint32_t)instr; /* f_lasti: an int */
	} else {
		uint64_t units = instr >= ce->adaptive ? (instr - ce->adaptive) / 2 : 0;
		at = units < (1u << 24) ? (int)units : 0; /* a code object is far smaller */
	}
	for (size_t k = 0; k < GS_ARRAY_SIZE(ce->lines_at); k++)
		if (ce->lines_at[k] == at)
			return ce->lines[k];
	if (ps->l.legacy == 9)
		line = gs_lnotab_line(ce->linetable, ce->linetable_len, ce->firstlineno, at);
	else if (ps->l.legacy)
		line = gs_linetable310_line(ce->linetable, ce->linetable_len, ce->firstlineno, at >= 0 ? at * 2 : -1);
	else
		line = gs_linetable_line(ce->linetable, ce->linetable_len, ce->firstlineno, at);
	if (line < 0)
		line = ce->firstlineno;
	ce->lines_at[ce->lines_next] = at;
	ce->lines[ce->lines_next] = line;
	ce->lines_next = (ce->lines_next + 1) % GS_ARRAY_SIZE(ce->lines_at);
	return line;
}

/* Reads len bytes of a frame at addr: from a window of this sample when one holds them, else
 * through a new window (the pages from WIN_BACK below addr's to the end of the frame's, or
 * addr's pages alone when those below cannot be read), else directly. */
static int frame_read(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t addr, uint8_t *dst, size_t len)
{
	struct window *w;
	uint64_t lo, hi;
	ps->reads++;
	for (size_t i = 0; i < NWIN; i++) {
		w = &ps->win[i];
		if (w->len && addr >= w->lo && addr - w->lo <= w->len && len <= w->len - (addr - w->lo)) {
			memcpy(dst, w->buf + (addr - w->lo), len);
			ps->window_hits++;
			return 0;
		}
	}
	w = &ps->win[ps->win_next++ % NWIN];
	w->len = 0;
	hi = (addr + len + WIN_PAGE - 1) & ~(WIN_PAGE - 1);
	lo = addr & ~(WIN_PAGE - 1);
	if (addr > UINT64_MAX - len - WIN_PAGE || hi - lo > WIN_MAX - WIN_BACK * WIN_PAGE)
		return read(ctx, addr, dst, len); /* at the end of the address space, or a frame over 2 pages */
	if (lo >= WIN_BACK * WIN_PAGE &&
	    read(ctx, lo - WIN_BACK * WIN_PAGE, w->buf, hi - lo + WIN_BACK * WIN_PAGE) == 0) {
		w->lo = lo - WIN_BACK * WIN_PAGE;
		w->len = hi - w->lo;
	} else if (read(ctx, lo, w->buf, hi - lo) == 0) {
		w->lo = lo;
		w->len = hi - lo;
	} else {
		return read(ctx, addr, dst, len);
	}
	memcpy(dst, w->buf + (addr - w->lo), len);
	return 0;
}

/* One thread's frames, innermost first, from its current frame: how many (the instruction
 * pointers beside them, for check_deferred). Code objects cached but not yet checked in this
 * sample are listed in pend (their frames' code addresses) when a words reader is there. */
struct walk {
	struct gs_pyframe *f;
	uint64_t instr[GS_PYSTACK_MAX_FRAMES];
	uint64_t pend[GS_PYSTACK_MAX_FRAMES];
	int n, npend;
	uint64_t guess[SPEC_CODES], guess_q[SPEC_CODES]; /* qualname pointers read with the thread state */
	int nguess;
};

static void walk_frames(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t frame, struct walk *w)
{
	struct gs_pyframe *frames = w->f;
	uint64_t bad = 0; /* the last address found not to be a code object */
	int n = 0, visited = 0, nbad = 0;
	/* a thread state's frame pointer may be stale (the thread is ending, or its memory was
	 * reused): garbage, possibly a frame its own caller. A few torn frames are skipped; a chain
	 * that yields more than WALK_MAX_BAD is given up */
	while (frame && n < GS_PYSTACK_MAX_FRAMES && visited++ < 4 * GS_PYSTACK_MAX_FRAMES && nbad <= WALK_MAX_BAD) {
		uint8_t fb[128];
		uint64_t code, instr, next;
		struct code_entry *ce;
		int defer = ps->words != NULL;
		if (ps->fr_len > sizeof(fb) || frame_read(ps, read, ctx, frame, fb, ps->fr_len) < 0) {
			ps->errors++;
			break;
		}
		memcpy(&code, fb + ps->l.frame_code, 8);
		memcpy(&instr, fb + ps->l.frame_instr, 8);
		code &= ps->l.code_mask;
		if (ps->l.owner_skip && fb[ps->l.frame_owner] >= ps->l.owner_skip) {
			/* the evaluation loop's own entry frame: the frame before it started that call */
			/* (3.15 ends each chain with the thread state's own base frame, after
			 * the first call's entry frame: the first C-owned frame is the one) */
			if (n && !frames[n - 1].entry) {
				frames[n - 1].entry = 1;
				frames[n - 1].entry_addr = frame;
			}
		} else {
			ce = code && code != bad ? code_lookup(ps, read, ctx, code, &defer) : NULL;
			if (code && !ce) {
				ps->errors++; /* torn: the frame moved on under the read (or was never code) */
				nbad++;
				bad = code;
			}
			if (ce) {
				if (defer)
					w->pend[w->npend++] = code;
				frames[n].code = code;
				frames[n].gen = ce->gen;
				frames[n].line = frame_line(ps, ce, instr);
				/* before 3.11 every Python call is a call of the evaluation loop */
				frames[n].entry =
					ps->l.legacy || (ps->l.frame_is_entry >= 0 && fb[ps->l.frame_is_entry]);
				frames[n].entry_addr = 0;
				frames[n].addr = frame;
				w->instr[n] = instr;
				n++;
			}
		}
		memcpy(&next, fb + ps->l.frame_previous, 8);
		if (next == frame)
			break; /* not a frame */
		frame = next;
	}
	w->n = n;
}

/* The code objects of a walk used unchecked, checked by one read of their qualname pointers: one
 * found replaced is read again (its frames get its new generation and line), one that cannot be
 * read any more drops its frames (counted as torn, as in the walk). */
static void check_deferred(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, struct walk *w)
{
	uint64_t addr[GS_PYSTACK_MAX_FRAMES], q[GS_PYSTACK_MAX_FRAMES], raddr[GS_PYSTACK_MAX_FRAMES],
		rq[GS_PYSTACK_MAX_FRAMES];
	int known[GS_PYSTACK_MAX_FRAMES], nr = 0, rgot = 0;
	if (!w->npend)
		return;
	for (int i = 0; i < w->npend; i++) {
		int g = 0;
		addr[i] = w->pend[i] + ps->l.code_qualname;
		while (g < w->nguess && w->guess[g] != w->pend[i])
			g++;
		known[i] = g < w->nguess; /* read with the thread state (read_thread) */
		if (known[i])
			q[i] = w->guess_q[g];
		else
			raddr[nr++] = addr[i];
	}
	if (nr)
		rgot = ps->words(ctx, raddr, rq, nr); /* the leading words read; the others one by one */
	for (int i = 0, r = 0; i < w->npend; i++)
		if (!known[i] && r++ < rgot) {
			q[i] = rq[r - 1];
			known[i] = 1;
		}
	for (int i = 0; i < w->npend; i++) {
		size_t h = (size_t)(w->pend[i] >> 4) * 2654435761u % ps->cap;
		struct code_entry *ce = NULL;
		int k = 0, no = 0;
		for (size_t probe = 0; probe < 16 && !ce; probe++)
			if (ps->codes[(h + probe) % ps->cap].addr == w->pend[i])
				ce = &ps->codes[(h + probe) % ps->cap];
		if (ce && !known[i] && read(ctx, addr[i], &q[i], 8) < 0)
			q[i] = 0; /* not read: not the same */
		if (ce && q[i] == ce->qualname_ptr)
			continue;
		if (ce)
			ce->checked = 0; /* read it again */
		ce = code_lookup(ps, read, ctx, w->pend[i], &no);
		for (int j = 0; j < w->n; j++) {
			if (w->f[j].code != w->pend[i]) {
				w->f[k] = w->f[j];
				w->instr[k++] = w->instr[j];
			} else if (ce) {
				w->f[j].gen = ce->gen;
				w->f[j].line = frame_line(ps, ce, w->instr[j]);
				w->f[k] = w->f[j];
				w->instr[k++] = w->instr[j];
			} else {
				ps->errors++;
			}
		}
		w->n = k;
	}
	w->npend = 0;
}

/* A thread state's id (0 when it cannot be read); legacy layouts: t32 is the id read through the
 * pthread_t of the last sample (sp->pt) when have_t32. */
static uint64_t tstate_tid(const struct gs_pystacks *ps, gs_mem_reader read, void *ctx, const uint8_t *tsb,
			   struct spec *sp, uint32_t t32, int have_t32)
{
	uint64_t tid = 0;
	if (ps->l.legacy) {
		uint64_t pt;
		memcpy(&pt, tsb + ps->tstate_thread_id, 8);
		if (!(pt && have_t32 && pt == sp->pt) &&
		    (!pt || read(ctx, pt + GS_GLIBC_PTHREAD_TID_OFFSET, &t32, 4) < 0))
			t32 = 0;
		sp->pt = pt;
		tid = t32;
	} else {
		memcpy(&tid, tsb + ps->tstate_native_tid, 8);
	}
	return tid;
}

/* The thread state at ts into tsb, and its current frame into *frame (0: none). With a vectored
 * reader and the last sample's facts of this thread state (sp), one read brings the thread state,
 * the frame pointer in its cframe (3.11) and the pages its innermost frame was in, each used only
 * when the thread state read with them confirms it. 0, or -1 when the thread state cannot be read. */
static int read_thread(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t ts, uint8_t *tsb,
		       struct spec *sp, uint64_t *frame, uint32_t *t32, int *have_t32, struct walk *wk)
{
	struct gs_memv v[3 + SPEC_CODES];
	struct window *w = NULL;
	uint64_t ptr, cur = 0;
	int n = 0, got = 0, ic = -1, iw = -1, it = -1, iq = 0, cframe = ps->l.cframe_current >= 0;
	*have_t32 = 0;
	wk->nguess = 0;
	if (ps->vread && sp->ts == ts) {
		v[n++] = (struct gs_memv){ ts, tsb, ps->ts_len };
		if (ps->l.legacy && sp->pt) {
			it = n;
			v[n++] = (struct gs_memv){ sp->pt + GS_GLIBC_PTHREAD_TID_OFFSET, t32, 4 };
		}
		if (cframe && sp->cframe) {
			ic = n;
			v[n++] = (struct gs_memv){ sp->cframe + (uint64_t)ps->l.cframe_current, &cur, 8 };
		}
		iq = n; /* the qualname pointers of the code objects its last walk checked */
		for (int k = 0; k < sp->ncodes; k++) {
			wk->guess[k] = sp->codes[k];
			v[n++] = (struct gs_memv){ sp->codes[k] + ps->l.code_qualname, &wk->guess_q[k], 8 };
		}
		if (sp->win_len) {
			iw = n;
			w = &ps->win[ps->win_next++ % NWIN];
			w->len = 0;
			v[n++] = (struct gs_memv){ sp->win_lo, w->buf, sp->win_len };
		}
		got = ps->vread(ctx, v, n);
	}
	if (got < 1 && read(ctx, ts, tsb, ps->ts_len) < 0)
		return -1;
	*have_t32 = it >= 0 && got > it;
	for (int k = 0; k < sp->ncodes && got > iq + k; k++)
		wk->nguess = k + 1;
	if (w && got > iw) {
		w->lo = sp->win_lo;
		w->len = sp->win_len;
	}
	memcpy(&ptr, tsb + ps->l.tstate_frame, 8);
	if (!cframe) {
		*frame = ptr;
	} else if (ptr && ic >= 0 && got > ic && ptr == sp->cframe) {
		*frame = cur; /* the cframe it pointed to at the last sample, read with it */
	} else {
		if (!ptr || read(ctx, ptr + (uint64_t)ps->l.cframe_current, frame, 8) < 0)
			*frame = 0;
		if (w) /* the pages came before this frame pointer: a frame pushed in between would be
			* read from their older copy, so the walk reads afresh */
			w->len = 0;
	}
	if (sp->ts != ts)
		memset(sp, 0, sizeof(*sp));
	sp->ts = ts;
	sp->cframe = cframe ? ptr : 0;
	return 0;
}

/* After a walk from frame: the pages it was read from, for the next sample's guess. */
static void note_window(const struct gs_pystacks *ps, struct spec *sp, uint64_t frame)
{
	sp->win_len = 0;
	for (size_t i = 0; i < NWIN && frame; i++) {
		const struct window *w = &ps->win[i];
		if (w->len && frame >= w->lo && frame - w->lo < w->len) {
			sp->win_lo = w->lo;
			sp->win_len = w->len;
			return;
		}
	}
}

/* The first thread state of the main interpreter into *ts: 1, 0 when there is none (no interpreter
 * yet, or it cannot be read), or -errno (process gone). With a vectored reader, the interpreter's
 * address and the head read at the last sample's address are one read, used when the address is
 * the same. */
static int read_head(struct gs_pystacks *ps, gs_mem_reader read, void *ctx, uint64_t *ts)
{
	uint64_t interp = 0;
	int err;
	if (ps->vread && ps->interp) {
		struct gs_memv v[2] = { { ps->interp_main, &interp, 8 },
					{ ps->interp + ps->l.interp_threads_head, ts, 8 } };
		int got = ps->vread(ctx, v, 2);
		if (got == -ESRCH)
			return got;
		if (got == 2 && interp == ps->interp)
			return 1;
	}
	ps->interp = 0;
	if ((err = read(ctx, ps->interp_main, &interp, 8)) < 0)
		return err;
	if (!interp || read(ctx, interp + ps->l.interp_threads_head, ts, 8) < 0)
		return 0;
	ps->interp = interp;
	return 1;
}

int gs_pystacks_sample(struct gs_pystacks *ps, gs_mem_reader read, void *ctx,
		       void (*cb)(uint32_t tid, const struct gs_pyframe *f, int n, void *arg), void *arg)
{
	struct gs_pyframe frames[GS_PYSTACK_MAX_FRAMES];
	struct walk *w = gs_malloc(sizeof(*w));
	uint64_t ts;
	int nthreads = 0, err;

	w->f = frames;
	ps->sample++;
	for (size_t i = 0; i < NWIN; i++)
		ps->win[i].len = 0; /* a new instant */
	if ((err = read_head(ps, read, ctx, &ts)) <= 0)
		goto out;
	err = 0;
	for (; ts && nthreads < 4096; nthreads++) {
		uint8_t tsb[512];
		uint64_t frame = 0, tid, next;
		uint32_t t32 = 0;
		int have_t32;
		struct spec *sp = &ps->spec[(ts >> 4) % SPEC_N];
		if (ps->ts_len > sizeof(tsb) ||
		    read_thread(ps, read, ctx, ts, tsb, sp, &frame, &t32, &have_t32, w) < 0) {
			ps->errors++;
			break;
		}
		memcpy(&next, tsb + ps->l.tstate_next, 8);
		tid = tstate_tid(ps, read, ctx, tsb, sp, t32, have_t32);
		w->npend = 0;
		walk_frames(ps, read, ctx, frame, w);
		note_window(ps, sp, frame);
		sp->ncodes = w->npend < SPEC_CODES ? w->npend : SPEC_CODES;
		memcpy(sp->codes, w->pend, (size_t)sp->ncodes * sizeof(*sp->codes));
		check_deferred(ps, read, ctx, w);
		ps->walks++;
		if (tid && tid < 0x7fffffff)
			cb((uint32_t)tid, frames, w->n, arg);
		ts = next;
	}
	err = nthreads;
out:
	free(w);
	return err;
}
