/* Unit tests: SHA-256 against FIPS 180-4's examples and sha256sum, at the padding's edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/sha256.h"

static void hex(const char *s, size_t len, char out[65])
{
	uint8_t d[32];
	gs_sha256(s, len, d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_known_digests(void **state)
{
	char h[65], b[45], big[1000];
	(void)state;
	hex("", 0, h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h); /* two padding blocks */
	assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(big, 'a', sizeof(big));
	hex(big, 1000, h); /* python3 -c "import hashlib;print(hashlib.sha256(b'a'*1000).hexdigest())" */
	assert_string_equal(h, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
	hex(big, 64, h);
	assert_string_equal(h, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
	gs_sha256_base64("alert('Hello, world.');", 23, b); /* the example of CSP Level 2 */
	assert_string_equal(b, "qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng=");
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_known_digests) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
