/* pyname.c - Python thread names and the switch interval from another process (see pyname.h). */
#include "cpython/pyname.h"

#include <errno.h>
#include <string.h>

#define TPFLAGS_INLINE_VALUES (1ull << 2) /* 3.13+ */
#define TPFLAGS_MANAGED_DICT (1ull << 4)  /* 3.11+ */
#define TPFLAGS_UNICODE_SUBCLASS (1ull << 28)
#define MAX_KEYS 256      /* entries of an instance dict searched, at most */
#define MAX_NAME_CHARS 96 /* characters of a name read, at most */

struct rd {
	gs_mem_reader read;
	void *ctx;
	struct gs_pyname_memo *memo; /* where `_name` was found last (NULL: none kept) */
	int err;                     /* the first -errno other than -EFAULT (-ESRCH: gone) */
};

static int get(struct rd *r, uint64_t addr, void *dst, size_t len)
{
	int e;
	if (!addr || addr + len < addr)
		return -1;
	e = r->read(r->ctx, addr, dst, len);
	if (e < 0 && e != -EFAULT && !r->err)
		r->err = e;
	return e < 0 ? -1 : 0;
}

static int get64(struct rd *r, uint64_t addr, uint64_t *v) { return get(r, addr, v, 8); }

int gs_pyname_is_bootstrap(const char *qualname, const char *filename)
{
	size_t fl = filename ? strlen(filename) : 0;
	if (!qualname || fl < 12 || strcmp(filename + fl - 12, "threading.py") != 0)
		return 0;
	return strcmp(qualname, "Thread._bootstrap_inner") == 0 || strcmp(qualname, "_bootstrap_inner") == 0;
}

/* Appends code point c as UTF-8 to out (o bytes used of cap); 0, or -1 when it does not fit. */
static int put_utf8(char *out, size_t *o, size_t cap, uint32_t c)
{
	uint8_t b[4];
	size_t n;
	if (c > 0x10ffff || (c >= 0xd800 && c < 0xe000))
		c = 0xfffd;
	if (c < 0x80) {
		b[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (uint8_t)(0xc0 | c >> 6);
		b[1] = (uint8_t)(0x80 | (c & 63));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (uint8_t)(0xe0 | c >> 12);
		b[1] = (uint8_t)(0x80 | ((c >> 6) & 63));
		b[2] = (uint8_t)(0x80 | (c & 63));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | c >> 18);
		b[1] = (uint8_t)(0x80 | ((c >> 12) & 63));
		b[2] = (uint8_t)(0x80 | ((c >> 6) & 63));
		b[3] = (uint8_t)(0x80 | (c & 63));
		n = 4;
	}
	if (*o + n >= cap)
		return -1;
	memcpy(out + *o, b, n);
	*o += n;
	return 0;
}

/* A compact str object as UTF-8 (cut at outlen - 1 bytes, at a character). Its length, or -1. */
static int read_str(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, uint64_t obj,
		    char *out, size_t outlen)
{
	uint8_t hdr[128], data[MAX_NAME_CHARS * 4];
	uint64_t len, start;
	unsigned kind;
	uint8_t state;
	size_t o = 0;

	if (sl->uni_ascii_size > sizeof(hdr) || sl->uni_state >= sl->uni_ascii_size ||
	    sl->uni_length + 8 > sl->uni_ascii_size || get(r, obj, hdr, sl->uni_ascii_size) < 0)
		return -1;
	memcpy(&len, hdr + sl->uni_length, 8);
	state = hdr[sl->uni_state];
	kind = (state >> 2) & 7;
	if (!(state & 0x20) || len > (1u << 30)) /* compact strings only */
		return -1;
	if (state & 0x40) {
		kind = 1;
		start = sl->uni_ascii_size;
	} else if (kind == 1 || kind == 2 || kind == 4) {
		start = l->uni_compact_size;
	} else {
		return -1;
	}
	if (len > MAX_NAME_CHARS)
		len = MAX_NAME_CHARS;
	if (len && get(r, obj + start, data, len * kind) < 0)
		return -1;
	for (uint64_t i = 0; i < len; i++) {
		uint32_t c = 0;
		if (kind == 1)
			c = data[i];
		else if (kind == 2)
			c = (uint32_t)data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
		else
			memcpy(&c, data + 4 * i, 4);
		if (c == 0 || put_utf8(out, &o, outlen, c) < 0) /* a NUL ends the name (it is written as C text) */
			break;
	}
	out[o] = '\0';
	return (int)o;
}

