/* fuzz.h - shared by the fuzz targets (fuzz/fuzz_*.c) and the replay driver (fuzz/replay.c).
 *
 * Each target defines LLVMFuzzerTestOneInput. Built with clang -fsanitize=fuzzer it is a
 * libFuzzer binary (`make fuzz`); built with the normal compiler and linked with replay.c it
 * replays saved inputs (fuzz/regressions/, fuzz/corpus/) in `make unit`.
 */
#ifndef GS_FUZZ_H
#define GS_FUZZ_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Readers that take a path get the input through a memfd, named /proc/self/fd/N (one per
 * slot, created once, rewritten for each input). Returns the path, or NULL. */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
	static int fds[4] = { -1, -1, -1, -1 };
	static char paths[4][64];
	if (slot < 0 || slot >= 4)
		return NULL;
	if (fds[slot] < 0) {
		fds[slot] = memfd_create("gilscope-fuzz", MFD_CLOEXEC);
		if (fds[slot] < 0)
			return NULL;
		snprintf(paths[slot], sizeof(paths[slot]), "/proc/self/fd/%d", fds[slot]);
	}
	if (ftruncate(fds[slot], 0) < 0)
		return NULL;
	for (size_t off = 0; off < size;) {
		ssize_t n = pwrite(fds[slot], data + off, size - off, (off_t)off);
		if (n <= 0)
			return NULL;
		off += (size_t)n;
	}
	return paths[slot];
}

/* Output sink for writers (their output is not checked, only that they do not crash). */
static inline FILE *fuzz_null(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "we");
	return f;
}

#endif
