/* recfile.c - recording writer and reader. */
#define _GNU_SOURCE
#include "base/recfile.h"
#include "base/recblock.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WBUF \
	(256u << 10) /* the writer's buffer: one block, header included (a disk full or a kill loses one at most) */

struct gs_recwriter {
	int fd;
	uint8_t *buf; /* the block being built: header (written at flush), then its body */
	size_t len;   /* 0: no block open */
	uint64_t bytes;
	int err;
	struct gs_recblock_enc enc;
};

/* 0, or -errno with *done = the bytes written before the failure. */
static int write_some(int fd, const void *p, size_t n, size_t *done)
{
	const uint8_t *b = p;
	*done = 0;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		b += w;
		n -= (size_t)w;
		*done += (size_t)w;
	}
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	size_t done;
	return write_some(fd, p, n, &done);
}

int gs_recwriter_open(const char *path, uint64_t start_mono, struct gs_recwriter **out)
{
	char why[256];
	int fd = gs_open_output(path, why, sizeof(why));
	if (fd < 0)
		return fd;
	return gs_recwriter_open_fd(fd, start_mono, out);
}

int gs_recwriter_open_fd(int fd, uint64_t start_mono, struct gs_recwriter **out)
{
	uint8_t hdr[GS_REC_HEADER_SIZE] = { 0 };
	uint32_t v = GS_REC_VERSION, hs = GS_REC_HEADER_SIZE;
	struct timespec rt;
	uint64_t rtns;
	struct gs_recwriter *w;
	int err;

	clock_gettime(CLOCK_REALTIME, &rt);
	rtns = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec;
	memcpy(hdr, GS_REC_MAGIC, 8);
	memcpy(hdr + 8, &v, 4);
	memcpy(hdr + 12, &hs, 4);
	memcpy(hdr + 24, &rtns, 8);
	memcpy(hdr + 32, &start_mono, 8);
	if ((err = write_all(fd, hdr, sizeof(hdr))) < 0) {
		close(fd);
		return err;
	}
	w = gs_calloc(1, sizeof(*w));
	w->fd = fd;
	w->buf = gs_malloc(WBUF);
	w->bytes = sizeof(hdr);
	*out = w;
	return 0;
}

/* Ends the block and writes it out. 0 or -errno (sticky). */
int gs_recwriter_flush(struct gs_recwriter *w)
{
	size_t done;
	int err;
	if (w->err || !w->len)
		return w->err;
	gs_recblock_finish(&w->enc, w->buf, w->buf + GS_RECBLOCK_HEADER, w->len - GS_RECBLOCK_HEADER);
	err = write_some(w->fd, w->buf, w->len, &done);
	if (err < 0) {
		/* keep the file a sequence of whole blocks: cut the part of this one that was written */
		if (ftruncate(w->fd, (off_t)w->bytes) == 0)
			lseek(w->fd, (off_t)w->bytes, SEEK_SET);
		w->len = 0;
		w->err = err;
		return err;
	}
	w->bytes += w->len;
	w->len = 0;
	return 0;
}

int gs_recwriter_add(struct gs_recwriter *w, const struct gs_rec *r, const void *payload, size_t plen)
{
	size_t n;

	if (w->err)
		return w->err;
	if (plen > GS_RECBLOCK_MAX_PAYLOAD)
		return -EINVAL;
	if (w->len + GS_RECBLOCK_REC_MAX(plen) > WBUF && gs_recwriter_flush(w) < 0)
		return w->err;
	if (!w->len) {
		gs_recblock_enc_reset(&w->enc);
		w->len = GS_RECBLOCK_HEADER;
	}
	n = gs_recblock_put(&w->enc, w->buf + w->len, r, payload, plen);
	if (!n) { /* the block's thread table is full: a new block */
		if (gs_recwriter_flush(w) < 0)
			return w->err;
		gs_recblock_enc_reset(&w->enc);
		w->len = GS_RECBLOCK_HEADER;
		n = gs_recblock_put(&w->enc, w->buf + w->len, r, payload, plen);
	}
	w->len += n;
	return 0;
}

int gs_recwriter_meta(struct gs_recwriter *w, uint32_t pid, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	struct gs_rec r = { .type = GS_REC_META, .pid = pid };
	char *p;
	int err;
	if (kl + vl + 2 > 0xf000)
		vl = 0xf000 - kl - 2;
	p = gs_malloc(kl + vl + 2);
	memcpy(p, key, kl + 1);
	memcpy(p + kl + 1, value, vl);
	p[kl + 1 + vl] = '\0';
	err = gs_recwriter_add(w, &r, p, kl + vl + 2);
	free(p);
	return err;
}

int gs_recwriter_set_start(struct gs_recwriter *w, uint64_t start_mono)
{
	return pwrite(w->fd, &start_mono, 8, 32) == 8 ? 0 : -errno;
}

