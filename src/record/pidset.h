/* pidset.h - a set of process ids (record --python-only: the processes that run CPython).
 *
 * An open-addressing hash set of non-zero 32-bit ids that grows by doubling past half full; no
 * removal (a process that ran CPython stays in: its records before an exec of something else
 * were Python's). A NULL set is empty and adding to it does nothing.
 */
#ifndef GS_PIDSET_H
#define GS_PIDSET_H

#include <stddef.h>
#include <stdint.h>

struct gs_pidset;

struct gs_pidset *gs_pidset_new(void);
void gs_pidset_free(struct gs_pidset *s);
void gs_pidset_add(struct gs_pidset *s, uint32_t pid); /* 0 is never a member */
int gs_pidset_has(const struct gs_pidset *s, uint32_t pid);
size_t gs_pidset_count(const struct gs_pidset *s);

#endif
