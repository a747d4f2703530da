/* tracefs.h - tracefs: finding or mounting it, tracepoint ids and field offsets, uprobe definitions.
 *
 * Everything is read and written as tracefs text files (events/SYSTEM/EVENT/{id,format},
 * uprobe_events). Uprobes are named in a group gilscope_PID, so that a run that died leaves
 * entries gs_uprobe_cleanup_stale can tell apart and remove. Errors are -errno, with one
 * sentence in why where the user can fix the cause (mount it, run as root, CAP_SYS_ADMIN).
 */
#ifndef GS_TRACEFS_H
#define GS_TRACEFS_H

#include <stddef.h>
#include <stdint.h>

/* Finds tracefs, mounting it at /sys/kernel/tracing when needed (root only). Returns 0 and the
 * directory, or -errno with a sentence in why. */
int gs_tracefs_open(char *dir, size_t dirlen, char *why, size_t whylen);

/* The perf tracepoint id of SYSTEM:EVENT (events/SYSTEM/EVENT/id), or -errno. */
long gs_tracefs_event_id(const char *dir, const char *system, const char *event);

/* Offset and size of a field in the event's raw record (events/SYSTEM/EVENT/format). */
int gs_tracefs_field(const char *dir, const char *system, const char *event, const char *field, unsigned *offset,
		     unsigned *size);
/* Parses a format file's text (for tests). */
int gs_tracefs_parse_field(const char *format, const char *field, unsigned *offset, unsigned *size);

/* Defines an entry uprobe GROUP/EVENT at file offset off of path. 0 or -errno. */
int gs_uprobe_add(const char *dir, const char *group, const char *event, const char *path, uint64_t off);
/* Removes it. 0 or -errno. */
int gs_uprobe_del(const char *dir, const char *group, const char *event);

/* Removes uprobes left by gilscope runs that no longer exist (group gilscope_PID with PID
 * dead). Returns the number removed. */
int gs_uprobe_cleanup_stale(const char *dir);

#endif
