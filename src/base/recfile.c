/* recfile.c - recording writer and reader. */
#define _GNU_SOURCE
#include "base/recfile.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WBUF (1u << 20)

struct gs_recwriter {
	int fd;
	uint8_t *buf;
	size_t len;
	uint64_t bytes;
	int err;
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

int gs_recwriter_flush(struct gs_recwriter *w)
{
	size_t done;
	int err;
	if (w->err || !w->len)
		return w->err;
	err = write_some(w->fd, w->buf, w->len, &done);
	if (err < 0) {
		/* keep the file a sequence of whole records: keep those written in full (a full disk
		 * takes what fits), cut the rest */
		size_t keep = 0;
		while (keep + sizeof(struct gs_rec) <= done) {
			uint16_t size;
			memcpy(&size, w->buf + keep + 2, 2);
			if (size < sizeof(struct gs_rec) || keep + size > done)
				break;
			keep += size;
		}
		if (ftruncate(w->fd, (off_t)(w->bytes + keep)) == 0)
			lseek(w->fd, (off_t)(w->bytes + keep), SEEK_SET);
		w->bytes += keep;
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
	size_t size = sizeof(*r) + ((plen + 7) & ~(size_t)7);
	struct gs_rec h = *r;

	if (w->err)
		return w->err;
	if (size > 0xfff8)
		return -EINVAL;
	if (w->len + size > WBUF && gs_recwriter_flush(w) < 0)
		return w->err;
	h.size = (uint16_t)size;
	memcpy(w->buf + w->len, &h, sizeof(h));
	if (plen) {
		memcpy(w->buf + w->len + sizeof(h), payload, plen);
		memset(w->buf + w->len + sizeof(h) + plen, 0, size - sizeof(h) - plen);
	}
	w->len += size;
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
	uint8_t *payload;
	size_t cap;
	int truncated;
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
	memcpy(&rd->start, hdr + 32, 8);
	rd->cap = 4096;
	rd->payload = gs_malloc(rd->cap);
	*out = rd;
	return 0;
}

int gs_recreader_next(struct gs_recreader *rd, struct gs_rec *r, const void **payload, size_t *plen)
{
	size_t n = fread(r, 1, sizeof(*r), rd->f), p;
	if (n == 0)
		return 0;
	if (n < sizeof(*r)) {
		rd->truncated = 1;
		return 0;
	}
	if (r->size < sizeof(*r) || (r->size & 7))
		return -EIO;
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

uint64_t gs_recreader_start(const struct gs_recreader *rd) { return rd->start; }
int gs_recreader_truncated(const struct gs_recreader *rd) { return rd->truncated; }

void gs_recreader_close(struct gs_recreader *rd)
{
	if (!rd)
		return;
	fclose(rd->f);
	free(rd->payload);
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
