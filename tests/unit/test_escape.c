/* Unit tests: escape.c, every output's escaping of the traced program's strings (terminal,
 * HTML, SVG, JSON, JSON inside <script>), on control characters, bidi overrides, markup,
 * ill-formed UTF-8 and the bounded buffer form. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/escape.h"

/* The output of one FILE escaper on s, in a static buffer. */
static const char *run(void (*fn)(FILE *, const char *), const char *s)
{
	static char out[4096];
	FILE *f;
	out[0] = '\0';
	f = fmemopen(out, sizeof(out), "w");
	assert_non_null(f);
	fn(f, s);
	assert_int_equal(fclose(f), 0);
	return out;
}

#define ESC "\x1b"
#define RLO "\xe2\x80\xae" /* U+202E RIGHT-TO-LEFT OVERRIDE */
#define FSI "\xe2\x81\xa8" /* U+2068 FIRST STRONG ISOLATE */
#define NEL "\xc2\x85"     /* U+0085, a C1 control */
#define LS "\xe2\x80\xa8"  /* U+2028 LINE SEPARATOR */
#define XSS "</script><img src=x onerror=alert(1)>"

static void test_utf8_next(void **state)
{
	uint32_t cp = 0;
	(void)state;
	assert_int_equal(gs_utf8_next((const unsigned char *)"a", 1, &cp), 1);
	assert_int_equal(cp, 'a');
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
	assert_int_equal(cp, 0xe9);
	assert_int_equal(gs_utf8_next((const unsigned char *)RLO, 3, &cp), 3);
	assert_int_equal(cp, 0x202e);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xf0\x9f\x90\x8d", 4, &cp), 4);
	assert_int_equal(cp, 0x1f40d);
	/* overlong, surrogate, beyond U+10FFFF, truncated, lone continuation, bad lead */
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xc0\xaf", 2, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xe0\x80\xaf", 3, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xe2\x80", 2, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)RLO, 2, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\x80", 1, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"\xff", 1, &cp), 0);
	assert_int_equal(gs_utf8_next((const unsigned char *)"a", 0, &cp), 0);
}

static void test_terminal(void **state)
{
	(void)state;
	assert_string_equal(run(gs_esc_term, "worker-1 caf\xc3\xa9 \xf0\x9f\x90\x8d <a>&\"'\\"),
			    "worker-1 caf\xc3\xa9 \xf0\x9f\x90\x8d <a>&\"'\\");
	assert_string_equal(run(gs_esc_term, ESC "[31mred" ESC "[0m"), "\\x1b[31mred\\x1b[0m");
	assert_string_equal(run(gs_esc_term, "a\tb\nc\rd\x7f\x01"), "a\\tb\\nc\\rd\\x7f\\x01");
	assert_string_equal(run(gs_esc_term, "x" NEL "y"
					     "\xc2\x9b"
					     "z"),
			    "x\\u0085y\\u009bz");
	assert_string_equal(run(gs_esc_term, "evil" RLO "txt.exe" FSI "\xe2\x80\xaa\xe2\x81\xa9"),
			    "evil\\u202etxt.exe\\u2068\\u202a\\u2069");
	/* marks and separators that are not overrides or isolates pass */
	assert_string_equal(run(gs_esc_term, "\xe2\x80\x8f" LS), "\xe2\x80\x8f" LS);
	/* ill-formed UTF-8, byte by byte; a raw C1 byte is ill-formed too */
	assert_string_equal(run(gs_esc_term, "a\xff\xc3(\x9b\xed\xa0\x80"), "a\\xff\\xc3(\\x9b\\xed\\xa0\\x80");
	assert_string_equal(run(gs_esc_term, ""), "");
}

static void test_terminal_buffer_keeps_escapes_whole(void **state)
{
	char buf[8];
	(void)state;
	assert_int_equal(gs_esc_term_buf(buf, sizeof(buf), "abc"), 3);
	assert_string_equal(buf, "abc");
	/* "ab\x1b" + "x" is 7 bytes: fits; one more character does not */
	assert_int_equal(gs_esc_term_buf(buf, sizeof(buf), "ab" ESC "xy"), 7);
	assert_string_equal(buf, "ab\\x1bx");
	/* the escape does not fit whole: nothing of it, and nothing after it */
	assert_int_equal(gs_esc_term_buf(buf, sizeof(buf), "abcd" ESC "z"), 4);
	assert_string_equal(buf, "abcd");
	/* a multi-byte character is never cut */
	assert_int_equal(gs_esc_term_buf(buf, 7, "abcd\xf0\x9f\x90\x8d"), 4);
	assert_string_equal(buf, "abcd");
	assert_int_equal(gs_esc_term_buf(buf, 1, "abc"), 0);
	assert_string_equal(buf, "");
}

