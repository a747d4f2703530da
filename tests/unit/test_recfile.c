/* Unit tests: format version 3 of the recording (base/recfile.c and its block codec
 * base/recblock.c): round trips of every record type with extreme values, more threads than a
 * block's table, flushes (block boundaries) and seeking, a file cut at every byte, every byte
 * corrupted, hand-made hostile blocks, and the golden v2 recordings read the same once rewritten
 * as v3. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "base/recblock.h"
#include "base/recfile.h"

static char path[64], path2[64];

static int setup(void **state)
{
	int fd;
	(void)state;
	snprintf(path, sizeof(path), "/tmp/gilscope-test-XXXXXX");
	snprintf(path2, sizeof(path2), "/tmp/gilscope-test-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	close(fd);
	if ((fd = mkstemp(path2)) < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	unlink(path2);
	return 0;
}

/* A record as written, and what a reader must give back. */
struct rec {
	struct gs_rec r;
	const void *payload;
	size_t plen;
};

static void write_recs(const char *p, const struct rec *v, size_t n, size_t flush_every)
{
	struct gs_recwriter *w;
	assert_int_equal(gs_recwriter_open(p, 1000, &w), 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(gs_recwriter_add(w, &v[i].r, v[i].payload, v[i].plen), 0);
		if (flush_every && (i + 1) % flush_every == 0)
			assert_int_equal(gs_recwriter_flush(w), 0);
	}
	assert_int_equal(gs_recwriter_close(w), 0);
}

/* r as the reader gives it back: size as v2, payload padded to 8, the last byte a NUL. */
static void check_rec(const struct rec *want, const struct gs_rec *r, const void *p, size_t plen)
{
	size_t padded = (want->plen + 7) & ~(size_t)7;
	assert_int_equal(r->type, want->r.type);
	assert_int_equal(r->size, 32 + padded);
	assert_int_equal(r->pid, want->r.pid);
	assert_int_equal(r->tid, want->r.tid);
	assert_int_equal(r->arg, want->r.arg);
	assert_true(r->time == want->r.time);
	assert_true(r->arg64 == want->r.arg64);
	assert_int_equal(plen, padded);
	if (plen) {
		const uint8_t *b = p;
		assert_memory_equal(b, want->payload, want->plen - (want->plen == padded));
		for (size_t i = want->plen; i < plen; i++)
			assert_int_equal(b[i], 0);
		assert_int_equal(b[plen - 1], 0);
	}
}

/* Reads p: how many records match v, in order, until the end or an error; *res the last result. */
static size_t read_recs(const char *p, const struct rec *v, size_t n, int *res, int *truncated)
{
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *pl;
	size_t plen, i = 0;
	char why[256];
	assert_int_equal(gs_recreader_open(p, &rd, why, sizeof(why)), 0);
	assert_int_equal(gs_recreader_start(rd), 1000);
	while ((*res = gs_recreader_next(rd, &r, &pl, &plen)) == 1) {
		assert_true(i < n);
		check_rec(&v[i], &r, pl, plen);
		i++;
	}
	*truncated = gs_recreader_truncated(rd);
	if (*res < 0)
		assert_true(strlen(gs_recreader_error(rd)) > 10);
	gs_recreader_close(rd);
	return i;
}

static uint8_t big[GS_RECBLOCK_MAX_PAYLOAD];

/* Every record type (known, unknown, 0, the escape code and beyond, the largest), extreme
 * fields, time jumping and going back, payloads of every small length and the largest. */
