/* proctree.h - following the launched command's process tree to every CPython in it
 * (recorder-internal; see session.h).
 *
 * The guardian (probe/tracer.h) traces the command from before its exec with PTRACE_O_TRACEEXEC,
 * and, unless --no-children, PTRACE_O_TRACEFORK and TRACEVFORK, with the fork watch (a seccomp
 * filter that has the guardian trace each thread that creates a process or execs; without it,
 * TRACECLONE traces every thread): every process the command starts, at any depth and from any
 * thread, is traced from its birth, and stays traced until it ends or the recording does. The
 * guardian resumes fork and vfork stops itself (one stop per process created, none per thread,
 * no round trip to gilscope); gilscope sees the exec stops. An exec of an image that is not
 * CPython (cached by device and inode) goes on at once.
 * An exec of CPython is handed over as the launched command always was: a breakpoint at the
 * image's entry point, the GIL probes and the stack sampler set up there (before its first
 * bytecode), then the journal committed (tracer.h) and the process let go, still traced. One
 * hand-over at a time: another CPython that execs meanwhile waits, stopped at its exec, for its
 * turn (a few milliseconds each). With --no-children the command alone is traced (its fork()
 * children inherit its probes), and it is detached once handed over, as before.
 * The launched command's own end is reaped here or by the loop (gilscope is its parent).
 * With the stops at exec (launch.c: the BPF scheduler source) the tree is created with children 0:
 * the command alone is the guardian's, its descendants are attach.c's.
 */
#ifndef GS_PROCTREE_H
#define GS_PROCTREE_H

#include <stdint.h>
#include <sys/types.h>

struct gs_session;
struct gs_proctree;

/* Follows root (seized by the guardian, held before its exec). children: the whole tree. */
struct gs_proctree *gs_proctree_new(pid_t root, int children);
void gs_proctree_free(struct gs_proctree *t);
/* The descriptor to poll for the next report (-1: nothing is followed any more). Asks the
 * guardian for it first when needed. */
int gs_proctree_fd(struct gs_proctree *t);
/* The report is there (the descriptor polled readable): takes and handles it, and the reports
 * that wait already behind it (32 at most). */
void gs_proctree_service(struct gs_session *S);
/* No tracee is left (every process of the tree ended). */
int gs_proctree_done(const struct gs_proctree *t);
/* Counts for the recording: execs seen, CPythons handed over. */
void gs_proctree_counts(const struct gs_proctree *t, uint64_t *execs, uint64_t *pythons);

#endif
