/* test_procns.c - the target seen through its own view: maps lines' device, inode and
 * "(deleted)", NSpid lines, opening a mapped file checked against its inode, and the
 * namespace-to-host thread id map. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/procfs.h"
#include "record/tidmap.h"

static void test_maps_dev_inode(void **state)
{
	struct gs_map m;
	(void)state;
	assert_int_equal(gs_maps_parse_line("7f12a000-7f12b000 r-xp 00001000 fd:01 1234   /opt/my python/lib.so\n", &m),
			 0);
	assert_int_equal(m.dev_major, 0xfd);
	assert_int_equal(m.dev_minor, 1);
	assert_int_equal(m.inode, 1234);
	assert_string_equal(m.path, "/opt/my python/lib.so");
	/* a minor number above 255 is printed with more digits */
	assert_int_equal(
		gs_maps_parse_line("400000-401000 r--p 00000000 103:1a2 18446744073709551615 /x (deleted)", &m), 0);
	assert_int_equal(m.dev_major, 0x103);
	assert_int_equal(m.dev_minor, 0x1a2);
	assert_true(m.inode == UINT64_MAX);
	assert_true(m.deleted);
	assert_string_equal(m.path, "/x");
	/* a file whose name itself ends in " (deleted)" cannot be told apart: maps says it is */
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 00:00 0 [vdso]", &m), 0);
	assert_int_equal(m.inode, 0);
	assert_string_equal(m.path, "[vdso]");
	/* malformed device or inode */
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 fd01 5 /x", &m), -1);
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 fd:01 /x", &m), -1);
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 fd:01 12a /x", &m), -1);
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 fd:01 184467440737095516150 /x", &m), -1);
	assert_int_equal(gs_maps_parse_line("1000-2000 r--p 0 fd:01", &m), -1);
}

static void test_nspid(void **state)
{
	uint32_t ids[4];
	(void)state;
	assert_int_equal(gs_nspid_parse("Name:\tpython3\nTgid:\t5\nNSpid:\t21562\t1\nNSpgid:\t1\n", ids, 4), 2);
	assert_int_equal(ids[0], 21562);
	assert_int_equal(ids[1], 1);
	assert_int_equal(gs_nspid_parse("NSpid:\t77\n", ids, 4), 1);
	assert_int_equal(ids[0], 77);
	assert_int_equal(gs_nspid_parse("Pid:\t9\nNSpid:\t9 8 7 6 5 4\n", ids, 4), 4); /* deeper than asked */
	assert_int_equal(ids[3], 6);
	assert_int_equal(gs_nspid_parse("Pid:\t9\n", ids, 4), -1);       /* old kernels: no line */
	assert_int_equal(gs_nspid_parse("NSpid:\t\n", ids, 4), -1);      /* empty */
	assert_int_equal(gs_nspid_parse("NSpid:\t12x 1\n", ids, 4), -1); /* not a number */
	assert_int_equal(gs_nspid_parse("NSpid:\t0\n", ids, 4), -1);     /* no task has id 0 */
	assert_int_equal(gs_nspid_parse("NSpid:\t99999999999\n", ids, 4), -1);
	assert_int_equal(gs_nspid_parse("XNSpid:\t5\n", ids, 4), -1); /* a field that only ends so */
	/* ourselves: one level at least, the first being our pid */
	assert_true(gs_task_nspid(getpid(), ids, 4) >= 1);
	assert_int_equal(ids[0], (uint32_t)getpid());
}

/* gs_proc_open_mapped on this test's own mappings: map_files gives the file; a map entry
 * naming another inode is refused as replaced, or deleted. */