static size_t extreme_recs(struct rec *v, size_t cap)
{
	static const uint16_t types[] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,  12,
					  13, 14, 15, 16, 17, 18, 19, 20, 30, 31, 32, 255, 0xffff };
	static const int32_t args[] = { 0, 1, -1, 2, -2, INT32_MIN, INT32_MAX, 63, -64 };
	static const uint64_t a64[] = { 0, 1, UINT64_MAX, 0x7fb85cd4e6b8ull, 0x8000000000000000ull, 0x7fb85cd4e6b8ull };
	static const uint64_t times[] = { 0, 5, UINT64_MAX, 3, 1ull << 63, 1ull << 63, 1000, 999, 0, UINT64_MAX - 1 };
	static const uint32_t ids[] = { 0, 1, UINT32_MAX, 12172, 0x80000000u };
	static const char text[] = "0123456789abcdef";
	size_t n = 0;
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < 400 && n < cap; i++, n++) {
		struct gs_rec r = { .type = types[i % 26],
				    .pid = ids[i % 5],
				    .tid = ids[(i / 5) % 5],
				    .arg = args[i % 9],
				    .time = times[i % 10],
				    .arg64 = a64[i % 6] };
		v[n] = (struct rec){ .r = r };
		if (i % 3 == 0) {
			v[n].payload = text;
			v[n].plen = 1 + i % 17;
		}
	}
	v[n++] = (struct rec){ .r = { .type = GS_REC_STACK, .time = 7 }, .payload = big, .plen = sizeof(big) };
	v[n++] = (struct rec){ .r = { .type = GS_REC_END, .time = 8 } };
	return n;
}

static void test_round_trip_extremes(void **state)
{
	static struct rec v[512];
	size_t n = extreme_recs(v, 400);
	int res, tr;
	uint8_t hdr[16];
	FILE *f;
	(void)state;
	for (size_t every = 0; every < 4; every++) { /* one block, then a flush every 1, 2, 3 records */
		write_recs(path, v, n, every);
		assert_int_equal(read_recs(path, v, n, &res, &tr), n);
		assert_int_equal(res, 0);
		assert_false(tr);
	}
	f = fopen(path, "r");
	assert_int_equal(fread(hdr, 1, 16, f), 16);
	fclose(f);
	assert_int_equal(hdr[8], 3); /* format version */
	/* the writer refuses a payload v2 could not hold, and goes on */
	{
		struct gs_recwriter *w;
		static uint8_t too_big[GS_RECBLOCK_MAX_PAYLOAD + 1];
		assert_int_equal(gs_recwriter_open(path, 1000, &w), 0);
		assert_int_equal(gs_recwriter_add(w, &v[0].r, too_big, sizeof(too_big)), -EINVAL);
		assert_int_equal(gs_recwriter_add(w, &v[0].r, v[0].payload, v[0].plen), 0);
		assert_int_equal(gs_recwriter_close(w), 0);
		assert_int_equal(read_recs(path, v, 1, &res, &tr), 1);
	}
}

/* More threads than a block's table: the writer starts new blocks, the reader follows. */
static void test_many_threads(void **state)
{
	enum {
		N = 3 * GS_RECBLOCK_THREADS + 100
	};
	static struct rec v[2 * N];
	struct gs_recreader *rd;
	char why[256];
	int res, tr;
	(void)state;
	for (size_t i = 0; i < 2 * N; i++) /* each thread twice, the second time in reverse order */
		v[i] = (struct rec){ .r = { .type = GS_REC_GIL_WRITE,
					    .pid = 1 + (uint32_t)(i % 7),
					    .tid = (uint32_t)(i < N ? i : 2 * N - 1 - i) + 100,
					    .arg = (int32_t)(i & 1),
					    .time = 1000 + i * 10,
					    .arg64 = 0x7f0000001000ull } };
	write_recs(path, v, 2 * N, 0);
	assert_int_equal(read_recs(path, v, 2 * N, &res, &tr), 2 * N);
	assert_int_equal(res, 0);
	/* seeking: to the block holding a time in the middle, then to past the end */
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), 0);
	assert_int_equal(gs_recreader_seek(rd, 1000 + (uint64_t)N * 10), 0);
	{
		struct gs_rec r;
		const void *p;
		size_t plen, first;
		assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
		first = (size_t)(r.time - 1000) / 10;
		assert_true(first <= N && first > 0); /* a later block than the first */
		check_rec(&v[first], &r, p, plen);
		assert_int_equal(gs_recreader_seek(rd, UINT64_MAX), 0);
		assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 0);
		assert_int_equal(gs_recreader_seek(rd, 0), 0);
		assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), 1);
		check_rec(&v[0], &r, p, plen);
	}
	gs_recreader_close(rd);
}

