/* Unit tests: the attach path's injector (probe/inject.h). Pure helpers (a program counter in
 * ranges, the registers of an injected call, the owner mark), then for real: a forked child
 * blocked in read(2) on a pipe (a restartable system call, like the futex wait of take_gil) is
 * seized, runs injected calls, gets every register back, and once let go its read() resumes and
 * returns the byte written afterwards, neither -EINTR nor a restart of the wrong call. */
#define _GNU_SOURCE
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/procfs.h"
#include "probe/inject.h"

static void test_range_find(void **state)
{
	const struct gs_range r[] = { { 0x1000, 0x1005 }, { 0x2000, 0x2007 } };
	(void)state;
	assert_int_equal(gs_range_find(r, 2, 0x1000, 0), -1); /* about to run the new jump whole */
	assert_int_equal(gs_range_find(r, 2, 0x1000, 1), 0);
	assert_int_equal(gs_range_find(r, 2, 0x1001, 0), 0);
	assert_int_equal(gs_range_find(r, 2, 0x1004, 0), 0);
	assert_int_equal(gs_range_find(r, 2, 0x1005, 0), -1); /* the next instruction */
	assert_int_equal(gs_range_find(r, 2, 0x2006, 1), 1);
	assert_int_equal(gs_range_find(r, 2, 0xfff, 1), -1);
	assert_int_equal(gs_range_find(r, 0, 0x1001, 1), -1);
}

static void test_inject_regs_layout(void **state)
{
	struct user_regs_struct saved, out;
	const uint64_t args[6] = { 1, 2, 3, 4, 5, 6 };
	(void)state;
	memset(&saved, 0xa5, sizeof(saved));
	saved.orig_rax = 202;                 /* stopped in futex() */
	saved.rax = (unsigned long long)-512; /* -ERESTARTSYS */
	gs_inject_regs(&saved, 0x401000, 9, args, &out);
	assert_int_equal(out.rip, 0x401000);
	assert_int_equal(out.rax, 9);
	assert_true(out.orig_rax == (unsigned long long)-1); /* the kernel must not restart it */
	assert_int_equal(out.rdi, 1);
	assert_int_equal(out.rsi, 2);
	assert_int_equal(out.rdx, 3);
	assert_int_equal(out.r10, 4);
	assert_int_equal(out.r8, 5);
	assert_int_equal(out.r9, 6);
	/* everything else as saved: the stack, the flags, the callee-saved registers, the TLS */
	assert_true(out.rsp == saved.rsp && out.eflags == saved.eflags && out.rbx == saved.rbx &&
		    out.rbp == saved.rbp && out.r12 == saved.r12 && out.r15 == saved.r15 && out.rcx == saved.rcx &&
		    out.r11 == saved.r11 && out.fs_base == saved.fs_base && out.cs == saved.cs);
}

static void test_parse_owner(void **state)
{
	char m[64] = "/proc/1234/fd/7";
	pid_t pid = 0;
	int fd = -1;
	(void)state;
	assert_int_equal(gs_inject_parse_owner(m, sizeof(m), &pid, &fd), 0);
	assert_int_equal(pid, 1234);
	assert_int_equal(fd, 7);
	assert_int_equal(gs_inject_parse_owner("/proc/12/fd/", 13, &pid, &fd), -1);
	assert_int_equal(gs_inject_parse_owner("/proc//fd/3", 12, &pid, &fd), -1);
	assert_int_equal(gs_inject_parse_owner("/proc/0/fd/3", 13, &pid, &fd), -1);
	assert_int_equal(gs_inject_parse_owner("/proc/5/fd/3x", 14, &pid, &fd), -1);
	assert_int_equal(gs_inject_parse_owner("/proc/5/fd/3", 12, &pid, &fd), -1); /* no NUL in range */
	memset(m, 0x90, sizeof(m));                                                 /* code, not a mark */
	assert_int_equal(gs_inject_parse_owner(m, sizeof(m), &pid, &fd), -1);
}

/* Scratch code for the injected calls in the child (the same address there: a fork). */
static __attribute__((noinline, used)) int scratch_fn(int x) { return x * 3 + 1; }

