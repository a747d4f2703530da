/* escape.c - escaping for the terminal, HTML, SVG and JSON (the contract is in escape.h). */
#include "base/escape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode {
	TERM,
	HTML,
	SVG,
	JSON,
	JSON_SCRIPT
};

/* Where escaped text goes: a FILE, or a buffer that takes only whole pieces and stops at the
 * first that does not fit. */
struct sink {
	FILE *f;
	char *buf;
	size_t size, len;
	int full;
};

static void put(struct sink *k, const char *s, size_t n)
{
	if (k->f) {
		fwrite(s, 1, n, k->f);
	} else if (!k->full && k->len + n < k->size) {
		memcpy(k->buf + k->len, s, n);
		k->len += n;
	} else {
		k->full = 1;
	}
}

size_t gs_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;
	if (!n)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* C0, DEL, C1, and the bidi overrides and isolates: shown as escapes on terminals and pages. */
static int unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* The visible escape of an unsafe code point (`\t`, `\x1b`, `\u202e`). */
static void visible(struct sink *k, uint32_t cp)
{
	char t[16];
	if (cp == '\t' || cp == '\n' || cp == '\r') {
		t[0] = '\\';
		t[1] = cp == '\t' ? 't' : cp == '\n' ? 'n' : 'r';
		put(k, t, 2);
		return;
	}
	put(k, t, (size_t)snprintf(t, sizeof(t), cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp));
}

/* HTML: & < > " (gilscope writes its attributes double-quoted); SVG: also ' (&apos;, valid XML). */
static int markup_entity(struct sink *k, uint32_t cp, enum mode m)
{
	switch (cp) {
	case '&':
		put(k, "&amp;", 5);
		return 1;
	case '<':
		put(k, "&lt;", 4);
		return 1;
	case '>':
		put(k, "&gt;", 4);
		return 1;
	case '"':
		put(k, "&quot;", 6);
		return 1;
	case '\'':
		if (m != SVG)
			return 0;
		put(k, "&apos;", 6);
		return 1;
	default:
		return 0;
	}
}

/* One code point as JSON (escaped if needed; 0: as it is). */
static int json_escape(struct sink *k, uint32_t cp, enum mode m)
{
	char t[8];
	switch (cp) {
	case '"':
		put(k, "\\\"", 2);
		return 1;
	case '\\':
		put(k, "\\\\", 2);
		return 1;
	case '\n':
		put(k, "\\n", 2);
		return 1;
	case '\r':
		put(k, "\\r", 2);
		return 1;
	case '\t':
		put(k, "\\t", 2);
		return 1;
	default:
		break;
	}
	if (cp < 0x20 || cp == 0x7f ||
	    (m == JSON_SCRIPT && (cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029))) {
		put(k, t, (size_t)snprintf(t, sizeof(t), "\\u%04x", (unsigned)cp));
		return 1;
	}
	return 0;
}

/* One well-formed character (len bytes at p, code point cp) in mode m. */
static void escape_char(struct sink *k, const unsigned char *p, size_t len, uint32_t cp, enum mode m)
{
	if (m == JSON || m == JSON_SCRIPT) {
		if (!json_escape(k, cp, m))
			put(k, (const char *)p, len);
		return;
	}
	if (m != TERM && markup_entity(k, cp, m))
		return;
	if (unsafe(cp) && (m == TERM || !(cp == '\t' || cp == '\n' || cp == '\r')))
		visible(k, cp);
	else
		put(k, (const char *)p, len);
}

static void escape(struct sink *k, const char *s, enum mode m)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	int json = m == JSON || m == JSON_SCRIPT;
	if (json)
		put(k, "\"", 1);
	while (n && !k->full) {
		uint32_t cp;
		size_t len = gs_utf8_next(p, n, &cp);
		if (len) {
			escape_char(k, p, len, cp, m);
		} else { /* a byte that starts no well-formed character */
			char t[8];
			if (json)
				put(k, "\\ufffd", 6);
			else
				put(k, t, (size_t)snprintf(t, sizeof(t), "\\x%02x", *p));
			len = 1;
		}
		p += len;
		n -= len;
	}
	if (json)
		put(k, "\"", 1);
}

static void escape_file(FILE *out, const char *s, enum mode m)
{
	struct sink k = { .f = out };
	escape(&k, s, m);
}

void gs_esc_term(FILE *out, const char *s) { escape_file(out, s, TERM); }
void gs_esc_html(FILE *out, const char *s) { escape_file(out, s, HTML); }
void gs_esc_svg(FILE *out, const char *s) { escape_file(out, s, SVG); }
void gs_esc_json(FILE *out, const char *s) { escape_file(out, s, JSON); }
void gs_esc_json_script(FILE *out, const char *s) { escape_file(out, s, JSON_SCRIPT); }

size_t gs_esc_term_buf(char *buf, size_t size, const char *s)
{
	struct sink k = { .buf = buf, .size = size };
	escape(&k, s, TERM);
	buf[k.len] = '\0';
	return k.len;
}

/* Byte offset of code point `col` of s (a stray byte counts as one), or strlen(s); *ncols (when
 * not NULL) gets the code points counted on the way. */
static size_t column_at(const char *s, size_t col, size_t *ncols)
{
	size_t i = 0, k, n = 0, len = strlen(s);
	uint32_t cp;
	for (; n < col && i < len; n++, i += k ? k : 1)
		k = gs_utf8_next((const unsigned char *)s + i, len - i, &cp);
	if (ncols)
		*ncols = n;
	return i;
}

size_t gs_esc_term_cell(char *buf, size_t size, const char *s, size_t width, size_t max, size_t *ncols)
{
	char *t = malloc(4 * (strlen(s) + 1) + 16);
	size_t n, l;

	if (!t) {
		snprintf(buf, size, "?");
		n = 1;
	} else {
		gs_esc_term_buf(t, 4 * (strlen(s) + 1) + 16, s);
		column_at(t, SIZE_MAX, &n);
		if (max >= 2 && n > max) { /* head, the ellipsis, the last third */
			size_t tail = max / 3, head = column_at(t, max - 1 - tail, NULL);
			snprintf(buf, size, "%.*s\u2026%s", (int)head, t, t + column_at(t, n - tail, NULL));
			n = max;
		} else
			snprintf(buf, size, "%s", t);
		free(t);
	}
	if (ncols)
		*ncols = n;
	for (l = strlen(buf); n < width && l + 1 < size; n++, l++)
		buf[l] = ' ', buf[l + 1] = '\0';
	return strlen(buf);
}

size_t gs_utf8_prefix(const char *s, size_t max)
{
	size_t i = 0, k, len = strnlen(s, max + 4);
	uint32_t cp;
	while (i < len && i < max) {
		k = gs_utf8_next((const unsigned char *)s + i, len - i, &cp);
		if (!k)
			k = 1; /* a stray byte: one byte, as it is */
		if (i + k > max)
			break;
		i += k;
	}
	return i;
}
