/* Unit tests: the host's CPython processes (record/discover.h) on real processes: a python3
 * started with a marker argument (detached: not a child of the test) is returned by the first
 * poll and not by the next; a regex that does not match its command line, another user, a
 * program that is not CPython and a python3 that is the test's own child are never returned; a
 * python3 of another user (nobody) is returned for that user, and so is one that becomes nobody
 * later or exec's itself with the marker later; a python3 that runs the discovering program is
 * not returned to it; a bad regex or user is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record/discover.h"

#define PYTHON "/usr/bin/python3"
#define MAX 4096

static char marker[64];

/* Runs argv detached (a grandchild, reparented away from the test), as uid when uid >= 0.
 * Returns its pid. */
static pid_t spawn_detached(const char *const *argv, int uid)
{
	int fds[2];
	pid_t mid, pid = -1;
	assert_int_equal(pipe(fds), 0);
	mid = fork();
	assert_true(mid >= 0);
	if (mid == 0) {
		pid_t g = fork();
		if (g == 0) {
			close(fds[0]);
			close(fds[1]);
			if (uid >= 0 && (setgid((gid_t)uid) < 0 || setuid((uid_t)uid) < 0))
				_exit(126);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (write(fds[1], &g, sizeof(g)) != sizeof(g))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &pid, sizeof(pid)), sizeof(pid));
	close(fds[0]);
	waitpid(mid, NULL, 0);
	usleep(300000); /* exec'd and mapped its libraries */
	return pid;
}

static int polled(struct gs_discover *d, pid_t pid)
{
	static pid_t out[MAX];
	size_t n = gs_discover_poll(d, out, MAX);
	for (size_t i = 0; i < n; i++)
		if (out[i] == pid)
			return 1;
	return 0;
}

static struct gs_discover *discover(const char *match, const char *user)
{
	struct gs_discover *d = NULL;
	char why[512];
	assert_int_equal(gs_discover_new(match, user, &d, why, sizeof(why)), 0);
	return d;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	usleep(100000);
}

static void test_a_marked_python(void **state)
{
	const char *argv[] = { PYTHON, "-c", "import time; time.sleep(30)", marker, NULL };
	pid_t p = spawn_detached(argv, -1);
	struct gs_discover *d = discover(marker, NULL), *other = discover("no-such-marker-here", NULL);
	struct gs_discover *all = discover(NULL, NULL), *root = discover(marker, "root");
	struct gs_discover *nobody = discover(marker, "nobody"), *joined;
	char re[128];
	(void)state;
	snprintf(re, sizeof(re), "^%s -c import time; time\\.sleep\\(30\\) %s$", PYTHON, marker);
	joined = discover(re, NULL); /* the arguments joined by spaces */
	assert_true(polled(joined, p));
	gs_discover_free(joined);
	assert_true(polled(d, p));
	assert_false(polled(d, p)); /* returned once */
	assert_false(polled(other, p));
	assert_true(polled(all, p));
	assert_true(polled(root, p));
	assert_false(polled(nobody, p));
	stop(p);
	gs_discover_free(d);
	gs_discover_free(other);
	gs_discover_free(all);
	gs_discover_free(root);
	gs_discover_free(nobody);
}

static void test_not_python_not_ours(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "sleep 30; :", marker, NULL };
	const char *py[] = { PYTHON, "-c", "import time; time.sleep(30)", marker, NULL };
	pid_t s = spawn_detached(argv, -1), child;
	struct gs_discover *d = discover(marker, NULL);
	(void)state;
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execv(py[0], (char *const *)py);
		_exit(127);
	}
	usleep(300000);
	assert_int_equal(kill(s, 0), 0);
	assert_int_equal(kill(child, 0), 0);
	{
		static pid_t out[MAX];
		size_t n = gs_discover_poll(d, out, MAX);
		for (size_t i = 0; i < n; i++) {
			assert_int_not_equal(out[i], s);     /* sleep is not CPython */
			assert_int_not_equal(out[i], child); /* the test's own child */
			assert_int_not_equal(out[i], getpid());
		}
	}
	stop(s);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	gs_discover_free(d);
}

static void test_another_user(void **state)
{
	const char *argv[] = { PYTHON, "-c", "import time; time.sleep(30)", marker, NULL };
	pid_t p;
	struct gs_discover *nobody = discover(marker, "nobody"), *root = discover(marker, "root");
	(void)state;
	if (getuid() != 0)
		skip(); /* setuid needs root */
	p = spawn_detached(argv, 65534);
	assert_true(polled(nobody, p));
	assert_false(polled(root, p));
	stop(p);
	gs_discover_free(nobody);
	gs_discover_free(root);
}