static void test_inject_into_a_restartable_read(void **state)
{
	int p[2], st;
	char b;
	pid_t child;
	struct gs_threads ts = { 0 };
	struct user_regs_struct before, after;
	const uint64_t margs[6] = { 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	uint64_t args[6] = { 0 };
	int64_t ret = 0;
	char why[256];
	(void)state;

	assert_int_equal(pipe(p), 0);
	child = fork();
	if (child == 0) {
		ssize_t n = read(p[0], &b, 1); /* blocked here while injected into */
		_exit(n == 1 ? b : 100 + (n < 0));
	}
	close(p[0]);
	usleep(100000);
	assert_int_equal(gs_threads_seize(&ts, child, why, sizeof(why)), 0);
	assert_int_equal(ts.n, 1);
	assert_int_equal(ptrace(PTRACE_GETREGS, child, NULL, &before), 0);
	assert_int_equal(gs_inject_syscall(&ts, SYS_getpid, args, &ret), 0);
	assert_int_equal(ret, child);
	assert_int_equal(gs_inject_syscall(&ts, SYS_mmap, margs, &ret), 0);
	assert_true(ret > 0 && (ret & 0xfff) == 0);
	args[0] = (uint64_t)ret;
	args[1] = 4096;
	assert_int_equal(gs_inject_syscall(&ts, SYS_munmap, args, &ret), 0);
	assert_int_equal(ret, 0);
	assert_int_equal(ptrace(PTRACE_GETREGS, child, NULL, &after), 0);
	assert_memory_equal(&before, &after, sizeof(before));
	gs_threads_release(&ts);
	usleep(50000);
	b = 42;
	assert_int_equal(write(p[1], &b, 1), 1);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 42); /* the read resumed: neither EINTR nor a lost byte */
	close(p[1]);
	assert_int_equal(scratch_fn(1), 4); /* our own copy was never touched */
}

static void test_resume_after_restart(void **state)
{
	struct user_regs_struct r;
	uint64_t rip, rax;
	(void)state;
	memset(&r, 0, sizeof(r));
	r.rip = 0x401002;
	r.orig_rax = 202;                 /* futex */
	r.rax = (unsigned long long)-512; /* ERESTARTSYS: the call again */
	gs_inject_resume(&r, &rip, &rax);
	assert_true(rip == 0x401000 && rax == 202);
	r.rax = (unsigned long long)-516; /* ERESTART_RESTARTBLOCK */
	gs_inject_resume(&r, &rip, &rax);
	assert_true(rip == 0x401000 && rax == SYS_restart_syscall);
	r.rax = (unsigned long long)-4; /* EINTR: returned as it is */
	gs_inject_resume(&r, &rip, &rax);
	assert_true(rip == 0x401002 && rax == (uint64_t)-4);
	r.orig_rax = (unsigned long long)-1; /* not in a call: -512 is just rax */
	r.rax = (unsigned long long)-512;
	gs_inject_resume(&r, &rip, &rax);
	assert_true(rip == 0x401002 && rax == (uint64_t)-512);
}

static void test_stub_layout(void **state)
{
	struct user_regs_struct r;
	uint8_t stub[GS_INJECT_STUB_MAX];
	uint64_t v;
	size_t n;
	(void)state;
	memset(&r, 0, sizeof(r));
	r.rip = 0x1234;
	r.orig_rax = (unsigned long long)-1;
	r.rax = 77;
	r.r15 = 0x1515151515151515ull;
	r.eflags = 0x246;
	n = gs_inject_stub(&r, stub);
	assert_true(n <= GS_INJECT_STUB_MAX);
	assert_true(stub[0] == 0x0f && stub[1] == 0x05); /* syscall first */
	memcpy(&v, stub + n - 8, 8);
	assert_int_equal(v, 0x1234); /* then back where it was */
	assert_true(stub[n - 14] == 0xff && stub[n - 13] == 0x25);
	memcpy(&v, stub + n - 22, 8); /* rax last, right before the jump */
	assert_int_equal(v, 77);
	memcpy(&v, stub + n - 32, 8);
	assert_int_equal(v, r.r15);
}

#define CHILD_STACK (256u << 10)

/* The child of the stub tests, on a stack of its own: a forked child's
 * stack is the test program's, where earlier tests' locals (program counters inside the stub, left
 * in frames and, under AddressSanitizer, in their redzones) are words the scrub's stack scan
 * rightly takes for return addresses into the code it must not change. */
static int reader_child(void *arg)
{
	int *p = arg;
	char b;
	ssize_t n;
	close(p[1]); /* a parent that fails and exits leaves it EOF, not waiting for ever */
	n = read(p[0], &b, 1);
	return n == 1 ? b : 100 + (n < 0); /* clone()'s wrapper exits with it */
}

/* What a kill of gilscope between setting an injected call's registers and setting them back
 * leaves: the kernel lets the thread go with them; the stub runs the call and resumes it. */
