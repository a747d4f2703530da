/* discover.h - the host's CPython processes, for `serve --all-python` and `top --all-python`.
 *
 * Contract: gs_discover_poll scans /proc and writes to out the processes it did not return
 * before (the first call: every one running), at most max; those left over come in the next
 * call. A process is returned when it runs CPython: its executable (/proc/PID/exe, read through
 * the process's own view, so any mount namespace) defines _PyRuntime or needs a libpython, or
 * its maps name a libpython (an embedding program); when match is given, its command line
 * (/proc/PID/cmdline, the arguments joined by spaces) matches that POSIX extended regular
 * expression; when user is given, its real uid (/proc/PID/status) is that user's. Never
 * gilscope itself, any of its descendants, nor any of its ancestors as they were at
 * gs_discover_new (a Python wrapper or test runner that started gilscope). A process is known
 * by its pid and start time (a pid reused is a new process) and returned once. Whether it runs
 * CPython is decided once per executable it runs (again after an exec of another program), so an
 * embedding program that loads libpython after its start is missed; its user and command line
 * are looked at again on every poll until it is returned (a setuid or a rewritten command line
 * may make it qualify later). The executables' answers are kept by device and inode; the
 * processes in a hash by pid (a poll costs one look per /proc entry). Memory: what is remembered
 * of a process goes once it is gone.
 * gs_discover_new returns 0, or -EINVAL with one sentence in why (a regex that does not compile,
 * an unknown user); gs_discover_free(NULL) is a no-op. gs_discover_cb is poll with the
 * signature of gs_record_opts.discover (ctx: the gs_discover).
 */
#ifndef GS_RECORD_DISCOVER_H
#define GS_RECORD_DISCOVER_H

#include <stddef.h>
#include <sys/types.h>

struct gs_discover;

int gs_discover_new(const char *match, const char *user, struct gs_discover **out, char *why, size_t whylen);
size_t gs_discover_poll(struct gs_discover *d, pid_t *out, size_t max);
size_t gs_discover_cb(void *ctx, pid_t *out, size_t max);
void gs_discover_free(struct gs_discover *d);

#endif
