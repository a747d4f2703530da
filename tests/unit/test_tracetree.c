/* test_tracetree.c - the guardian's side of following a tree: its processes, the programs whose
 * exec stops it resumes itself, the queue of reports for gilscope. The exec stops are real: this
 * test traces children of its own that exec /bin/true. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe/tracetree.h"

#define EXEC_STOP (SIGTRAP | (PTRACE_EVENT_EXEC << 8))

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void processes_and_programs(void **state)
{
	struct gs_tracetree T = { 0 };
	(void)state;
	gs_tracetree_proc_add(&T, 1000);
	for (pid_t p = 1001; p < 1200; p++) /* growth */
		gs_tracetree_proc_add(&T, p);
	gs_tracetree_proc_add(&T, 1000); /* once, however often added */
	assert_int_equal(T.root, 1000);  /* the first one */
	assert_int_equal(T.nprocs, 200);
	assert_int_equal(gs_tracetree_proc_remove(&T, 1100), 1);
	assert_int_equal(gs_tracetree_proc_remove(&T, 1100), 0);
	assert_int_equal(T.nprocs, 199);
	for (uint64_t i = 0; i < GS_TRACETREE_PLAIN; i++) {
		assert_int_equal(gs_tracetree_plain(&T, 8, 100 + i), 0);
		assert_int_equal(gs_tracetree_plain(&T, 8, 100 + i), 0); /* known: not added twice */
	}
	assert_int_equal(T.nplain, GS_TRACETREE_PLAIN);
	assert_int_equal(gs_tracetree_plain(&T, 8, 99), -ENOSPC);
	assert_int_equal(gs_tracetree_plain(&T, 8, 100), 0); /* a known one, full or not */
	gs_tracetree_release(&T);
	assert_int_equal(T.nprocs, 0);
	assert_null(T.procs);
}

/* The queue: a process's end is gilscope's (a thread's is not), popped in order, by pid or any;
 * when gilscope does not keep up, reports beyond the queue are dropped. */
static void ends_and_the_queue(void **state)
{
	struct gs_tracetree T = { 0 };
	struct gs_tracetree_report r;
	(void)state;
	gs_tracetree_proc_add(&T, 1);
	for (pid_t p = 2000; p < 2000 + GS_TRACETREE_QUEUED + 10; p++)
		gs_tracetree_proc_add(&T, p);
	gs_tracetree_take(&T, 0, 5000, 0); /* exit 0 of a thread: nobody's business */
	assert_int_equal(T.nq, 0);
	for (pid_t p = 2000; p < 2000 + GS_TRACETREE_QUEUED + 10; p++)
		gs_tracetree_take(&T, 0, p, (p & 0x7f) << 8); /* exit p & 127 */
	assert_int_equal(T.nq, GS_TRACETREE_QUEUED);
	gs_tracetree_take(&T, 2003, 2003, 0); /* the held tracee's: queued, full or not */
	assert_int_equal(T.nq, GS_TRACETREE_QUEUED + 1);
	assert_int_equal(T.q[GS_TRACETREE_QUEUED].pid, 2003);
	assert_int_equal(gs_tracetree_pop(&T, 2007, &r), 1);
	assert_int_equal(r.pid, 2007);
	assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == (2007 & 0x7f));
	assert_false(r.resumed);
	assert_int_equal(gs_tracetree_pop(&T, 2007, &r), 0);
	assert_int_equal(gs_tracetree_pop(&T, -1, &r), 1);
	assert_int_equal(r.pid, 2000);
	assert_int_equal(gs_tracetree_pop(&T, -1, &r), 1);
	assert_int_equal(r.pid, 2001);
	assert_int_equal(T.nq, GS_TRACETREE_QUEUED - 2);
	gs_tracetree_release(&T);
	assert_int_equal(T.nq, 0);
}

/* A child of this test, traced, stopped at its exec of /bin/true with the arguments "x" and "y z":
 * its pid, its wait status in *st. */