/* Is obj a str (its type says so)? */
static int is_str(struct rd *r, const struct gs_pyobj_layout *l, uint64_t obj)
{
	uint64_t type, flags;
	return get64(r, obj + 8, &type) == 0 && get64(r, type + l->type_flags, &flags) == 0 &&
	       (flags & TPFLAGS_UNICODE_SUBCLASS);
}

/* The index of key `name` in a dict keys object, and the value its entry holds (combined
 * tables). 0 or -1. */
/* keys_find by the memo: its entry read again, trusted when it still holds the key found
 * there (the same str object: names are interned) in the same keys object. 0 or -1. */
static int memo_find(struct rd *r, uint64_t keys, uint64_t *index, uint64_t *value)
{
	const struct gs_pyname_memo *m = r->memo;
	uint8_t e[24];
	uint64_t key;
	if (!m || !m->keys || m->keys != keys || m->esize > sizeof(e) || get(r, m->entry, e, m->esize) < 0)
		return -1;
	memcpy(&key, e + m->koff, 8);
	if (key != m->key)
		return -1;
	*index = m->index;
	memcpy(value, e + m->voff, 8);
	return 0;
}

static int keys_find(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, uint64_t keys,
		     const char *name, uint64_t *index, uint64_t *value)
{
	uint8_t k[40], ents[MAX_KEYS * 24];
	uint64_t n, entries, esize = 24, koff = 8, voff = 16;

	if (r->memo && strcmp(name, "_name") == 0 && memo_find(r, keys, index, value) == 0)
		return 0;
	if (get(r, keys, k, l->keys_legacy ? 40 : 32) < 0)
		return -1;
	if (l->keys_legacy) {
		uint64_t size, ix;
		memcpy(&size, k + 8, 8);
		memcpy(&n, k + 32, 8);
		if (size < 8 || size > (1u << 24) || (size & (size - 1)))
			return -1;
		ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : 4;
		entries = keys + 40 + size * ix;
	} else {
		if (k[8] > 24 || k[9] > 27 || k[10] > 2)
			return -1;
		memcpy(&n, k + 24, 8);
		if (n > (1ull << k[8]))
			return -1;
		entries = keys + 32 + (1ull << k[9]);
		if (k[10] != 0) {
			esize = 16;
			koff = 0;
			voff = 8;
		}
	}
	if (n > MAX_KEYS)
		n = MAX_KEYS;
	if (!n || get(r, entries, ents, n * esize) < 0)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		char buf[16];
		uint64_t key;
		memcpy(&key, ents + i * esize + koff, 8);
		if (key && read_str(r, l, sl, key, buf, sizeof(buf)) >= 0 && strcmp(buf, name) == 0) {
			*index = i;
			memcpy(value, ents + i * esize + voff, 8);
			if (r->memo && strcmp(name, "_name") == 0)
				*r->memo =
					(struct gs_pyname_memo){ keys, entries + i * esize, key, i, esize, koff, voff };
			return 0;
		}
	}
	return -1;
}

/* Where obj keeps its attributes: a values array and the keys that go with it, or a dict. */
static int attr_home(struct rd *r, const struct gs_pyobj_layout *l, uint64_t obj, uint64_t *values, uint64_t *dict)
{
	uint64_t type, flags, w;
	int64_t off;

	*values = *dict = 0;
	if (get64(r, obj + 8, &type) < 0 || get64(r, type + l->type_flags, &flags) < 0)
		return -1;
	switch (l->attr_home) {
	case GS_ATTR_DICTOFFSET:
		if (get(r, type + l->type_dictoffset, &off, 8) < 0 || off <= 0 || off > 4096)
			return -1;
		return get64(r, obj + (uint64_t)off, dict);
	case GS_ATTR_VALUES_311:
		if (!(flags & TPFLAGS_MANAGED_DICT) || get64(r, obj - 32, values) < 0)
			return -1;
		return *values ? 0 : get64(r, obj - 24, dict);
	case GS_ATTR_TAGGED_312:
		if (!(flags & TPFLAGS_MANAGED_DICT) || get64(r, obj - 24, &w) < 0)
			return -1;
		if (w & 1) /* 3.12 stores the values pointer minus one */
			*values = w + 1;
		else
			*dict = w;
		return 0;
	case GS_ATTR_INLINE_313:
		if (flags & TPFLAGS_INLINE_VALUES) {
			uint8_t hdr[4];
			if (get64(r, type + l->type_basicsize, &w) < 0 || w < 16 || w > 4096 ||
			    get(r, obj + w, hdr, sizeof(hdr)) < 0)
				return -1;
			if (hdr[3]) { /* valid */
				*values = obj + w;
				return 0;
			}
		}
		return (flags & TPFLAGS_MANAGED_DICT) ? get64(r, obj - 24, dict) : -1;
	}
	return -1;
}