/* A small recording of three blocks (flushes in the middle), cut at every byte: the reader gives
 * the records of the complete blocks, says truncated when the cut is inside a block, never -EIO. */
static void test_cut_everywhere(void **state)
{
	struct rec v[9];
	size_t n = 0, ends[4], nends = 0;
	uint8_t *file;
	long size;
	FILE *f;
	(void)state;
	for (uint32_t i = 0; i < 9; i++)
		v[n++] = (struct rec){ .r = { .type = (uint16_t)(i % 3 ? GS_REC_GIL_WRITE : GS_REC_COMM),
					      .pid = 5,
					      .tid = 5 + i % 2,
					      .arg = (int32_t)(i % 2),
					      .time = 5000 + i * 300,
					      .arg64 = 0x55aa00 + (i / 4) },
				       .payload = i % 3 ? NULL : "name",
				       .plen = i % 3 ? 0 : 5 };
	write_recs(path, v, n, 3);
	f = fopen(path, "r");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	file = malloc((size_t)size);
	assert_int_equal(fread(file, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	/* the block ends, from the chained headers */
	for (size_t off = 64; off < (size_t)size; nends++) {
		uint32_t len;
		memcpy(&len, file + off + 4, 4);
		off += GS_RECBLOCK_HEADER + len;
		ends[nends] = off;
	}
	assert_int_equal(nends, 3);
	assert_int_equal(ends[2], (size_t)size);
	for (long cut = 64; cut <= size; cut++) {
		size_t complete = 0;
		int res, tr;
		f = fopen(path2, "w");
		assert_int_equal(fwrite(file, 1, (size_t)cut, f), (size_t)cut);
		fclose(f);
		for (size_t b = 0; b < nends; b++)
			if (ends[b] <= (size_t)cut)
				complete = 3 * (b + 1);
		assert_int_equal(read_recs(path2, v, n, &res, &tr), complete);
		assert_int_equal(res, 0);
		assert_int_equal(tr, cut != 64 && cut != (long)ends[0] && cut != (long)ends[1] && cut != size);
	}
	free(file);
}

/* Every byte after the file header flipped: a prefix of the records, then -EIO (the checksum or
 * a header check) or a cut (a length made longer than the file); never a wrong record. */
static void test_corrupt_every_byte(void **state)
{
	struct rec v[6];
	uint8_t *file;
	long size;
	FILE *f;
	(void)state;
	for (uint32_t i = 0; i < 6; i++)
		v[i] = (struct rec){ .r = { .type = GS_REC_GIL_WAIT, .tid = i % 2, .time = 100 + i, .arg64 = 9 } };
	write_recs(path, v, 6, 2);
	f = fopen(path, "r");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	file = malloc((size_t)size);
	assert_int_equal(fread(file, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	for (long at = 64; at < size; at++) {
		int res, tr;
		size_t got;
		file[at] ^= 0x5a;
		f = fopen(path2, "w");
		assert_int_equal(fwrite(file, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		file[at] ^= 0x5a;
		got = read_recs(path2, v, 6, &res, &tr);
		assert_true(got < 6);
		assert_true(res == -EIO || tr);
	}
	free(file);
}

/* Decodes a hand-made body: -EIO and a why naming the fault. */
static void expect_bad(const uint8_t *body, size_t len, uint32_t count, uint64_t last, const char *what)
{
	static struct gs_recblock_dec d;
	struct gs_recblock_hdr h = { .len = (uint32_t)len, .count = count, .first = 7, .last = last };
	struct gs_rec r;
	const uint8_t *p;
	size_t plen;
	char why[200] = "";
	int res;
	gs_recblock_dec_begin(&d, &h, body);
	while ((res = gs_recblock_next(&d, &r, &p, &plen, why, sizeof(why))) == 1)
		;
	assert_int_equal(res, -EIO);
	if (!strstr(why, what))
		fail_msg("expected \"%s\", got \"%s\"", what, why);
}

static void test_hostile_blocks(void **state)
{
	static const uint8_t ok[] = { 0x82, 0x01, 0x00, 0x07, 0x08, 0x00 }; /* GIL_WAIT, new thread 7/8, +0 */
	static const uint8_t two[] = { 0x82, 0x01, 0x00, 0x07, 0x08, 0x00, 0x02, 0x00 };
	static const uint8_t off_end[] = { 0x82, 0x01, 0x00, 0xff };
	static const uint8_t bad_index[] = { 0x82, 0x01, 0x05, 0x00 };
	static const uint8_t no_thread[] = { 0x02, 0x00 };
	static const uint8_t bad_flags[] = { 0x82, 0x10, 0x00 }, zero_flags[] = { 0x82, 0x00, 0x00 };
	static const uint8_t code0[] = { 0x00, 0x00 };
	static const uint8_t type17[] = { 0x9f, 0x01, 0xff, 0xff, 0x04, 0x00, 0x07, 0x08, 0x00 };
	static const uint8_t arg33[] = { 0xe2, 0x01, 0x00, 0x07, 0x08, 0x00, 0x80, 0x80, 0x80, 0x80, 0x20 };
	static const uint8_t pay_past[] = { 0x82, 0x05, 0x00, 0x07, 0x08, 0x00, 0x10, 'a' };
	static const uint8_t pay_zero[] = { 0x82, 0x05, 0x00, 0x07, 0x08, 0x00, 0x00 };
	static const uint8_t time65[] = { 0x82, 0x01, 0x00, 0x07, 0x08, 0x80, 0x80, 0x80,
					  0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static uint8_t table[GS_RECBLOCK_THREADS * 8 + 64];
	struct gs_recblock_hdr h;
	uint8_t raw[GS_RECBLOCK_HEADER] = { 0 };
	size_t n = 0;
	char why[200];
	(void)state;
	expect_bad(off_end, sizeof(off_end), 1, 7, "runs off");
	expect_bad(bad_index, sizeof(bad_index), 1, 7, "past the block's table");
	expect_bad(no_thread, sizeof(no_thread), 1, 7, "no thread");
	expect_bad(ok, sizeof(ok), 2, 7, "ends before its record count");
	expect_bad(two, sizeof(two), 1, 7, "bytes after its last record");
	expect_bad(ok, sizeof(ok), 1, 99, "not at the time its header says");
	expect_bad(bad_flags, sizeof(bad_flags), 1, 7, "unknown flags");
	expect_bad(zero_flags, sizeof(zero_flags), 1, 7, "unknown flags");
	expect_bad(code0, sizeof(code0), 1, 7, "type code is 0");
	expect_bad(type17, sizeof(type17), 1, 7, "over 16 bits");
	expect_bad(arg33, sizeof(arg33), 1, 7, "over 32 bits");
	expect_bad(pay_past, sizeof(pay_past), 1, 7, "payload length");
	expect_bad(pay_zero, sizeof(pay_zero), 1, 7, "payload length");
	expect_bad(time65, sizeof(time65), 1, 7, "time runs off");
	for (uint32_t i = 0; i <= GS_RECBLOCK_THREADS; i++) { /* one thread too many */
		table[n++] = 0x82;
		table[n++] = 0x01;
		for (uint32_t v = i; v >= 0x80; v >>= 7)
			table[n++] = (uint8_t)(v | 0x80);
		table[n++] = (uint8_t)(i >> (i >= 0x80 ? 7 : 0));
		table[n++] = 0x01;
		table[n++] = 0x02;
		table[n++] = 0x00;
	}
	expect_bad(table, n, GS_RECBLOCK_THREADS + 1, 7, "more threads than its table");
	/* headers */
	assert_int_equal(gs_recblock_header(raw, &h, why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "magic"));
	memcpy(raw, "GSB3", 4);
	memcpy(raw + 4, &(uint32_t){ GS_RECBLOCK_MAX_BODY + 1 }, 4);
	assert_int_equal(gs_recblock_header(raw, &h, why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "length"));
	memcpy(raw + 4, &(uint32_t){ 10 }, 4);
	memcpy(raw + 8, &(uint32_t){ 6 }, 4);
	assert_int_equal(gs_recblock_header(raw, &h, why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "count"));
	memcpy(raw + 8, &(uint32_t){ 5 }, 4);
	assert_int_equal(gs_recblock_header(raw, &h, why, sizeof(why)), 0);
}

/* In a file: a changed body byte fails the checksum, with the block's offset in the why, and
 * every later call says -EIO too. */
static void test_hostile_file(void **state)
{
	struct rec v[2] = { { .r = { .type = GS_REC_GIL_WAIT, .tid = 1, .time = 10 } },
			    { .r = { .type = GS_REC_GIL_WRITE, .tid = 1, .time = 20, .arg = 1 } } };
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *p;
	size_t plen;
	char why[256];
	FILE *f;
	(void)state;
	write_recs(path, v, 2, 0);
	f = fopen(path, "r+");
	fseek(f, 64 + GS_RECBLOCK_HEADER + 3, SEEK_SET);
	fputc(0x7f, f);
	fclose(f);
	assert_int_equal(gs_recreader_open(path, &rd, why, sizeof(why)), 0);
	assert_string_equal(gs_recreader_error(rd), "");
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), -EIO);
	assert_non_null(strstr(gs_recreader_error(rd), "the block at offset 64 is corrupt: block checksum"));
	assert_int_equal(gs_recreader_next(rd, &r, &p, &plen), -EIO);
	gs_recreader_close(rd);
}

/* The golden v2 recordings rewritten as v3 read back record for record the same. */
static void test_golden_as_v3(void **state)
{
	static const char *const golden[] = { "tests/fixtures/golden/contention-3.11.7.rec",
					      "tests/fixtures/golden/native-deb3.11.rec",
					      "tests/fixtures/golden/pingpong-3.14.rec" };
	(void)state;
	for (size_t g = 0; g < 3; g++) {
		struct gs_recreader *a, *b;
		struct gs_recwriter *w;
		struct gs_rec r, r2;
		const void *p, *p2;
		size_t plen, plen2, n = 0;
		char why[256];
		int res;
		if (access(golden[g], R_OK) != 0)
			skip(); /* not run from the top of the tree */
		assert_int_equal(gs_recreader_open(golden[g], &a, why, sizeof(why)), 0);
		assert_int_equal(gs_recwriter_open(path, gs_recreader_start(a), &w), 0);
		while ((res = gs_recreader_next(a, &r, &p, &plen)) == 1)
			assert_int_equal(gs_recwriter_add(w, &r, p, plen), 0);
		assert_int_equal(res, 0);
		assert_int_equal(gs_recwriter_close(w), 0);
		gs_recreader_close(a);
		assert_int_equal(gs_recreader_open(golden[g], &a, why, sizeof(why)), 0);
		assert_int_equal(gs_recreader_open(path, &b, why, sizeof(why)), 0);
		assert_int_equal(gs_recreader_seek(a, 0), -ENOTSUP);
		while ((res = gs_recreader_next(a, &r, &p, &plen)) == 1) {
			assert_int_equal(gs_recreader_next(b, &r2, &p2, &plen2), 1);
			assert_memory_equal(&r, &r2, sizeof(r));
			assert_int_equal(plen, plen2);
			assert_memory_equal(p, p2, plen);
			n++;
		}
		assert_int_equal(gs_recreader_next(b, &r2, &p2, &plen2), 0);
		assert_true(n > 1000);
		gs_recreader_close(a);
		gs_recreader_close(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_extremes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cut_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_every_byte, setup, teardown),
		cmocka_unit_test(test_hostile_blocks),
		cmocka_unit_test_setup_teardown(test_hostile_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_golden_as_v3, setup, teardown),
	};
	return cmocka_run_group_tests_name("recfile", tests, NULL, NULL);
}
