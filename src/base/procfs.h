/* procfs.h - another process seen through /proc: maps, memory, threads, names, states. */
#ifndef GS_PROCFS_H
#define GS_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gs_map {
	uint64_t start, end, offset;
	char perms[5];
	unsigned dev_major, dev_minor; /* the file's device (hex "MAJ:MIN" in maps; 0:0 anonymous) */
	uint64_t inode;                /* its inode (0 anonymous) */
	int deleted;                   /* path ended in " (deleted)" (stripped from path) */
	char path[4096];               /* empty for anonymous mappings */
};

/* Parses one line of /proc/PID/maps. Returns 0, or -1 for a malformed line. */
int gs_maps_parse_line(const char *line, struct gs_map *m);

/* Opens the file behind mapping m of pid as pid itself sees it, which may not be what the same
 * path names in gilscope's mount namespace (a container, a chroot, a bind mount, a file deleted
 * or replaced since it was mapped). Tried in order: /proc/PID/map_files/START-END (the mapped
 * file itself, deleted or not; root only), /proc/PID/root/PATH (the process's root and mounts),
 * PATH (gilscope's own view, for a chroot whose maps paths are gilscope's; map_files is skipped
 * when GILSCOPE_NO_MAP_FILES is set, for tests); the first whose
 * fstat matches m's device and inode wins. Returns the fd (O_RDONLY, close-on-exec) and writes
 * into path the name it was opened by, which keeps naming that file for tools that take a path
 * (libelf, libdwfl, uprobe_events; a map_files name as long as the mapping exists). Errors:
 * -ESTALE (only other files there: replaced since it was mapped, or deleted: m->deleted),
 * -EACCES (a name gilscope may not open), -ENOENT (nothing reachable by any of those names),
 * -EINVAL (an anonymous mapping). A FIFO or device the target put at a name is skipped, never
 * waited on (opened with O_NONBLOCK). */
int gs_proc_open_mapped(pid_t pid, const struct gs_map *m, char *path, size_t pathlen);

/* gs_proc_open_mapped's error as the reason in a sentence ("deleted after start", "replaced
 * since it started", "not readable by gilscope (permission denied)", "not visible from here"). */
const char *gs_proc_mapped_strerror(int err, const struct gs_map *m);

/* The ids of a task in each PID namespace, from the "NSpid:" line of its /proc status text:
 * ids[0] in the namespace of that /proc (the reader's), the last in the task's own. Returns the
 * count (at most max), or -1 when the line is missing or malformed. Pure. */
int gs_nspid_parse(const char *status, uint32_t *ids, int max);

/* gs_nspid_parse on /proc/TID/status. The count, or -errno. */
int gs_task_nspid(pid_t tid, uint32_t *ids, int max);

/* The inode of pid's PID namespace (/proc/PID/ns/pid; pid 0: gilscope's). 0 or -errno. */
int gs_proc_pidns(pid_t pid, uint64_t *ino);

/* Calls cb for each mapping; stops when cb returns non-zero and returns that value.
 * Returns -errno when maps cannot be read. */
int gs_maps_foreach(pid_t pid, int (*cb)(const struct gs_map *m, void *arg), void *arg);

/* Reads len bytes at addr in pid's memory. 0, or -errno (-ESRCH: process gone). */
int gs_mem_read(pid_t pid, uint64_t addr, void *dst, size_t len);

/* Writes len bytes at addr in pid's memory through /proc/PID/mem (which may write read-only
 * code pages, as a debugger does; root or ptrace rights needed). 0 or -errno. */
int gs_mem_write(pid_t pid, uint64_t addr, const void *src, size_t len);

/* The value of entry type (AT_ENTRY: 9, AT_BASE: 7, ...) of pid's auxiliary vector
 * (/proc/PID/auxv), 0 when it cannot be read or is not there. */
uint64_t gs_proc_auxv(pid_t pid, uint64_t type);

/* Thread ids of pid, into a growing array. Returns count, or -errno. */
int gs_task_list(pid_t pid, pid_t **tids);

/* The kernel's thread name (comm), at most 16 bytes with the NUL. 0 or -errno. */
int gs_task_comm(pid_t pid, pid_t tid, char *buf, size_t len);

/* The state letter of /proc/PID/task/TID/stat ('R', 'S', 'D', ...), or 0 if unknown. */
char gs_task_state(pid_t pid, pid_t tid);

/* A number field of /proc/PID/status (pid 0: gilscope itself), such as "Tgid", "TracerPid",
 * "VmHWM" (kB) or "CapEff" (base 16): the digits after "KEY:" and blanks. 0, or -errno (the file
 * cannot be read), -ENOENT (no such field) or -EINVAL (no number there). */
int gs_proc_status_u64(pid_t pid, const char *key, int base, uint64_t *out);

/* The thread group id of a task (from /proc/TID/status Tgid). -errno on failure. */
pid_t gs_task_tgid(pid_t tid);

/* The executable path (readlink /proc/PID/exe). 0 or -errno. */
int gs_proc_exe(pid_t pid, char *buf, size_t len);

#endif