static void test_html_and_svg(void **state)
{
	(void)state;
	assert_string_equal(run(gs_esc_html, XSS), "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
	assert_string_equal(run(gs_esc_html, "a&b \"q\" 'p'"), "a&amp;b &quot;q&quot; 'p'");
	/* layout characters stay (whole documents go through here), controls become visible */
	assert_string_equal(run(gs_esc_html, "l1\nl2\tx\r" ESC RLO "\xff"), "l1\nl2\tx\r\\x1b\\u202e\\xff");
	assert_string_equal(run(gs_esc_svg, XSS "\x01" NEL),
			    "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;\\x01\\u0085");
	assert_string_equal(run(gs_esc_svg, "f (a.py:3) caf\xc3\xa9 & 'x'"),
			    "f (a.py:3) caf\xc3\xa9 &amp; &apos;x&apos;");
}

static void test_json(void **state)
{
	(void)state;
	assert_string_equal(run(gs_esc_json, "plain"), "\"plain\"");
	assert_string_equal(run(gs_esc_json, "q\"b\\n\nr\rt\t" ESC "\x7f"), "\"q\\\"b\\\\n\\nr\\rt\\t\\u001b\\u007f\"");
	/* well-formed UTF-8 (bidi included) is valid JSON as it is; ill-formed bytes become U+FFFD */
	assert_string_equal(run(gs_esc_json, "caf\xc3\xa9" RLO LS), "\"caf\xc3\xa9" RLO LS "\"");
	assert_string_equal(run(gs_esc_json, "a\xff\xed\xa0\x80z"), "\"a\\ufffd\\ufffd\\ufffd\\ufffdz\"");
	assert_string_equal(run(gs_esc_json, XSS), "\"" XSS "\"");
}

static void test_json_in_script(void **state)
{
	const char *o;
	(void)state;
	o = run(gs_esc_json_script, XSS);
	assert_string_equal(o, "\"\\u003c/script\\u003e\\u003cimg src=x onerror=alert(1)\\u003e\"");
	assert_string_equal(run(gs_esc_json_script, "<!-- a&b -->" LS "\xe2\x80\xa9"),
			    "\"\\u003c!-- a\\u0026b --\\u003e\\u2028\\u2029\"");
	assert_string_equal(run(gs_esc_json_script, "<module>"), "\"\\u003cmodule\\u003e\"");
	assert_null(strchr(o, '<'));
}

/* Table cells: cut in the middle past max code points (not bytes), escapes counted as shown,
 * padded to width; a small buffer is never overrun. */
static void test_terminal_cell(void **state)
{
	char b[64];
	size_t n;
	(void)state;
	assert_int_equal(gs_esc_term_cell(b, sizeof(b), "main", 6, 24, &n), 6);
	assert_string_equal(b, "main  ");
	assert_int_equal(n, 4);
	gs_esc_term_cell(b, sizeof(b), "a-really-long-thread-name-for-the-io-loop", 0, 24, &n);
	assert_string_equal(b, "a-really-long-t\xe2\x80\xa6-io-loop");
	assert_int_equal(n, 24);
	gs_esc_term_cell(b, sizeof(b),
			 "w\xc3\xb6rker-\xce\xb2"
			 "eta-long-name-xyz",
			 26, 24, &n);
	assert_string_equal(b, "w\xc3\xb6rker-\xce\xb2"
			       "eta-lon\xe2\x80\xa6name-xyz  ");
	gs_esc_term_cell(b, sizeof(b), "tab\there", 0, 24, &n); /* the escape is 2 columns */
	assert_string_equal(b, "tab\\there");
	assert_int_equal(n, 9);
	gs_esc_term_cell(b, 8, "a-really-long-thread-name", 30, 24, &n);
	assert_int_equal(strlen(b), 7);
}

/* A prefix never ends inside a character: "aé" cut at 2 bytes is "a". */
static void test_utf8_prefix(void **state)
{
	(void)state;
	assert_int_equal(gs_utf8_prefix("a\xc3\xa9", 2), 1);
	assert_int_equal(gs_utf8_prefix("a\xc3\xa9", 3), 3);
	assert_int_equal(gs_utf8_prefix("abc", 40), 3);
	assert_int_equal(gs_utf8_prefix("\xe2\x80\xa6x", 2), 0);
	assert_int_equal(gs_utf8_prefix("\xff\xfe", 1), 1); /* stray bytes count one each */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_next),
		cmocka_unit_test(test_terminal),
		cmocka_unit_test(test_terminal_buffer_keeps_escapes_whole),
		cmocka_unit_test(test_html_and_svg),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_in_script),
		cmocka_unit_test(test_terminal_cell),
		cmocka_unit_test(test_utf8_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
