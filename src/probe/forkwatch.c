/* forkwatch.c - the seccomp filter that reports process creation to the guardian (see forkwatch.h). */
#define _GNU_SOURCE
#include "probe/forkwatch.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define NR_OFF offsetof(struct seccomp_data, nr)
#define FLAGS_OFF offsetof(struct seccomp_data, args[0]) /* clone's flags, low 32 bits (little-endian) */

/* System call numbers of one ABI, in the order of the checks. */
struct abi {
	uint32_t arch, clone, clone3, fork, vfork, execve, execveat;
};

static const struct abi x86_64 = { AUDIT_ARCH_X86_64, 56, 435, 57, 58, 59, 322 };
static const struct abi i386 = { AUDIT_ARCH_I386, 120, 435, 2, 190, 11, 358 };

static size_t put(struct sock_filter *p, size_t n, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	p[n] = (struct sock_filter){ code, jt, jf, k };
	return n + 1;
}

/* One ABI's checks (10 instructions), nr loaded; then the shared tail: allow, notify, enosys at
 * tail, tail + 1, tail + 2 (jumps are relative to the next instruction). */
static size_t abi_checks(struct sock_filter *p, size_t n, const struct abi *a, size_t tail)
{
#define TO(x) ((uint8_t)((x) - (n + 1)))
	n = put(p, n, BPF_LD | BPF_W | BPF_ABS, NR_OFF, 0, 0);
	n = put(p, n, BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, TO(tail), 0); /* x32 */
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->clone3, TO(tail + 2), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->fork, TO(tail + 1), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->vfork, TO(tail + 1), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->execve, TO(tail + 1), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->execveat, TO(tail + 1), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, a->clone, 0, TO(tail));
	n = put(p, n, BPF_LD | BPF_W | BPF_ABS, FLAGS_OFF, 0, 0);
	n = put(p, n, BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, TO(tail), TO(tail + 1));
#undef TO
	return n;
}

size_t gs_forkwatch_program(struct sock_filter *p, size_t cap)
{
	/* 0: arch; 1: x86-64? 2: i386? else allow; 3..12: x86-64; 13..22: i386; 23..25: the tail */
	const size_t x64 = 3, x86 = 13, tail = 23;
	size_t n = 0;
	if (cap < GS_FORKWATCH_LEN)
		return 0;
	n = put(p, n, BPF_LD | BPF_W | BPF_ABS, ARCH_OFF, 0, 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, x86_64.arch, (uint8_t)(x64 - 2), 0);
	n = put(p, n, BPF_JMP | BPF_JEQ | BPF_K, i386.arch, (uint8_t)(x86 - 3), (uint8_t)(tail - 3));
	n = abi_checks(p, n, &x86_64, tail);
	n = abi_checks(p, n, &i386, tail);
	n = put(p, n, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
	n = put(p, n, BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF, 0, 0);
	n = put(p, n, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS, 0, 0);
	return n;
}

int gs_forkwatch_install(void)
{
	struct sock_filter prog[GS_FORKWATCH_LEN];
	struct sock_fprog fp = { .len = (unsigned short)gs_forkwatch_program(prog, GS_FORKWATCH_LEN), .filter = prog };
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
	return fd < 0 ? -errno : (int)fd;
}

int gs_forkwatch_recv(int lfd, struct gs_forkwatch_call *c)
{
	struct seccomp_notif n;
	memset(&n, 0, sizeof(n)); /* the kernel wants it zeroed */
	while (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n) < 0)
		if (errno != EINTR)
			return -errno;
	c->id = n.id;
	c->tid = (pid_t)n.pid;
	c->nr = n.data.nr;
	return 0;
}

int gs_forkwatch_continue(int lfd, uint64_t id)
{
	struct seccomp_notif_resp r = { .id = id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
	while (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

void gs_forkwatch_serve(int lfd)
{
	for (;;) {
		struct pollfd p = { lfd, POLLIN, 0 };
		struct gs_forkwatch_call c;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		if (p.revents & POLLIN) {
			if (gs_forkwatch_recv(lfd, &c) == 0)
				gs_forkwatch_continue(lfd, c.id);
			continue;
		}
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
			break; /* no process uses the filter any more */
	}
	close(lfd);
}

void gs_forkwatch_hand_off(int lfd)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	pid_t pid;
	if (lfd < 0)
		return;
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) && !(p.revents & POLLIN)) {
		close(lfd); /* nobody uses the filter any more */
		return;
	}
	pid = fork();
	if (pid == 0) {
		/* nothing of gilscope's kept open (a caller reading gilscope's output to its end must
		 * not wait for the tree), its own session, and deaf to the signals a `pkill gilscope` or
		 * a closed terminal sends: the tree's forks and execs depend on it */
		static const int deaf[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2 };
		int nul = open("/dev/null", O_RDWR);
		for (size_t i = 0; i < sizeof(deaf) / sizeof(deaf[0]); i++)
			signal(deaf[i], SIG_IGN);
		setsid();
		if (chdir("/") < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 ||
		    dup2(lfd, 3) < 0)
			_exit(0); /* the listener closes with it: the tree's forks fail, as they would anyway */
		syscall(SYS_close_range, 4u, ~0u, 0u);
		prctl(PR_SET_NAME, "gilscope-watch");
		gs_forkwatch_serve(3);
		_exit(0);
	}
	if (pid > 0)
		gs_info("processes of the recorded tree still run: gilscope-watch (pid %d) lets their fork() and "
			"exec() "
			"go on until the last one ends, then exits (killing it with SIGKILL would make their fork() "
			"and exec() fail; record with --no-fork-watch to leave nothing behind)",
			(int)pid);
	close(lfd);
}

union fd_cmsg {
	struct cmsghdr h;
	char b[CMSG_SPACE(sizeof(int))];
};

int gs_forkwatch_sendmsg(int sock, const void *buf, size_t len, int fd)
{
	union fd_cmsg cb;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof(cb) };
	struct cmsghdr *c;
	memset(&cb, 0, sizeof(cb));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

ssize_t gs_forkwatch_recvmsg(int sock, void *buf, size_t len, int *fd)
{
	union fd_cmsg cb;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cb, .msg_controllen = sizeof(cb) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	*fd = -1;
	c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return n;
}