uint64_t gs_recwriter_bytes(const struct gs_recwriter *w) { return w->bytes + w->len; }

int gs_recwriter_close(struct gs_recwriter *w)
{
	int err;
	if (!w)
		return 0;
	err = gs_recwriter_flush(w);
	if (close(w->fd) < 0 && !err)
		err = -errno;
	free(w->buf);
	free(w);
	return err;
}

struct gs_recreader {
	FILE *f;
	uint64_t start;
	uint32_t version;
	uint32_t hsize;
	uint8_t *payload;
	size_t cap;
	int truncated;
	int err;        /* sticky -EIO */
	uint64_t off;   /* v3: the file offset of the next block */
	uint8_t *block; /* v3: the current block's body */
	size_t bcap;
	int in_block;
	uint8_t raw[GS_RECBLOCK_HEADER];
	struct gs_recblock_hdr h;
	struct gs_recblock_dec dec;
	char why[256];
};

int gs_recreader_open(const char *path, struct gs_recreader **out, char *why, size_t whylen)
{
	uint8_t hdr[GS_REC_HEADER_SIZE];
	uint32_t v, hs;
	struct gs_recreader *rd;
	FILE *f = fopen(path, "rbe");

	if (!f) {
		int e = errno;
		snprintf(why, whylen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	if (fread(hdr, 1, sizeof(hdr), f) != sizeof(hdr) || memcmp(hdr, GS_REC_MAGIC, 8) != 0) {
		snprintf(why, whylen, "%s is not a gilscope recording (bad magic number)", path);
		fclose(f);
		return -EINVAL;
	}
	memcpy(&v, hdr + 8, 4);
	memcpy(&hs, hdr + 12, 4);
	if (v < GS_REC_VERSION_MIN || v > GS_REC_VERSION || hs < GS_REC_HEADER_SIZE || hs > 4096) {
		snprintf(why, whylen,
			 "%s is a gilscope recording of format version %u; this gilscope reads versions %u to %u%s",
			 path, v, GS_REC_VERSION_MIN, GS_REC_VERSION,
			 v > GS_REC_VERSION ? ": read it with a newer gilscope" : "");
		fclose(f);
		return -EINVAL;
	}
	if (hs > GS_REC_HEADER_SIZE && fseek(f, (long)hs, SEEK_SET) != 0) {
		fclose(f);
		return -EIO;
	}
	rd = gs_calloc(1, sizeof(*rd));
	rd->f = f;
	rd->version = v;
	rd->hsize = hs;
	rd->off = hs;
	memcpy(&rd->start, hdr + 32, 8);
	rd->cap = 4096;
	rd->payload = gs_malloc(rd->cap);
	*out = rd;
	return 0;
}

static int next_v2(struct gs_recreader *rd, struct gs_rec *r, const void **payload, size_t *plen)
{
	size_t n = fread(r, 1, sizeof(*r), rd->f), p;
	if (n == 0)
		return 0;
	if (n < sizeof(*r)) {
		rd->truncated = 1;
		return 0;
	}
	if (r->size < sizeof(*r) || (r->size & 7)) {
		snprintf(rd->why, sizeof(rd->why), "record size is %u bytes, not a multiple of 8 from 32", r->size);
		return -EIO;
	}
	p = r->size - sizeof(*r);
	if (p > rd->cap) {
		rd->cap = p;
		rd->payload = gs_realloc_array(rd->payload, p, 1);
	}
	if (p && fread(rd->payload, 1, p, rd->f) != p) {
		rd->truncated = 1;
		return 0;
	}
	if (p)
		rd->payload[p - 1] = '\0'; /* payloads are strings: always terminated */
	*payload = rd->payload;
	*plen = p;
	return 1;
}

/* Reads and checks the next block: 1, 0 at the end (rd->truncated when cut), or -EIO. */
static int read_block(struct gs_recreader *rd)
{
	char why[200];
	size_t n = fread(rd->raw, 1, sizeof(rd->raw), rd->f);
	if (n < sizeof(rd->raw)) {
		if (n)
			rd->truncated = 1;
		return 0;
	}
	if (gs_recblock_header(rd->raw, &rd->h, why, sizeof(why)) < 0)
		goto corrupt;
	if (rd->h.len > rd->bcap) {
		rd->bcap = rd->h.len;
		rd->block = gs_realloc_array(rd->block, rd->bcap, 1);
	}
	if (fread(rd->block, 1, rd->h.len, rd->f) != rd->h.len) {
		rd->truncated = 1;
		return 0;
	}
	if (gs_recblock_verify(rd->raw, &rd->h, rd->block, why, sizeof(why)) < 0)
		goto corrupt;
	gs_recblock_dec_begin(&rd->dec, &rd->h, rd->block);
	rd->off += GS_RECBLOCK_HEADER + (uint64_t)rd->h.len;
	return 1;
corrupt:
	snprintf(rd->why, sizeof(rd->why), "the block at offset %llu is corrupt: %s", (unsigned long long)rd->off, why);
	return -EIO;
}

/* The next record of a v3 file, its payload given as v2 gives it (rounded up to 8 with zeros, the
 * last byte a NUL), so that every reader sees the same records whatever the version. */
static int next_v3(struct gs_recreader *rd, struct gs_rec *r, const void **payload, size_t *plen)
{
	char why[200];
	const uint8_t *p;
	size_t n;
	int res;
	for (;;) {
		if (!rd->in_block && (res = read_block(rd)) <= 0)
			return res;
		rd->in_block = 1;
		res = gs_recblock_next(&rd->dec, r, &p, &n, why, sizeof(why));
		if (res == 1)
			break;
		rd->in_block = 0;
		if (res < 0) {
			snprintf(rd->why, sizeof(rd->why), "the block ending at offset %llu is corrupt: %s",
				 (unsigned long long)rd->off, why);
			return -EIO;
		}
	}
	*plen = r->size - sizeof(*r);
	if (*plen) {
		if (*plen > rd->cap) {
			rd->cap = *plen;
			rd->payload = gs_realloc_array(rd->payload, rd->cap, 1);
		}
		memcpy(rd->payload, p, n);
		memset(rd->payload + n, 0, *plen - n);
		rd->payload[*plen - 1] = '\0';
	}
	*payload = rd->payload;
	return 1;
}

int gs_recreader_next(struct gs_recreader *rd, struct gs_rec *r, const void **payload, size_t *plen)
{
	int res;
	if (rd->err)
		return rd->err;
	res = rd->version >= 3 ? next_v3(rd, r, payload, plen) : next_v2(rd, r, payload, plen);
	if (res < 0)
		rd->err = res;
	return res;
}

int gs_recreader_seek(struct gs_recreader *rd, uint64_t time)
{
	char why[200];
	if (rd->version < 3)
		return -ENOTSUP;
	if (rd->err)
		return rd->err;
	rd->in_block = 0;
	rd->off = rd->hsize;
	for (;;) {
		size_t n;
		if (fseeko(rd->f, (off_t)rd->off, SEEK_SET) != 0)
			return -errno;
		n = fread(rd->raw, 1, sizeof(rd->raw), rd->f);
		if (n < sizeof(rd->raw))
			break; /* the end: next() says so */
		if (gs_recblock_header(rd->raw, &rd->h, why, sizeof(why)) < 0) {
			snprintf(rd->why, sizeof(rd->why), "the block at offset %llu is corrupt: %s",
				 (unsigned long long)rd->off, why);
			return rd->err = -EIO;
		}
		if (rd->h.last >= time)
			break;
		rd->off += GS_RECBLOCK_HEADER + (uint64_t)rd->h.len;
	}
	return fseeko(rd->f, (off_t)rd->off, SEEK_SET) == 0 ? 0 : -errno;
}

const char *gs_recreader_error(const struct gs_recreader *rd) { return rd->why; }

uint64_t gs_recreader_start(const struct gs_recreader *rd) { return rd->start; }
int gs_recreader_truncated(const struct gs_recreader *rd) { return rd->truncated; }

void gs_recreader_close(struct gs_recreader *rd)
{
	if (!rd)
		return;
	fclose(rd->f);
	free(rd->payload);
	free(rd->block);
	free(rd);
}

int gs_meta_decode(const struct gs_rec *r, const void *payload, size_t plen, struct gs_meta *out)
{
	const char *p = payload;
	const char *kend = p ? memchr(p, '\0', plen) : NULL;
	size_t vlen;
	memset(out, 0, sizeof(*out));
	if (!kend || kend == p)
		return -EINVAL;
	out->key = p;
	vlen = plen - (size_t)(kend + 1 - p);
	switch (r->arg) {
	case GS_META_TEXT:
		if (!vlen || !memchr(kend + 1, '\0', vlen))
			return -EINVAL;
		out->type = GS_META_TEXT;
		out->text = kend + 1;
		out->is_number = gs_parse_u64(out->text, &out->u64) == 0;
		return 0;
	case GS_META_U64:
		if (vlen < 8)
			return -EINVAL;
		out->type = GS_META_U64;
		memcpy(&out->u64, kend + 1, 8);
		out->is_number = 1;
		snprintf(out->buf, sizeof(out->buf), "%llu", (unsigned long long)out->u64);
		out->text = out->buf;
		return 0;
	default:
		return -EINVAL;
	}
}

size_t gs_meta_u64_payload(char *buf, size_t len, const char *key, uint64_t value)
{
	size_t kl = strlen(key);
	if (kl + 1 + 8 > len)
		return 0;
	memcpy(buf, key, kl + 1);
	memcpy(buf + kl + 1, &value, 8);
	return kl + 1 + 8;
}
