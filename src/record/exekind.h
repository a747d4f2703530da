/* exekind.h - is the program a process runs CPython? (recorder-internal)
 *
 * A program counts as CPython when its executable defines _PyRuntime (a static build) or needs
 * a libpython (a shared one). It is read through /proc/PID/exe, the file the process runs
 * whatever its path names in gilscope's mount namespace, and the answer is kept per device and
 * inode (GS_EXEKIND_MAX programs; beyond that each is read again), so that a shell loop running
 * the same programs reads each file once. Used where a process exec()s: the launch's tree
 * (proctree.c) and the processes followed on attach (attach.c).
 */
#ifndef GS_EXEKIND_H
#define GS_EXEKIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GS_EXEKIND_MAX 64

struct gs_exekind {
	struct {
		uint64_t dev, ino;
		int python;
	} e[GS_EXEKIND_MAX];
	size_t n;
};

/* 1 when pid's program is CPython, 0 when not, -1 when it cannot be read (gone). dev and ino
 * (may be NULL): its file's st_dev and st_ino. */
int gs_exekind_python(struct gs_exekind *k, pid_t pid, uint64_t *dev, uint64_t *ino);

#endif