static void test_open_mapped(void **state)
{
	char tmpl[] = "/tmp/gs_procns_XXXXXX", path[PATH_MAX];
	struct gs_map m = { 0 };
	struct stat st;
	void *p;
	int fd = mkstemp(tmpl), got;
	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(fstat(fd, &st), 0);
	m.start = (uint64_t)(uintptr_t)p;
	m.end = m.start + 4096;
	m.dev_major = major(st.st_dev);
	m.dev_minor = minor(st.st_dev);
	m.inode = st.st_ino;
	snprintf(m.path, sizeof(m.path), "%s", tmpl);
	got = gs_proc_open_mapped(getpid(), &m, path, sizeof(path));
	assert_true(got >= 0);
	close(got);
	/* the file is deleted: root still reaches it through map_files; otherwise "deleted after start" */
	unlink(tmpl);
	m.deleted = 1;
	got = gs_proc_open_mapped(getpid(), &m, path, sizeof(path));
	if (got >= 0)
		close(got);
	else
		assert_int_equal(got, -ESTALE);
	assert_string_equal(gs_proc_mapped_strerror(-ESTALE, &m), "deleted after start");
	m.deleted = 0;
	assert_string_equal(gs_proc_mapped_strerror(-ESTALE, &m), "replaced since it started");
	assert_string_equal(gs_proc_mapped_strerror(-ENOENT, &m), "not visible from here");
	/* a map entry whose inode is not the file's: whatever the path names is refused */
	m.inode ^= 1;
	snprintf(m.path, sizeof(m.path), "/proc/self/exe");
	assert_int_equal(gs_proc_open_mapped(getpid(), &m, path, sizeof(path)), -ESTALE);
	snprintf(m.path, sizeof(m.path), "/nonexistent/python3");
	m.start = m.end = 0x1000; /* no such mapping either */
	assert_int_equal(gs_proc_open_mapped(getpid(), &m, path, sizeof(path)), -ENOENT);
	munmap(p, 4096);
	close(fd);
}

static void test_tidmap(void **state)
{
	struct gs_tidmap *m = gs_tidmap_new();
	(void)state;
	assert_false(gs_tidmap_active(m));
	gs_tidmap_learn(m, 5000, 5000, 0);      /* a thread in gilscope's namespace */
	gs_tidmap_learn(m, 5010, 1, 100000000); /* a child forked into a new namespace at 0.1 s */
	gs_tidmap_learn(m, 5011, 2, 100000000);
	assert_true(gs_tidmap_active(m));
	assert_int_equal(gs_tidmap_host(m, 5000, 200000000), 5000);
	assert_int_equal(gs_tidmap_host(m, 1, 200000000), 5010);
	assert_int_equal(gs_tidmap_host(m, 2, 200000000), 5011);
	assert_int_equal(gs_tidmap_host(m, 3, 200000000), 0); /* nobody */
	assert_int_equal(gs_tidmap_host(m, 1, 10000000), 0);  /* before the child was born */
	/* thread 2 exits at 0.3 s; a new thread of the namespace gets id 2 again at 0.4 s */
	gs_tidmap_on_exit(m, 5011, 300000000);
	gs_tidmap_learn(m, 5020, 2, 400000000);
	assert_int_equal(gs_tidmap_host(m, 2, 250000000), 5011);
	assert_int_equal(gs_tidmap_host(m, 2, 450000000), 5020);
	/* another namespace also has a thread 1 alive at the same time: ambiguous, never guessed */
	gs_tidmap_learn(m, 6001, 1, 500000000);
	assert_int_equal(gs_tidmap_host(m, 1, 600000000), 0);
	assert_int_equal(gs_tidmap_host(m, 1, 450000000), 5010);
	/* a host id reused by a thread with another own id ends the old pair */
	gs_tidmap_learn(m, 5010, 7, 700000000);
	assert_int_equal(gs_tidmap_host(m, 7, 800000000), 5010);
	assert_int_equal(gs_tidmap_host(m, 1, 800000000), 6001);
	assert_int_equal(gs_tidmap_translated(m), 8);
	assert_int_equal(gs_tidmap_unattributed(m), 3);
	gs_tidmap_free(m);
	gs_tidmap_free(NULL);
}

/* This process is in gilscope's namespace (the test's): adding it turns nothing on. */
static void test_tidmap_same_namespace(void **state)
{
	struct gs_tidmap *m = gs_tidmap_new();
	(void)state;
	gs_tidmap_add_process(m, getpid());
	gs_tidmap_on_fork(m, (uint32_t)getpid(), (uint32_t)getpid(), 1);
	assert_false(gs_tidmap_active(m));
	gs_tidmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_maps_dev_inode),        cmocka_unit_test(test_nspid),
		cmocka_unit_test(test_open_mapped),           cmocka_unit_test(test_tidmap),
		cmocka_unit_test(test_tidmap_same_namespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
