/* forkwatch.h - a seccomp filter that tells the guardian (tracer.h) of every process a followed tree
 * creates, so that only the threads that create processes are traced, not every thread.
 *
 * ptrace reports the forks of traced threads only, so following a tree with PTRACE_O_TRACECLONE
 * traces every thread and stops each new one once (a program that starts 2,000 short threads ran
 * 3.2x slower). Instead, with --fork-watch (or without BPF: the default's stops at exec need it),
 * the launched command installs this filter before its exec (inherited by
 * every thread and process it starts, and kept across exec). It allows clone() with CLONE_THREAD
 * (a thread) at no cost; it sends clone() without CLONE_THREAD, fork(), vfork(), execve() and
 * execveat() to the listener (SECCOMP_RET_USER_NOTIF), which the guardian holds: the guardian
 * seizes the calling thread if it is not traced yet and lets the call go on
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE), so the call runs in a traced thread and ptrace's fork,
 * vfork and exec events follow as they always did. clone3() fails with ENOSYS (its flags are in
 * memory, which a filter cannot read): glibc then uses clone(). Both x86-64 and i386 calls are
 * watched; x32 calls are allowed.
 *
 * The filter is installed without PR_SET_NO_NEW_PRIVS, which needs CAP_SYS_ADMIN: a setuid
 * program in the tree still gains its privileges. Without CAP_SYS_ADMIN the installation fails
 * (-EACCES) and the caller follows with PTRACE_O_TRACECLONE as before.
 *
 * A notified call waits until the listener answers; with no listener left it fails with ENOSYS.
 * So the listener must live as long as a process of the tree does: gs_forkwatch_serve() answers
 * every call until no process uses the filter any more (tracer.c runs it in a process of its own
 * when the recording ends before the tree does).
 *
 * Functions return 0 (or a descriptor) or -errno.
 */
#ifndef GS_FORKWATCH_H
#define GS_FORKWATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_filter;

/* The filter's program into prog (cap instructions at least GS_FORKWATCH_LEN). Its length. */
#define GS_FORKWATCH_LEN 32
size_t gs_forkwatch_program(struct sock_filter *prog, size_t cap);

/* Installs the filter on the calling thread (do it while single-threaded: threads created
 * earlier do not get it). The listener's descriptor (close-on-exec), or -errno. */
int gs_forkwatch_install(void);

/* One call that waits for an answer. */
struct gs_forkwatch_call {
	uint64_t id;
	pid_t tid; /* the calling thread, in the listener's pid namespace */
	int nr;    /* the system call */
};

/* Takes the next call (the descriptor polled readable). 0; -ENOENT when the caller is gone. */
int gs_forkwatch_recv(int lfd, struct gs_forkwatch_call *c);
/* Lets the call go on. 0; -ENOENT when the caller is gone. */
int gs_forkwatch_continue(int lfd, uint64_t id);
/* Answers every call (letting it go on) until no process uses the filter, then closes lfd. */
void gs_forkwatch_serve(int lfd);
/* The listener's holder ends: while a process still uses the filter, a child process named
 * gilscope-watch runs gs_forkwatch_serve() on it. lfd is closed here either way (-1: nothing). */
void gs_forkwatch_hand_off(int lfd);

/* The listener travels from the command to the guardian: one message of len bytes on the socket
 * with descriptor fd (SCM_RIGHTS). 0 or -errno. */
int gs_forkwatch_sendmsg(int sock, const void *buf, size_t len, int fd);
/* recvmsg() of one message; a descriptor sent with it goes to *fd (close-on-exec; -1: none). */
ssize_t gs_forkwatch_recvmsg(int sock, void *buf, size_t len, int *fd);

#endif
