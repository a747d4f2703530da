/* recblock.c - the block codec of version 3 recordings (see recblock.h and recfile.h). */
#include "base/recblock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define CODE_ESCAPE 31u /* the type follows as a varint */
#define TAG_EXT 0x80u
#define X_THREAD 1u  /* a thread index follows (new entry: pid and tid after it) */
#define X_ARG64 2u   /* arg64 - the prediction follows, zig-zag */
#define X_PAYLOAD 4u /* a payload length and its bytes follow */
#define X_BACK 8u    /* the time delta counts backwards */
#define X_ALL 15u
#define NSLOTS (2 * GS_RECBLOCK_THREADS)

static inline uint8_t *put_uv(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint64_t zz64(uint64_t v) { return (v << 1) ^ (0 - (v >> 63)); }
static inline uint64_t unzz64(uint64_t v) { return (v >> 1) ^ (0 - (v & 1)); }

static inline size_t slot_of(uint32_t pid, uint32_t tid)
{
	return (size_t)((tid * 2654435761u) ^ (pid * 0x9e3779b1u)) & (NSLOTS - 1);
}

void gs_recblock_enc_reset(struct gs_recblock_enc *e)
{
	e->count = e->nthreads = 0;
	e->cur = UINT32_MAX;
	e->first = e->last = 0;
	memset(e->pred, 0, sizeof(e->pred));
	memset(e->slots, 0, sizeof(e->slots));
}

/* The thread's index in the block (*isnew when added), or UINT32_MAX when the table is full. */
static uint32_t thread_index(struct gs_recblock_enc *e, uint32_t pid, uint32_t tid, int *isnew)
{
	size_t s = slot_of(pid, tid);
	*isnew = 0;
	while (e->slots[s]) {
		uint32_t i = e->slots[s] - 1u;
		if (e->threads[i].tid == tid && e->threads[i].pid == pid)
			return i;
		s = (s + 1) & (NSLOTS - 1);
	}
	if (e->nthreads == GS_RECBLOCK_THREADS)
		return UINT32_MAX;
	e->threads[e->nthreads] = (struct gs_recblock_thread){ .pid = pid, .tid = tid };
	e->slots[s] = (uint16_t)(e->nthreads + 1);
	*isnew = 1;
	return e->nthreads++;
}

size_t gs_recblock_put(struct gs_recblock_enc *e, uint8_t *dst, const struct gs_rec *r, const void *payload,
		       size_t plen)
{
	unsigned code = r->type >= 1 && r->type < CODE_ESCAPE ? r->type : CODE_ESCAPE, argm, ext = 0;
	uint64_t prev = e->count ? e->last : r->time;
	uint32_t idx = e->cur;
	uint8_t *p = dst + 1;
	int isnew = 0;

	if (idx == UINT32_MAX || e->threads[idx].tid != r->tid || e->threads[idx].pid != r->pid) {
		if ((idx = thread_index(e, r->pid, r->tid, &isnew)) == UINT32_MAX)
			return 0;
		ext |= X_THREAD;
	}
	argm = r->arg == 0 ? 0u : r->arg == 1 ? 1u : r->arg == -1 ? 2u : 3u;
	if (r->arg64 != e->pred[code])
		ext |= X_ARG64;
	if (plen)
		ext |= X_PAYLOAD;
	if (r->time < prev)
		ext |= X_BACK;
	dst[0] = (uint8_t)(code | argm << 5 | (ext ? TAG_EXT : 0u));
	if (ext)
		*p++ = (uint8_t)ext;
	if (code == CODE_ESCAPE)
		p = put_uv(p, r->type);
	if (ext & X_THREAD) {
		p = put_uv(p, idx);
		if (isnew) {
			p = put_uv(p, r->pid);
			p = put_uv(p, r->tid);
		}
	}
	p = put_uv(p, ext & X_BACK ? prev - r->time : r->time - prev);
	if (argm == 3)
		p = put_uv(p, zz64((uint64_t)(int64_t)r->arg));
	if (ext & X_ARG64)
		p = put_uv(p, zz64(r->arg64 - e->pred[code]));
	if (plen) {
		p = put_uv(p, plen);
		memcpy(p, payload, plen);
		p += plen;
	}
	e->pred[code] = r->arg64;
	e->cur = idx;
	if (!e->count++)
		e->first = r->time;
	e->last = r->time;
	return (size_t)(p - dst);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

uint32_t gs_recblock_crc(const uint8_t *raw, const uint8_t *body, size_t len)
{
	uint8_t h[GS_RECBLOCK_HEADER];
	uLong crc;
	memcpy(h, raw, sizeof(h));
	put32(h + 12, 0);
	crc = crc32(0L, h, sizeof(h));
	return (uint32_t)crc32(crc, body, (uInt)len);
}

void gs_recblock_finish(const struct gs_recblock_enc *e, uint8_t *hdr, const uint8_t *body, size_t len)
{
	put32(hdr, GS_RECBLOCK_MAGIC);
	put32(hdr + 4, (uint32_t)len);
	put32(hdr + 8, e->count);
	put32(hdr + 12, 0);
	put64(hdr + 16, e->first);
	put64(hdr + 24, e->last);
	put32(hdr + 12, gs_recblock_crc(hdr, body, len));
}

int gs_recblock_header(const uint8_t *raw, struct gs_recblock_hdr *h, char *why, size_t whylen)
{
	if (get32(raw) != GS_RECBLOCK_MAGIC) {
		snprintf(why, whylen, "block magic number is %#x, not %#x", get32(raw), GS_RECBLOCK_MAGIC);
		return -EIO;
	}
	h->len = get32(raw + 4);
	h->count = get32(raw + 8);
	h->crc = get32(raw + 12);
	h->first = get64(raw + 16);
	h->last = get64(raw + 24);
	if (h->len > GS_RECBLOCK_MAX_BODY) {
		snprintf(why, whylen, "block length is %u bytes, more than the %u a block may have", h->len,
			 GS_RECBLOCK_MAX_BODY);
		return -EIO;
	}
	if (h->count > h->len / 2) { /* a record takes 2 bytes at least */
		snprintf(why, whylen, "block count is %u records, more than its %u bytes can hold", h->count, h->len);
		return -EIO;
	}
	return 0;
}

int gs_recblock_verify(const uint8_t *raw, const struct gs_recblock_hdr *h, const uint8_t *body, char *why,
		       size_t whylen)
{
	uint32_t crc = gs_recblock_crc(raw, body, h->len);
	if (crc == h->crc)
		return 0;
	snprintf(why, whylen, "block checksum is %#x, its bytes give %#x", h->crc, crc);
	return -EIO;
}

void gs_recblock_dec_begin(struct gs_recblock_dec *d, const struct gs_recblock_hdr *h, const uint8_t *body)
{
	d->p = body;
	d->end = body + h->len;
	d->left = h->count;
	d->nthreads = 0;
	d->cur = UINT32_MAX;
	d->time = h->first;
	d->last = h->last;
	memset(d->pred, 0, sizeof(d->pred));
}

/* 0 and *out, or -1 when the varint runs off the body or over 64 bits. */
static inline int get_uv(struct gs_recblock_dec *d, uint64_t *out)
{
	const uint8_t *p = d->p;
	uint64_t v = 0;
	for (unsigned shift = 0; p < d->end && shift < 64; shift += 7) {
		uint8_t b = *p++;
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			d->p = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int get_u32(struct gs_recblock_dec *d, uint32_t *out)
{
	uint64_t v;
	if (get_uv(d, &v) < 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* The thread fields of one record (X_THREAD): an index, or the next free one and pid, tid. */
static const char *get_thread(struct gs_recblock_dec *d)
{
	uint32_t i;
	if (get_u32(d, &i) < 0)
		return "thread index runs off the block";
	if (i > d->nthreads)
		return "thread index is past the block's table";
	if (i == d->nthreads) {
		if (i == GS_RECBLOCK_THREADS)
			return "block has more threads than its table may hold";
		if (get_u32(d, &d->threads[i].pid) < 0 || get_u32(d, &d->threads[i].tid) < 0)
			return "thread pid or tid runs off the block";
		d->nthreads++;
	}
	d->cur = i;
	return NULL;
}

/* The fields after the tag; NULL, or what is wrong. */
static const char *get_fields(struct gs_recblock_dec *d, unsigned tag, struct gs_rec *r, const uint8_t **payload,
			      size_t *plen)
{
	unsigned code = tag & 31u, argm = (tag >> 5) & 3u, ext = 0;
	uint64_t v;
	const char *bad;
	if (tag & TAG_EXT) {
		if (d->p == d->end)
			return "record flags run off the block";
		ext = *d->p++;
		if (!ext || (ext & ~X_ALL))
			return "record has unknown flags";
	}
	r->type = (uint16_t)code;
	if (code == 0)
		return "record type code is 0";
	if (code == CODE_ESCAPE) {
		if (get_uv(d, &v) < 0 || v > UINT16_MAX)
			return "record type runs off the block or is over 16 bits";
		r->type = (uint16_t)v;
	}
	if ((ext & X_THREAD) && (bad = get_thread(d)) != NULL)
		return bad;
	if (d->cur == UINT32_MAX)
		return "record has no thread";
	r->pid = d->threads[d->cur].pid;
	r->tid = d->threads[d->cur].tid;
	if (get_uv(d, &v) < 0)
		return "record time runs off the block";
	d->time = ext & X_BACK ? d->time - v : d->time + v;
	r->time = d->time;
	r->arg = argm == 0 ? 0 : argm == 1 ? 1 : -1;
	if (argm == 3) {
		if (get_uv(d, &v) < 0)
			return "record arg runs off the block";
		v = unzz64(v);
		if ((int64_t)v < INT32_MIN || (int64_t)v > INT32_MAX)
			return "record arg is over 32 bits";
		r->arg = (int32_t)(int64_t)v;
	}
	r->arg64 = d->pred[code];
	if (ext & X_ARG64) {
		if (get_uv(d, &v) < 0)
			return "record arg64 runs off the block";
		r->arg64 += unzz64(v);
		d->pred[code] = r->arg64;
	}
	*payload = NULL;
	*plen = 0;
	r->size = (uint16_t)sizeof(*r);
	if (ext & X_PAYLOAD) {
		if (get_uv(d, &v) < 0 || v == 0 || v > GS_RECBLOCK_MAX_PAYLOAD || v > (uint64_t)(d->end - d->p))
			return "record payload length is 0, too big or past the block";
		*payload = d->p;
		*plen = (size_t)v;
		d->p += v;
		r->size = (uint16_t)(sizeof(*r) + ((v + 7) & ~(uint64_t)7));
	}
	return NULL;
}

int gs_recblock_next(struct gs_recblock_dec *d, struct gs_rec *r, const uint8_t **payload, size_t *plen, char *why,
		     size_t whylen)
{
	const char *bad;
	if (!d->left) {
		if (d->p != d->end)
			bad = "block has bytes after its last record";
		else if (d->time != d->last)
			bad = "block's last record is not at the time its header says";
		else
			return 0;
	} else if (d->p == d->end) {
		bad = "block ends before its record count";
	} else {
		unsigned tag = *d->p++;
		if ((bad = get_fields(d, tag, r, payload, plen)) == NULL) {
			d->left--;
			return 1;
		}
	}
	snprintf(why, whylen, "%s", bad);
	return -EIO;
}
