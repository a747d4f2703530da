/* sha256.h - SHA-256 (FIPS 180-4) of a byte string, for the HTML page's Content-Security-Policy
 * (a script is allowed by the base64 hash of its text). Pure: no state, no I/O. */
#ifndef GS_SHA256_H
#define GS_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* The 32-byte digest of data[0..len) into out. */
void gs_sha256(const void *data, size_t len, uint8_t out[32]);
/* The digest in base64 (44 characters and a NUL) into b64. */
void gs_sha256_base64(const void *data, size_t len, char b64[45]);

#endif