static void test_stub_resumes_a_thread_left_mid_call(void **state)
{
	int p[2], st;
	char b;
	pid_t child;
	struct gs_threads ts = { 0 };
	struct user_regs_struct saved, regs;
	uint8_t stub[GS_INJECT_STUB_MAX];
	const uint64_t args[6] = { 0 };
	char why[256], *cstack;
	(void)state;

	assert_int_equal(pipe(p), 0);
	cstack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(cstack != MAP_FAILED);
	child = clone(reader_child, cstack + CHILD_STACK, SIGCHLD, p);
	assert_true(child > 0);
	close(p[0]);
	usleep(100000);
	assert_int_equal(gs_threads_seize(&ts, child, why, sizeof(why)), 0);
	assert_int_equal(gs_inject_find_scratch(child, &ts.scratch, ts.scratch_file), 0);
	assert_int_equal(ptrace(PTRACE_GETREGS, child, NULL, &saved), 0);
	memcpy(stub, ts.scratch_file, sizeof(stub));
	gs_inject_stub(&saved, stub);
	assert_int_equal(gs_mem_write(child, ts.scratch, stub, sizeof(stub)), 0);
	gs_inject_regs(&saved, ts.scratch, SYS_getpid, args, &regs);
	assert_int_equal(ptrace(PTRACE_SETREGS, child, NULL, &regs), 0);
	ptrace(PTRACE_DETACH, child, NULL, NULL); /* as the kernel does when the tracer dies */
	free(ts.t);
	usleep(100000);
	b = 42;
	assert_int_equal(write(p[1], &b, 1), 1);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 42); /* the read restarted by the stub got the byte */
	close(p[1]);
	munmap(cstack, CHILD_STACK);
}

/* A thread a killed gilscope left in the middle of a stub: the next one lets it finish before it
 * writes the file's bytes back there. */
static void test_scrub_waits_for_a_thread_in_the_stub(void **state)
{
	int p[2], st;
	char b, why[256];
	pid_t child;
	struct gs_threads ts = { 0 };
	struct user_regs_struct saved, regs;
	uint8_t stub[GS_INJECT_STUB_MAX], now[GS_INJECT_STUB_MAX];
	const uint64_t args[6] = { 0 };
	char *cstack;
	(void)state;

	assert_int_equal(pipe(p), 0);
	cstack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(cstack != MAP_FAILED);
	child = clone(reader_child, cstack + CHILD_STACK, SIGCHLD, p);
	assert_true(child > 0);
	close(p[0]);
	usleep(100000);
	assert_int_equal(gs_threads_seize(&ts, child, why, sizeof(why)), 0);
	assert_int_equal(gs_inject_find_scratch(child, &ts.scratch, ts.scratch_file), 0);
	assert_int_equal(ptrace(PTRACE_GETREGS, child, NULL, &saved), 0);
	memcpy(stub, ts.scratch_file, sizeof(stub));
	gs_inject_stub(&saved, stub);
	assert_int_equal(gs_mem_write(child, ts.scratch, stub, sizeof(stub)), 0);
	gs_inject_regs(&saved, ts.scratch, SYS_getpid, args, &regs);
	assert_int_equal(ptrace(PTRACE_SETREGS, child, NULL, &regs), 0);
	for (int i = 0; i < 4; i++) { /* the call and three instructions after it */
		assert_int_equal(ptrace(PTRACE_SINGLESTEP, child, NULL, NULL), 0);
		assert_int_equal(waitpid(child, &st, __WALL), child);
	}
	assert_int_equal(ptrace(PTRACE_GETREGS, child, NULL, &regs), 0);
	assert_true(regs.rip > ts.scratch && regs.rip < ts.scratch + GS_INJECT_STUB_MAX);
	ts.scratch = 0; /* as a new gilscope finds it */
	assert_int_equal(gs_inject_scrub_scratch(&ts, why, sizeof(why)), 0);
	assert_int_equal(gs_mem_read(child, ts.scratch, now, sizeof(now)), 0);
	assert_memory_equal(now, ts.scratch_file, sizeof(now));
	gs_threads_release(&ts);
	usleep(50000);
	b = 42;
	assert_int_equal(write(p[1], &b, 1), 1);
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 42);
	close(p[1]);
	munmap(cstack, CHILD_STACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_find),
		cmocka_unit_test(test_inject_regs_layout),
		cmocka_unit_test(test_parse_owner),
		cmocka_unit_test(test_inject_into_a_restartable_read),
		cmocka_unit_test(test_resume_after_restart),
		cmocka_unit_test(test_stub_layout),
		cmocka_unit_test(test_stub_resumes_a_thread_left_mid_call),
		cmocka_unit_test(test_scrub_waits_for_a_thread_in_the_stub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
