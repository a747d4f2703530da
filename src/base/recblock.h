/* recblock.h - one block of a version 3 recording: the codec under recfile.c.
 *
 * A block is a 32-byte header and a body of records packed as recfile.h describes (tag byte,
 * thread index into a table the block builds as it goes, varint time deltas, arg and arg64
 * predicted or as varints, payload bytes). The encoder packs struct gs_rec records into a
 * caller's buffer; the decoder gives them back, bit for bit, from a body the caller has read and
 * checked (gs_recblock_header, gs_recblock_verify). Every block starts afresh (no state carries
 * over from the previous one), so a reader can start at any block.
 * Pure: no I/O, no allocation; every length, varint, index and count of the input is checked and
 * a corrupt body gives -EIO and a sentence in why, never a read outside the body. */
#ifndef GS_RECBLOCK_H
#define GS_RECBLOCK_H

#include "base/recfile.h"

#include <stddef.h>
#include <stdint.h>

#define GS_RECBLOCK_MAGIC 0x33425347u            /* "GSB3" */
#define GS_RECBLOCK_HEADER 32u                   /* bytes */
#define GS_RECBLOCK_MAX_BODY (16u << 20)         /* readers refuse bigger bodies (writers stay under 256 KiB) */
#define GS_RECBLOCK_THREADS 1024u                /* (pid, tid) pairs of one block; the writer starts a new one */
#define GS_RECBLOCK_MAX_PAYLOAD 0xffd8u          /* as in v2: 32 + the payload rounded up to 8 fits in u16 */
#define GS_RECBLOCK_REC_MAX(plen) ((plen) + 64u) /* the most one record takes in a body */

struct gs_recblock_thread {
	uint32_t pid, tid;
};

/* The encoder of one block. gs_recblock_enc_reset starts a block. */
struct gs_recblock_enc {
	uint32_t count, nthreads, cur; /* cur: thread index of the previous record */
	uint64_t first, last;
	uint64_t pred[32]; /* arg64 of the previous record of each type code */
	struct gs_recblock_thread threads[GS_RECBLOCK_THREADS];
	uint16_t slots[2 * GS_RECBLOCK_THREADS]; /* hash of threads: index + 1, 0 = free */
};

void gs_recblock_enc_reset(struct gs_recblock_enc *e);
/* Packs r (+ payload, plen <= GS_RECBLOCK_MAX_PAYLOAD) at dst, which has room for
 * GS_RECBLOCK_REC_MAX(plen) bytes. The bytes written, or 0 when the block's thread table is full
 * (end the block, reset, put it again). */
size_t gs_recblock_put(struct gs_recblock_enc *e, uint8_t *dst, const struct gs_rec *r, const void *payload,
		       size_t plen);
/* The CRC32 a block's header carries: of the header raw with its crc field as 0, then the body. */
uint32_t gs_recblock_crc(const uint8_t *raw, const uint8_t *body, size_t len);
/* Writes the header of the block whose body is body[0, len) into hdr (GS_RECBLOCK_HEADER bytes). */
void gs_recblock_finish(const struct gs_recblock_enc *e, uint8_t *hdr, const uint8_t *body, size_t len);

struct gs_recblock_hdr {
	uint32_t len, count, crc;
	uint64_t first, last;
};

/* Parses and bounds a header: 0, or -EIO (bad magic, a body over GS_RECBLOCK_MAX_BODY, more
 * records than the body can hold) with why. */
int gs_recblock_header(const uint8_t *raw, struct gs_recblock_hdr *h, char *why, size_t whylen);
/* 0 when the CRC32 of the header raw (its crc field as zero) and the body matches, else -EIO. */
int gs_recblock_verify(const uint8_t *raw, const struct gs_recblock_hdr *h, const uint8_t *body, char *why,
		       size_t whylen);

struct gs_recblock_dec {
	const uint8_t *p, *end;
	uint32_t left, nthreads, cur;
	uint64_t time, last;
	uint64_t pred[32];
	struct gs_recblock_thread threads[GS_RECBLOCK_THREADS];
};

/* Starts decoding body (h->len bytes, valid while records are read). */
void gs_recblock_dec_begin(struct gs_recblock_dec *d, const struct gs_recblock_hdr *h, const uint8_t *body);
/* 1 and the next record (r->size as v2 would have it; *payload into the body, *plen exact), 0 at
 * the end of the block (every record read, the body used up, the last time as the header says),
 * or -EIO with why. */
int gs_recblock_next(struct gs_recblock_dec *d, struct gs_rec *r, const uint8_t **payload, size_t *plen, char *why,
		     size_t whylen);

#endif
