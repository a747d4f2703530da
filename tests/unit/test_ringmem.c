/* test_ringmem.c - ring memory allocated ahead of the writers: how far, in page bounds, the whole
 * ring once a lap is done, and nothing more (nor a retry) where the kernel refuses. Residency is
 * read with mincore() on a memfd's shared mapping, as gilscope's rings are made. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe/ringmem.h"

#define MIB (1ull << 20)
#define RING (16 * MIB) /* slots' bytes: an eighth is 2 MiB, under the 4 MiB cap */
#define HDR 256         /* the slots start past a header, not on a page */

static uint8_t *map_ring(int *fd)
{
	uint8_t *m;
	*fd = memfd_create("test-ringmem", MFD_CLOEXEC);
	assert_true(*fd >= 0);
	assert_int_equal(ftruncate(*fd, (off_t)(RING + 2 * HDR)), 0);
	m = mmap(NULL, RING + 2 * HDR, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	assert_true(m != MAP_FAILED);
	return m;
}

/* Pages of [off, off + len) of the mapping resident (in the memfd's page cache). */
static size_t resident(uint8_t *m, uint64_t off, uint64_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0, pages = (len + page - 1) / page;
	unsigned char vec[8192];
	assert_true(pages <= sizeof(vec) && off % page == 0);
	assert_int_equal(mincore(m + off, len, vec), 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void ahead_of_the_head_then_the_whole_lap(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t ready = 0, nslots = RING / 32;
	int fd;
	uint8_t *m = map_ring(&fd);
	(void)state;
	assert_int_equal(resident(m, 0, RING), 0);
	gs_ringmem_ahead(m + HDR, RING, &ready, 0, 32); /* nothing written yet: an eighth ahead */
	assert_int_equal(ready, 2 * MIB);
	assert_int_equal(resident(m, 0, 2 * MIB), 2 * MIB / page);
	assert_int_equal(resident(m, 4 * MIB, 4 * MIB), 0);
	/* the head moved a little: at least a MiB more at a time, not a page */
	gs_ringmem_ahead(m + HDR, RING, &ready, (64 * 1024) / 32, 32);
	assert_int_equal(ready, 3 * MIB);
	assert_int_equal(resident(m, 0, 3 * MIB), 3 * MIB / page);
	assert_int_equal(resident(m, 4 * MIB, 4 * MIB), 0);
	/* the head moved far: the head plus an eighth */
	gs_ringmem_ahead(m + HDR, RING, &ready, (8 * MIB) / 32, 32);
	assert_int_equal(ready, 10 * MIB);
	assert_int_equal(resident(m, 8 * MIB, 2 * MIB), 2 * MIB / page);
	assert_int_equal(resident(m, 12 * MIB, 4 * MIB), 0);
	/* a lap done (the head past the ring's slots): all of it, the last page's tail too */
	gs_ringmem_ahead(m + HDR, RING, &ready, nslots + 5, 32);
	assert_int_equal(ready, RING);
	assert_int_equal(resident(m, 0, RING), RING / page);
	assert_int_equal(resident(m, RING, page), 1);
	munmap(m, RING + 2 * HDR);
	close(fd);
}

static void a_mapping_the_kernel_refuses_is_left_to_the_writers(void **state)
{
	uint64_t ready = 0;
	int fd;
	uint8_t *m = map_ring(&fd);
	(void)state;
	assert_int_equal(mprotect(m, RING + 2 * HDR, PROT_READ), 0); /* MADV_POPULATE_WRITE fails here */
	gs_ringmem_ahead(m + HDR, RING, &ready, 0, 32);
	assert_int_equal(ready, RING); /* given up: never tried again */
	assert_int_equal(resident(m, 0, RING), 0);
	munmap(m, RING + 2 * HDR);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(ahead_of_the_head_then_the_whole_lap),
					    cmocka_unit_test(a_mapping_the_kernel_refuses_is_left_to_the_writers) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
