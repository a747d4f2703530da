/* meta.h - what the recording says about the run and its processes (META records), and the
 * programs each process ran.
 *
 * Contract: run metadata (pid 0) fills the run's fields of struct gs_analysis (the command,
 * the mode, the recorder's own costs, the stack sampler's figures, the native figures), one
 * table row per key; unknown keys are ignored, and a number that does not parse leaves its field
 * as it was. A fact reads the same written as text (format 1) or as a number (format 2); format
 * 1's space-separated "native.stats" is read into the named native figures. Process
 * metadata (python.version, .path, .build, .error, mechanism) describes the process's current
 * image, the program it runs since its start or its last exec(): each process keeps its images
 * in order (struct gs_image). The process's own python_* fields are those of its last CPython
 * image, so an exec into something else keeps what the GIL figures were recorded from, while
 * is_python, which lets GIL events count, follows the current image. An image that is CPython
 * only because it was forked from one and never used a GIL (subprocess's child before its exec)
 * is forgotten at the exec: the process is not a Python process. `account_from` is not
 * handled here (it restarts the accounting: analysis.c). "argv" (LEN:ARG for each argument, as
 * the recorder read them at the exec) belongs to the image; a fork() child's first image is a copy
 * of its parent's.
 */
#ifndef GS_ANALYSIS_META_H
#define GS_ANALYSIS_META_H

#include "analysis/analysis.h"
#include "base/recfile.h"

/* A META record of the run (pid 0), decoded (base/recfile.h gs_meta_decode): text or number. */
void gs_meta_run(struct gs_analysis *a, const struct gs_meta *m);
/* A META record of process p, true since `at` (the record's time, or its earlier arg64): "argv"
 * belongs to the image p ran at `at` (none when p started after it: the pid's earlier process),
 * every other fact to its current image. */
void gs_meta_process(struct gs_process *p, const struct gs_meta *m, uint64_t at);
/* p exec()'d at now: a new image, not known to be CPython until its python.version. */
void gs_meta_exec(struct gs_process *p, uint64_t now);
/* p was forked from parent at now: same image. */
void gs_meta_fork(struct gs_process *p, const struct gs_process *parent, uint64_t now);
/* p was forked from parent, not a CPython, at now: a first image with the parent's argv. */
void gs_meta_fork_argv(struct gs_process *p, const struct gs_process *parent, uint64_t now);
void gs_meta_free(struct gs_process *p);
/* The next argument of an image's argv (*cur: where to read, moved past it): its bytes and *len,
 * or NULL at the end (or where the encoding is malformed). */
const char *gs_argv_next(const char **cur, size_t *len);

#endif