static pid_t exec_stopped_child(int *st)
{
	pid_t c = fork();
	if (c == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		execl("/bin/true", "true", "x", "y z", (char *)NULL);
		_exit(127);
	}
	assert_true(c > 0);
	assert_int_equal(waitpid(c, st, 0), c);
	assert_true(WIFSTOPPED(*st) && WSTOPSIG(*st) == SIGSTOP);
	assert_int_equal(ptrace(PTRACE_SETOPTIONS, c, NULL, (void *)(long)PTRACE_O_TRACEEXEC), 0);
	assert_int_equal(ptrace(PTRACE_CONT, c, NULL, NULL), 0);
	assert_int_equal(waitpid(c, st, 0), c);
	assert_int_equal(*st >> 8, EXEC_STOP);
	return c;
}

/* An exec stop into a program named plain: resumed at once, queued resumed, with the time of the
 * stop and the argv as /proc/PID/cmdline gave it; the process runs to its end without anyone
 * continuing it, and its end follows its exec in the queue. */
static void exec_of_a_plain_program_is_resumed(void **state)
{
	struct gs_tracetree T = { 0 };
	struct gs_tracetree_report r;
	struct stat sb;
	uint64_t t0;
	int st;
	pid_t c;
	(void)state;
	assert_int_equal(stat("/bin/true", &sb), 0);
	gs_tracetree_proc_add(&T, 1); /* the root: not this one */
	assert_int_equal(gs_tracetree_plain(&T, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino), 0);
	c = exec_stopped_child(&st);
	gs_tracetree_proc_add(&T, c);
	t0 = now_ns();
	gs_tracetree_take(&T, 0, c, st);
	assert_int_equal(waitpid(c, &st, 0), c); /* it was resumed: it ends by itself */
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	gs_tracetree_take(&T, 0, c, st);
	assert_int_equal(T.nq, 2);
	assert_int_equal(gs_tracetree_pop(&T, -1, &r), 1);
	assert_int_equal(r.pid, c);
	assert_true(r.resumed);
	assert_int_equal(r.status >> 8, EXEC_STOP);
	assert_true(r.time >= t0 && r.time <= now_ns());
	assert_int_equal(r.argvlen, sizeof("true\0x\0y z"));
	assert_memory_equal(r.argv, "true\0x\0y z", r.argvlen);
	free(r.argv);
	assert_int_equal(gs_tracetree_pop(&T, -1, &r), 1);
	assert_false(r.resumed);
	assert_true(WIFEXITED(r.status));
	assert_null(r.argv);
	gs_tracetree_release(&T);
}

/* Not resumed: a program not named, the root's exec, the held tracee's exec, any exec while half
 * the queue waits for gilscope. Each stays stopped (the test continues it), queued as gilscope's. */
static void other_exec_stops_are_gilscopes(void **state)
{
	struct gs_tracetree T = { 0 };
	struct gs_tracetree_report r;
	struct stat sb;
	(void)state;
	assert_int_equal(stat("/bin/true", &sb), 0);
	for (int how = 0; how < 4; how++) {
		int st;
		pid_t c;
		memset(&T, 0, sizeof(T));
		if (how != 1)
			gs_tracetree_proc_add(&T, 1);
		assert_int_equal(gs_tracetree_plain(&T, (uint64_t)sb.st_dev, (uint64_t)sb.st_ino + (how == 0)), 0);
		for (pid_t p = 3000; how == 3 && p < 3000 + GS_TRACETREE_QUEUED / 2; p++) {
			gs_tracetree_proc_add(&T, p);
			gs_tracetree_take(&T, 0, p, 0); /* a process's end gilscope has not taken yet */
		}
		c = exec_stopped_child(&st);
		gs_tracetree_proc_add(&T, c); /* how 1: the root */
		gs_tracetree_take(&T, how == 2 ? c : 0, c, st);
		usleep(20000);
		assert_int_equal(waitpid(c, &st, WNOHANG), 0); /* still stopped */
		assert_int_equal(gs_tracetree_pop(&T, c, &r), 1);
		assert_false(r.resumed);
		assert_int_equal(r.status >> 8, EXEC_STOP);
		assert_null(r.argv);
		assert_int_equal(ptrace(PTRACE_CONT, c, NULL, NULL), 0);
		assert_int_equal(waitpid(c, &st, 0), c);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		gs_tracetree_release(&T);
	}
}

int main(void)
{
	alarm(60); /* a tracee that is never resumed would keep a waitpid waiting: fail instead */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(processes_and_programs),
		cmocka_unit_test(ends_and_the_queue),
		cmocka_unit_test(exec_of_a_plain_program_is_resumed),
		cmocka_unit_test(other_exec_stops_are_gilscopes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
