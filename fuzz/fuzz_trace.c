/* fuzz_trace.c - the Trace Event JSON reader behind `export --format trace-json --combine FILE`
 * (trace.c): the input is the combined file (viztracer's JSON), merged into the export of a
 * small fixed recording. The same bytes, as a name from the traced program, go through every
 * escaper of escape.c, whose promises are checked (abort on a broken one). */
#include "fuzz.h"

#include <jansson.h>

#include "base/escape.h"
#include "base/recfile.h"
#include "output/trace.h"
#include "base/util.h"

static char recpath[64];

static void cleanup(void)
{
	if (recpath[0])
		unlink(recpath);
}

/* Two threads of one process: the second waits while the first holds the GIL. */
static int make_recording(void)
{
	struct gs_recwriter *w;
	const struct gs_rec recs[] = {
		{ .type = GS_REC_COMM, .pid = 100, .tid = 100, .time = 1000 },
		{ .type = GS_REC_SWITCH_IN, .pid = 100, .tid = 100, .time = 1100 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 100, .arg = 1, .time = 1200 },
		{ .type = GS_REC_FORK, .pid = 100, .tid = 101, .arg = 100, .arg64 = 100, .time = 1300 },
		{ .type = GS_REC_GIL_WAIT, .pid = 100, .tid = 101, .time = 1400 },
		{ .type = GS_REC_DROPREQ, .pid = 100, .tid = 101, .arg = 1, .time = 1500 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 100, .arg = 0, .time = 1600 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 101, .arg = 1, .time = 1700 },
		{ .type = GS_REC_SWITCH_OUT, .pid = 100, .tid = 100, .arg64 = 1, .time = 1800 },
		{ .type = GS_REC_END, .time = 2000 },
	};
	int fd;
	snprintf(recpath, sizeof(recpath), "/tmp/gilscope-fuzz-trace.XXXXXX");
	fd = mkstemp(recpath);
	if (fd < 0)
		return -1;
	close(fd);
	atexit(cleanup);
	if (gs_recwriter_open(recpath, 1000, &w) < 0)
		return -1;
	gs_recwriter_meta(w, 100, "python.version", "3.11.7");
	for (size_t i = 0; i < GS_ARRAY_SIZE(recs); i++)
		gs_recwriter_add(w, &recs[i], recs[i].type == GS_REC_COMM ? "python3" : NULL,
				 recs[i].type == GS_REC_COMM ? 8 : 0);
	return gs_recwriter_close(w);
}

/* Well-formed UTF-8 throughout; with no C0/DEL (but tab, newline, CR when layout), no C1 and
 * no bidi override or isolate when strict. */
static void check_utf8(const char *s, size_t n, int strict, int layout)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = gs_utf8_next((const unsigned char *)s + i, n - i, &cp);
		if (!len)
			abort();
		if (strict &&
		    (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
		     (cp >= 0x2066 && cp <= 0x2069)) &&
		    !(layout && (cp == '\t' || cp == '\n' || cp == '\r')))
			abort();
		i += len;
	}
}

/* noinline: once inlined, gcc 12 takes open_memstream's buffer for a dangling local */
__attribute__((noinline)) static char *escaped(void (*fn)(FILE *, const char *), const char *s, size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	if (!m)
		abort();
	fn(m, s);
	if (fclose(m) != 0)
		abort();
	return buf;
}

static void check_markup(const char *s)
{
	size_t n;
	char *o = escaped(gs_esc_html, s, &n);
	check_utf8(o, n, 1, 1);
	if (strpbrk(o, "<>\""))
		abort();
	for (char *p = strchr(o, '&'); p; p = strchr(p + 1, '&'))
		if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6))
			abort();
	free(o);
	o = escaped(gs_esc_svg, s, &n);
	check_utf8(o, n, 1, 1);
	if (strpbrk(o, "<>\"'"))
		abort();
	free(o);
}

static int well_formed(const char *s)
{
	uint32_t cp;
	for (size_t n = strlen(s), len; n; s += len, n -= len)
		if (!(len = gs_utf8_next((const unsigned char *)s, n, &cp)))
			return 0;
	return 1;
}

static void check_json(const char *s)
{
	size_t n;
	for (int script = 0; script < 2; script++) {
		char *o = escaped(script ? gs_esc_json_script : gs_esc_json, s, &n);
		json_t *j = json_loadb(o, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		check_utf8(o, n, 0, 0);
		if (!json_is_string(j) || (script && strpbrk(o, "<>&")))
			abort();
		if (well_formed(s) && strcmp(json_string_value(j), s))
			abort(); /* a well-formed name decodes to itself */
		json_decref(j);
		free(o);
	}
}

/* The terminal form: safe, and the bounded form a prefix of it that never cuts an escape. */
static void check_terminal(const char *s, size_t size)
{
	size_t n, cap = 4 * size + 1;
	char *full = escaped(gs_esc_term, s, &n), *buf = gs_malloc(cap);
	check_utf8(full, n, 1, 0);
	if (gs_esc_term_buf(buf, cap, s) != n || memcmp(buf, full, n + 1))
		abort();
	for (size_t small = 1; small < 24 && small < cap; small++) {
		size_t k = gs_esc_term_buf(buf, small, s);
		if (k >= small || memcmp(buf, full, k) || buf[k])
			abort();
		check_utf8(buf, k, 1, 0);
		if (k < n && k + 7 < small)
			abort(); /* stopped early: only before a piece that did not fit (at most 6 bytes) */
	}
	free(full);
	free(buf);
}

static void check_escapers(const uint8_t *data, size_t size)
{
	char *s = gs_malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0'; /* the name ends at its first NUL, as the recording's strings do */
	check_markup(s);
	check_json(s);
	check_terminal(s, strlen(s));
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *combine;
	char why[512];

	gs_verbose = 0;
	if (!recpath[0] && make_recording() < 0)
		abort();
	combine = fuzz_file(0, data, size);
	if (!combine)
		return 0;
	(void)gs_trace_json(recpath, combine, fuzz_null(), why, sizeof(why));
	check_escapers(data, size);
	return 0;
}
