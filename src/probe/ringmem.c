/* ringmem.c - ring memory allocated ahead of its writers (see ringmem.h). */
#define _GNU_SOURCE
#include "probe/ringmem.h"

#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define AHEAD (4ull << 20) /* bytes allocated past the head, at most an eighth of the ring */
#define STEP (1ull << 20)  /* allocated at least this much at a time */

void gs_ringmem_ahead(uint8_t *slots, uint64_t bytes, uint64_t *ready, uint64_t head, unsigned slot_size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), ahead = bytes / 8 < AHEAD ? bytes / 8 : AHEAD, want, from, to;

	if (*ready >= bytes)
		return;
	want = head >= bytes / slot_size ? bytes : head * slot_size + ahead;
	if (want <= *ready)
		return;
	if (want < bytes && want - *ready < STEP)
		want = *ready + STEP; /* fewer, larger calls */
	if (want > bytes)
		want = bytes;
	/* page bounds: the first page may hold the ring's header, the last the next ring's */
	from = ((uint64_t)(uintptr_t)slots + *ready) & ~(page - 1);
	to = ((uint64_t)(uintptr_t)slots + want + page - 1) & ~(page - 1);
	if (madvise((void *)(uintptr_t)from, to - from, MADV_POPULATE_WRITE) < 0) {
		*ready = bytes; /* not supported (or a mapping that is not ours): the writers allocate */
		return;
	}
	*ready = want;
}
