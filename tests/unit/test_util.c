/* Unit tests: the careful file openers of util.c (gs_open_owned_nofollow for files the traced
 * program wrote, gs_open_output for every file gilscope creates). Ownership cases need root
 * (chown); they are skipped otherwise. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "base/util.h"

static char dir[64];

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static void make_file(const char *p, const char *content, mode_t mode)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gilscope-util-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	/* the test made only plain files, links and FIFOs in its own directory */
	for (const char *n = "a\0b\0c\0link\0fifo\0hard\0new\0"; *n; n += strlen(n) + 1) {
		char p[256];
		path_in(p, sizeof(p), n);
		if (unlink(p) < 0)
			rmdir(p);
	}
	rmdir(dir);
	return 0;
}

static void test_owned_regular_file(void **state)
{
	char p[256], buf[8] = "";
	int fd;
	(void)state;
	path_in(p, sizeof(p), "a");
	make_file(p, "map", 0644);
	fd = gs_open_owned_nofollow(p, geteuid());
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 3);
	assert_string_equal(buf, "map");
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	/* read-only: 0400 is fine too */
	assert_int_equal(chmod(p, 0400), 0);
	fd = gs_open_owned_nofollow(p, geteuid());
	assert_true(fd >= 0);
	close(fd);
}

static void test_owned_refuses_writable_by_others(void **state)
{
	char p[256];
	(void)state;
	path_in(p, sizeof(p), "a");
	make_file(p, "x", 0664);
	assert_int_equal(gs_open_owned_nofollow(p, geteuid()), -EPERM);
	assert_int_equal(chmod(p, 0646), 0);
	assert_int_equal(gs_open_owned_nofollow(p, geteuid()), -EPERM);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(gs_open_owned_nofollow(p, geteuid()), -EPERM);
}

static void test_owned_refuses_links_and_special_files(void **state)
{
	char p[256], l[256], f[256];
	(void)state;
	path_in(p, sizeof(p), "a");
	path_in(l, sizeof(l), "link");
	path_in(f, sizeof(f), "fifo");
	make_file(p, "x", 0644);
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(gs_open_owned_nofollow(l, geteuid()), -ELOOP);
	/* a FIFO must not block the reader, and is refused */
	assert_int_equal(mkfifo(f, 0600), 0);
	assert_int_equal(gs_open_owned_nofollow(f, geteuid()), -EINVAL);
	assert_int_equal(gs_open_owned_nofollow(dir, geteuid()), -EINVAL);
	assert_int_equal(gs_open_owned_nofollow("/dev/null", geteuid()), -EINVAL);
	path_in(p, sizeof(p), "missing");
	assert_int_equal(gs_open_owned_nofollow(p, geteuid()), -ENOENT);
}

static void test_owned_checks_the_owner(void **state)
{
	char p[256];
	int fd;
	(void)state;
	if (geteuid() != 0)
		skip();
	path_in(p, sizeof(p), "a");
	make_file(p, "x", 0644);
	assert_int_equal(chown(p, 1234, 1234), 0);
	fd = gs_open_owned_nofollow(p, 1234);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(gs_open_owned_nofollow(p, 4321), -EPERM);
	/* root's files are accepted whoever the expected owner is */
	assert_int_equal(chown(p, 0, 0), 0);
	fd = gs_open_owned_nofollow(p, 4321);
	assert_true(fd >= 0);
	close(fd);
}

static void test_output_creates_0644_and_truncates(void **state)
{
	char p[256], why[512];
	struct stat st;
	mode_t old = umask(022);
	int fd;
	(void)state;
	path_in(p, sizeof(p), "new");
	fd = gs_open_output(p, why, sizeof(why));
	umask(old);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	close(fd);
	make_file(p, "old contents", 0666);
	fd = gs_open_output(p, why, sizeof(why));
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 0002, 0); /* no longer world-writable */
	close(fd);
}

static void test_output_refuses_symlinks_and_hard_links(void **state)
{
	char p[256], l[256], h[256], why[512], buf[32] = "";
	int fd;
	(void)state;
	path_in(p, sizeof(p), "a");
	path_in(l, sizeof(l), "link");
	path_in(h, sizeof(h), "hard");
	make_file(p, "precious", 0644);
	assert_int_equal(symlink(p, l), 0);
	assert_int_equal(gs_open_output(l, why, sizeof(why)), -ELOOP);
	assert_non_null(strstr(why, "symbolic link"));
	assert_non_null(strstr(why, l));
	/* a dangling link is not followed either (it would create its target) */
	unlink(l);
	path_in(h, sizeof(h), "b");
	assert_int_equal(symlink(h, l), 0);
	assert_int_equal(gs_open_output(l, why, sizeof(why)), -ELOOP);
	assert_int_equal(access(h, F_OK), -1);
	path_in(h, sizeof(h), "hard");
	assert_int_equal(link(p, h), 0);
	assert_int_equal(gs_open_output(h, why, sizeof(why)), -EMLINK);
	assert_non_null(strstr(why, "hard link"));
	fd = open(p, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
	close(fd);
	assert_string_equal(buf, "precious"); /* untouched */
}

static void test_output_in_world_writable_dir(void **state)
{
	char p[256], why[512];
	int fd;
	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(dir, 01777), 0);
	path_in(p, sizeof(p), "c");
	make_file(p, "planted", 0644);
	assert_int_equal(chown(p, 1234, 1234), 0);
	assert_int_equal(gs_open_output(p, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "world-writable"));
	/* the caller's own file there is fine */
	assert_int_equal(chown(p, geteuid(), getegid()), 0);
	fd = gs_open_output(p, why, sizeof(why));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(dir, 0700), 0);
}

static void test_output_devices_and_fifos(void **state)
{
	char f[256], why[512];
	int fd;
	(void)state;
	fd = gs_open_output("/dev/null", why, sizeof(why));
	assert_true(fd >= 0);
	close(fd);
	path_in(f, sizeof(f), "fifo");
	assert_int_equal(mkfifo(f, 0600), 0);
	/* nothing reads it: an error, not a hang */
	assert_int_equal(gs_open_output(f, why, sizeof(why)), -ENXIO);
	assert_int_equal(gs_open_output(dir, why, sizeof(why)), -EISDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_owned_regular_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned_refuses_writable_by_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned_refuses_links_and_special_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned_checks_the_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_creates_0644_and_truncates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_refuses_symlinks_and_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_in_world_writable_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_devices_and_fifos, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