/* The value of key `name` in keys (values: the split table's values array, 0: combined). */
static int lookup(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, uint64_t keys,
		  uint64_t values, const char *name, uint64_t *out)
{
	uint64_t index, v;
	if (keys_find(r, l, sl, keys, name, &index, &v) < 0)
		return -1;
	if (values) /* a split table: the value is in the values array, at the key's index */
		return get64(r, values + l->values_skip + 8 * index, out);
	*out = v;
	return 0;
}

/* The value of dict[name] for a str key. 0 or -1. */
static int dict_get(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, uint64_t dict,
		    const char *name, uint64_t *out)
{
	uint64_t keys, values;
	if (!dict || get64(r, dict + l->dict_keys, &keys) < 0 || get64(r, dict + l->dict_values, &values) < 0)
		return -1;
	return lookup(r, l, sl, keys, values, name, out);
}

/* The value of obj's attribute `name`, 0 or -1. */
static int getattr(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, uint64_t obj,
		   const char *name, uint64_t *out)
{
	uint64_t values, dict, keys, type;

	if (attr_home(r, l, obj, &values, &dict) < 0)
		return -1;
	if (!values)
		return dict_get(r, l, sl, dict, name, out);
	if (get64(r, obj + 8, &type) < 0 || get64(r, type + l->type_cached_keys, &keys) < 0)
		return -1;
	return lookup(r, l, sl, keys, values, name, out);
}

/* The _name of Thread object `thread` into out: its length, or -1. */
static int thread_name(struct rd *r, const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl,
		       uint64_t thread, char *out, size_t outlen)
{
	uint64_t name;
	if (!thread || getattr(r, l, sl, thread, "_name", &name) < 0 || !is_str(r, l, name))
		return -1;
	return read_str(r, l, sl, name, out, outlen);
}

int gs_pyname_thread(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read, void *ctx,
		     uint64_t frame, char *out, size_t outlen)
{
	return gs_pyname_thread_memo(l, sl, read, ctx, frame, NULL, out, outlen);
}

int gs_pyname_thread_memo(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read,
			  void *ctx, uint64_t frame, struct gs_pyname_memo *memo, char *out, size_t outlen)
{
	struct rd r = { read, ctx, memo, 0 };
	uint64_t self;
	int n = -1;

	if (outlen < 8 || !l->frame_localsplus || l->frame_localsplus > 4096)
		return -ENOENT;
	out[0] = '\0';
	if (get64(&r, frame + l->frame_localsplus, &self) == 0)
		n = thread_name(&r, l, sl, self & l->local_mask, out, outlen);
	if (n < 0) {
		out[0] = '\0';
		return r.err ? r.err : -ENOENT;
	}
	return n;
}

int gs_pyname_main_thread(const struct gs_pyobj_layout *l, const struct gs_pystack_layout *sl, gs_mem_reader read,
			  void *ctx, uint64_t frame, char *out, size_t outlen)
{
	struct rd r = { read, ctx, NULL, 0 };
	uint64_t globals, main;
	int n = -1;

	if (outlen < 8 || !l->frame_globals || l->frame_globals > 4096)
		return -ENOENT;
	out[0] = '\0';
	if (get64(&r, frame + l->frame_globals, &globals) == 0 &&
	    dict_get(&r, l, sl, globals, "_main_thread", &main) == 0)
		n = thread_name(&r, l, sl, main, out, outlen);
	if (n < 0) {
		out[0] = '\0';
		return r.err ? r.err : -ENOENT;
	}
	return n;
}

int gs_pyname_switch_interval(const struct gs_pylayout *l, uint64_t runtime, gs_mem_reader read, void *ctx,
			      uint64_t *us)
{
	struct rd r = { read, ctx, NULL, 0 };
	uint64_t gil = 0, interp, v;

	if (l->gil_last_holder < 8)
		return -ENOENT;
	if (l->gil_home == GS_GIL_IN_RUNTIME) {
		gil = runtime + l->gil;
	} else if (get64(&r, runtime + l->interp_main, &interp) == 0 && interp) {
		/* the GIL the main interpreter uses (its own; ceval.gil points to it once created) */
		if (!l->interp_ceval_gil || get64(&r, interp + l->interp_ceval_gil, &gil) < 0 || !gil)
			gil = interp + l->interp_gil;
	}
	if (!gil || get64(&r, gil + l->gil_last_holder - 8, &v) < 0)
		return r.err ? r.err : -ENOENT;
	if (v == 0 || v > 3600ull * 1000000) /* 0: not initialised yet */
		return -ENOENT;
	*us = v;
	return 0;
}
