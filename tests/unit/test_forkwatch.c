/* test_forkwatch.c - the fork watch's filter, installed for real in a child process: a fork and a
 * vfork are notified (and go on once let go), a thread is created without a notification, clone3
 * fails with ENOSYS, other calls are not touched; the listener reports POLLHUP once no process uses
 * the filter. Needs CAP_SYS_ADMIN (the filter is installed without no_new_privs): skipped without. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe/forkwatch.h"

static void program_shape(void **state)
{
	struct sock_filter p[GS_FORKWATCH_LEN];
	size_t n;
	(void)state;
	assert_int_equal(gs_forkwatch_program(p, GS_FORKWATCH_LEN - 1), 0);
	n = gs_forkwatch_program(p, GS_FORKWATCH_LEN);
	assert_true(n > 0 && n <= GS_FORKWATCH_LEN);
	/* every jump lands inside the program, and it ends with a return */
	for (size_t i = 0; i < n; i++)
		if (BPF_CLASS(p[i].code) == BPF_JMP) {
			assert_true(i + 1 + p[i].jt < n);
			assert_true(i + 1 + p[i].jf < n);
		}
	assert_int_equal(BPF_CLASS(p[n - 1].code), BPF_RET);
}

static void *nothing(void *arg) { return arg; }

/* The child: the filter, then a fork, a vfork, a thread and clone3; what it saw goes to fd
 * (an int each: clone3's errno, the thread's creation result, the fork's and vfork's children's
 * exit statuses). The listener goes to the parent first. */
static void child(int sock)
{
	char cb[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (char[]){ 'l' }, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof(cb) };
	struct cmsghdr *c;
	int out[4], lfd = gs_forkwatch_install(), st;
	pthread_t t;
	pid_t pid;
	if (lfd < 0) {
		out[0] = lfd;
		if (write(sock, out, sizeof(int)) < 0)
			_exit(1);
		_exit(0);
	}
	memset(cb, 0, sizeof(cb));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &lfd, sizeof(int));
	if (sendmsg(sock, &mh, 0) < 0)
		_exit(1);
	close(lfd);
	out[0] = syscall(SYS_clone3, NULL, (size_t)0) < 0 ? errno : 0;
	out[1] = pthread_create(&t, NULL, nothing, NULL);
	if (out[1] == 0)
		pthread_join(t, NULL);
	pid = fork();
	if (pid == 0)
		_exit(7);
	out[2] = pid > 0 && waitpid(pid, &st, 0) == pid ? WEXITSTATUS(st) : -1;
	pid = vfork();
	if (pid == 0)
		_exit(8);
	out[3] = pid > 0 && waitpid(pid, &st, 0) == pid ? WEXITSTATUS(st) : -1;
	if (write(sock, out, sizeof(out)) < 0)
		_exit(1);
	_exit(0);
}

static int recv_listener(int sock)
{
	char cb[CMSG_SPACE(sizeof(int))], b[sizeof(int)];
	struct iovec iov = { b, sizeof(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof(cb) };
	struct cmsghdr *c;
	int fd = -1;
	if (recvmsg(sock, &mh, 0) < 0)
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c)
		return -2; /* the child could not install it: said in b */
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void filter_in_a_child(void **state)
{
	int sv[2], lfd, out[4] = { -1, -1, -1, -1 }, nrs[8], n = 0, st;
	pid_t pid;
	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		child(sv[1]);
	}
	close(sv[1]);
	lfd = recv_listener(sv[0]);
	if (lfd == -2) {
		waitpid(pid, &st, 0);
		close(sv[0]);
		skip(); /* no CAP_SYS_ADMIN */
	}
	assert_true(lfd >= 0);
	/* let every notified call go on, noting its number, until the child's report comes */
	for (;;) {
		struct pollfd p[2] = { { lfd, POLLIN, 0 }, { sv[0], POLLIN, 0 } };
		struct gs_forkwatch_call c;
		assert_true(poll(p, 2, 10000) > 0);
		if (p[0].revents & POLLIN) {
			assert_int_equal(gs_forkwatch_recv(lfd, &c), 0);
			assert_int_equal(c.tid, pid);
			if (n < 8)
				nrs[n++] = c.nr;
			assert_int_equal(gs_forkwatch_continue(lfd, c.id), 0);
			continue;
		}
		if (p[1].revents & POLLIN) {
			assert_int_equal(read(sv[0], out, sizeof(out)), (ssize_t)sizeof(out));
			break;
		}
	}
	assert_int_equal(out[0], ENOSYS);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 7);
	assert_int_equal(out[3], 8);
	/* glibc's fork() is clone() without CLONE_THREAD; vfork() is vfork; the thread: nothing */
	assert_int_equal(n, 2);
	assert_int_equal(nrs[0], SYS_clone);
	assert_int_equal(nrs[1], SYS_vfork);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	{
		struct pollfd p = { lfd, POLLIN, 0 };
		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_true(p.revents & POLLHUP); /* nobody uses the filter any more */
	}
	close(lfd);
	close(sv[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(program_shape), cmocka_unit_test(filter_in_a_child) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