/* --user is looked at on every poll: a python3 started as root that setuid(nobody) later is
 * returned for nobody from then on (it was decided once per executable, never found). */
static void test_user_changed_later(void **state)
{
	const char *argv[] = { PYTHON, "-c", "import os, time; time.sleep(1); os.setuid(65534); time.sleep(30)", marker,
			       NULL };
	struct gs_discover *nobody = discover(marker, "nobody");
	pid_t p;
	int found = 0;
	(void)state;
	if (getuid() != 0)
		skip(); /* setuid needs root */
	p = spawn_detached(argv, -1);
	assert_false(polled(nobody, p)); /* root still */
	for (int i = 0; i < 40 && !found; i++) {
		usleep(100000);
		found = polled(nobody, p);
	}
	assert_true(found);
	stop(p);
	gs_discover_free(nobody);
}

/* --match is looked at on every poll: a python3 that exec's itself (the same executable, the same
 * process) with the marker in its new command line is returned then. */
static void test_cmdline_changed_later(void **state)
{
	char code[512], rev[64];
	const char *argv[] = { PYTHON, "-c", code, NULL };
	size_t len = strlen(marker);
	struct gs_discover *d = discover(marker, NULL);
	pid_t p;
	int found = 0;
	(void)state;
	for (size_t i = 0; i < len; i++) /* the marker reversed: not in the first command line */
		rev[i] = marker[len - 1 - i];
	rev[len] = '\0';
	snprintf(code, sizeof(code),
		 "import os, sys, time; time.sleep(1); "
		 "os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(30)', '%s'[::-1]])",
		 rev);
	p = spawn_detached(argv, -1);
	assert_false(polled(d, p));
	for (int i = 0; i < 40 && !found; i++) {
		usleep(100000);
		found = polled(d, p);
	}
	assert_true(found);
	stop(p);
	gs_discover_free(d);
}

/* The probe run by test_not_our_ancestor: exit 0 when discovery leaves out its CPython parent. */
static int ancestor_probe(const char *mark)
{
	struct gs_discover *d = NULL;
	static pid_t out[MAX];
	char why[512];
	size_t n;
	if (gs_discover_new(mark, NULL, &d, why, sizeof(why)) < 0)
		return 2;
	n = gs_discover_poll(d, out, MAX);
	gs_discover_free(d);
	for (size_t i = 0; i < n; i++)
		if (out[i] == getppid())
			return 1;
	return 0;
}

/* A python3 (holding the marker) that runs the discovering program is not returned to it: a
 * Python wrapper or test runner starting gilscope is not patched. */
static void test_not_our_ancestor(void **state)
{
	char self[4096], code[4600];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t child;
	int status;
	(void)state;
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(code, sizeof(code),
		 "import subprocess, sys; sys.exit(subprocess.call(['%s', '--ancestor-probe', '%s']))", self, marker);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execl(PYTHON, PYTHON, "-c", code, marker, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_refusals(void **state)
{
	struct gs_discover *d = (struct gs_discover *)1;
	char why[512] = "";
	(void)state;
	assert_int_equal(gs_discover_new("a(b", NULL, &d, why, sizeof(why)), -22);
	assert_null(d);
	assert_non_null(strstr(why, "--match 'a(b'"));
	assert_int_equal(gs_discover_new(NULL, "no-such-user-gilscope", &d, why, sizeof(why)), -22);
	assert_non_null(strstr(why, "--user 'no-such-user-gilscope'"));
	gs_discover_free(NULL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_marked_python),
		cmocka_unit_test(test_not_python_not_ours),
		cmocka_unit_test(test_another_user),
		cmocka_unit_test(test_user_changed_later),
		cmocka_unit_test(test_cmdline_changed_later),
		cmocka_unit_test(test_not_our_ancestor),
		cmocka_unit_test(test_refusals),
	};
	if (argc == 3 && strcmp(argv[1], "--ancestor-probe") == 0)
		return ancestor_probe(argv[2]);
	snprintf(marker, sizeof(marker), "gs-discover-marker-%d", (int)getpid());
	if (access(PYTHON, X_OK) != 0) {
		printf("test_discover: %s is not installed: SKIPPED\n", PYTHON);
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
