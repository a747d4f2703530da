/* tracer.h - the guardian: the process that holds the launched command with ptrace, so that a
 * SIGKILL of gilscope in the middle of the hand-over cannot harm the command.
 *
 * `record -- COMMAND` changes the command while it holds it: a breakpoint (int3) at the CPython
 * image's entry point, registers set for injected system calls, code patched. The kernel resumes a
 * tracee whose tracer died as it is, so if the tracer were gilscope, a SIGKILL of gilscope in that
 * window would leave an int3 without a tracer (the command dies of SIGTRAP) or foreign registers.
 * So gilscope is not the tracer: gs_tracer_start() forks a guardian (its own process group,
 * deaf to SIGINT, SIGTERM, SIGHUP, SIGQUIT), and every ptrace request and every wait on the tracee
 * goes to it over a socket (one round trip each). While it holds a tracee, the guardian keeps a
 * journal: the registers before the first PTRACE_SETREGS, the original bytes of every write
 * (gs_ptrace_write, PTRACE_POKE*), the signals the tracee received that were not passed on.
 * When gilscope's end of the socket closes before the final PTRACE_DETACH (gilscope died), the
 * guardian stops the tracee (PTRACE_INTERRUPT), takes any SIGTRAP of one of its own int3s,
 * writes every original byte back (last first), puts the registers back (the PC back over the
 * int3 at the breakpoint stop), queues the held signals, detaches and exits: the command runs on
 * as if it had never been traced. A PTRACE_DETACH is the commit: the journal is dropped. The
 * connection is one per gilscope process (a module-level state, like a signal disposition).
 *
 * Functions return 0 or -errno; -ENOTCONN when no guardian runs (gs_tracer_start not called), and
 * -EPIPE when it died. The guardian is a child of gilscope: gs_tracer_stop() reaps it.
 *
 * gs_handover_step(STEP) marks a step of the hand-over. It is a test hook and nothing else: when
 * the environment variable GILSCOPE_TEST_KILL_AT names STEP, gilscope SIGKILLs itself there, so a
 * test can show that no step leaves the command harmed (tests/functional/test_handover.py). The
 * steps: seize, exec, planted, running, breakpoint, syscall-set, syscall-cont, syscall-ran, pokes,
 * detach (README, "Tests and benchmarks").
 */
#ifndef GS_TRACER_H
#define GS_TRACER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Forks the guardian. 0, or -errno with a sentence in why. */
int gs_tracer_start(char *why, size_t whylen);
/* Closes the connection (the guardian restores a tracee it still holds, then exits) and reaps
 * the guardian. Without a guardian: nothing. */
void gs_tracer_stop(void);
/* The guardian's pid (for PR_SET_PTRACER), or 0. */
pid_t gs_tracer_pid(void);
/* How many requests were sent to the guardian so far (each one a round trip). */
unsigned long gs_tracer_requests(void);

/* One ptrace(2) request, made by the guardian: PTRACE_SEIZE, INTERRUPT, CONT, LISTEN, DETACH,
 * GETREGS, SETREGS, PEEKTEXT/PEEKDATA, POKETEXT/POKEDATA, PEEKUSER, POKEUSER, with ptrace's
 * addr and data, except that a PEEK* stores the word at data (a long *). 0 or -errno. */
int gs_ptrace(int req, pid_t pid, uint64_t addr, void *data);
/* Writes len bytes of the stopped tracee's memory (through /proc/PID/mem; journaled). */
int gs_ptrace_write(pid_t pid, uint64_t addr, const void *src, size_t len);
/* waitpid(pid, status, __WALL) made by the guardian (only the tracer sees ptrace stops). */
int gs_ptrace_wait(pid_t pid, int *status);
/* The same, split to be polled: begin asks, the fd becomes readable when the answer is there,
 * end reads it. One wait at a time, and no other request until it ended. */
int gs_ptrace_wait_begin(pid_t pid);
int gs_ptrace_wait_fd(void);
int gs_ptrace_wait_end(int *status);

/* In the launched command, before its exec: installs the fork watch (forkwatch.h) and gives its
 * listener to the guardian. From then on every thread of the tree that creates a process or execs
 * is traced by the guardian first (PTRACE_SEIZE with PTRACE_O_TRACEEXEC, FORK and VFORK), so the
 * tree is followed without PTRACE_O_TRACECLONE: the command is then seized without it. When
 * gilscope ends (or dies) before the tree, a process of the guardian's (named gilscope-watch)
 * answers the watch until no process of the tree is left. 0, or -errno (-EACCES: no
 * CAP_SYS_ADMIN; nothing installed, follow with PTRACE_O_TRACECLONE). */
int gs_tracer_watch_forks(void);

/* The same for any tracee (pid -1 at begin): the reports the guardian does not serve itself, with
 * the pid that made it. Following a tree (PTRACE_O_TRACEFORK, VFORK, CLONE or the fork watch), the guardian resumes
 * at once every fork, vfork and clone stop, a new task's first stop and every signal-delivery stop
 * of a tracee other than the journaled one, and listens at group-stops: gilscope receives the exec
 * stops, a process's end (not a thread's), and every report of the journaled tracee. -ECHILD
 * when no tracee is left. */
int gs_ptrace_wait_end_pid(pid_t *pid, int *status);
/* A report of gs_ptrace_wait_end_report(). */
struct gs_tracer_report {
	pid_t pid;
	int status;
	int resumed;     /* an exec stop the guardian resumed itself (a program of gs_tracer_plain()) */
	uint64_t time;   /* resumed: when the guardian took the stop (CLOCK_MONOTONIC) */
	size_t argv_len; /* resumed: the new image's /proc/PID/cmdline as read at the stop (cut) */
	char argv[4096];
};
/* gs_ptrace_wait_end_pid() with the report's detail. */
int gs_ptrace_wait_end_report(struct gs_tracer_report *r);
/* From now on the guardian resumes the exec stops of the program with this st_dev and st_ino
 * itself (a program gilscope found not to be CPython; never the first tracee's, never the
 * journaled one's) and reports them resumed, with their argv: the process does not wait for
 * gilscope's loop. 0, or -ENOSPC when 64 programs are the guardian's already, or -errno. */
int gs_tracer_plain(uint64_t dev, uint64_t ino);

/* The journal (what a SIGKILL of gilscope would undo) moves to tracee pid, stopped in a stop with
 * wait status `status` that gilscope received; pid 0 commits the journaled tracee's hand-over
 * without detaching it. -EBUSY while another tracee's hand-over is not committed. */
int gs_tracer_adopt(pid_t pid, int status);

/* Test hook: SIGKILLs gilscope when GILSCOPE_TEST_KILL_AT equals step; otherwise nothing. */
void gs_handover_step(const char *step);

#endif
