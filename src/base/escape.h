/* escape.h - every escaping of a string from the traced program (thread names, function and
 * file names, the command line, the interpreter's path) into an output: HTML, SVG, JSON, JSON
 * inside an HTML <script> element, and the terminal. SECURITY.md treats the recorded program as
 * hostile, so its strings are data, never markup or control sequences, whatever bytes they hold:
 * - Terminal: printable text as is; C0 controls and DEL as visible escapes (`\t`, `\n`, `\r`,
 *   else `\x1b`), C1 controls (U+0080-U+009F) and the Unicode bidi overrides and isolates
 *   (U+202A-U+202E, U+2066-U+2069) as `\u0085`, `\u202e`; bytes that are not well-formed UTF-8
 *   (overlong, surrogate, beyond U+10FFFF, truncated) as `\xNN`. A backslash stays a backslash.
 * - HTML text and double-quoted attributes (gilscope writes no other kind), and SVG (XML text
 *   and attributes): & < > " as entities, and ' too in SVG (&apos;); tab, newline and carriage
 *   return as they are (whole documents go through the HTML form, for an iframe's srcdoc); every
 *   other character the terminal escapes, escaped as there (XML cannot hold C0 controls at all,
 *   and bidi overrides could reorder the page's own text).
 * - JSON: a string literal with its quotes; " \ and C0 controls and DEL escaped, ill-formed UTF-8
 *   as \ufffd, so the document is valid UTF-8 JSON. The <script> form also writes < > & and
 *   U+2028/U+2029 as \u escapes, so no "</script>" or "<!--" can end or change the element.
 * Pure: no state; the FILE forms write to out, the _buf forms into buf (see there). */
#ifndef GS_ESCAPE_H
#define GS_ESCAPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The well-formed UTF-8 sequence at s (at most n bytes): its length (1-4) and code point in
 * *cp, or 0 when s does not start one (n == 0 included). */
size_t gs_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* The length in bytes of the longest prefix of s of at most max bytes that does not cut a
 * well-formed UTF-8 sequence in two (for "%.*s" of a name into a fixed field). */
size_t gs_utf8_prefix(const char *s, size_t max);

void gs_esc_term(FILE *out, const char *s);
void gs_esc_html(FILE *out, const char *s);
void gs_esc_svg(FILE *out, const char *s);
void gs_esc_json(FILE *out, const char *s);
void gs_esc_json_script(FILE *out, const char *s);

/* The terminal form of s into buf (size > 0): as much as fits whole (an escape or a character
 * is never cut), NUL-terminated. Returns the length written; it is < strlen of the full form
 * when buf was too small. */
size_t gs_esc_term_buf(char *buf, size_t size, const char *s);

/* The terminal form of s as a table cell into buf (size > 0): past max columns (code points;
 * max >= 2) cut in the middle with an ellipsis, keeping the last third (the end of
 * "ThreadPoolExecutor-0_12" tells pool threads apart); then padded with spaces to width
 * columns. *ncols (when not NULL) gets the columns before padding. Returns strlen(buf). */
size_t gs_esc_term_cell(char *buf, size_t size, const char *s, size_t width, size_t max, size_t *ncols);

#endif
