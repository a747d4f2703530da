/* util.h - small helpers shared by every module: messages, checked allocation, clocks. */
#ifndef GS_UTIL_H
#define GS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define GS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Verbosity: 0 quiet (errors only), 1 normal, 2 verbose. */
extern int gs_verbose;

void gs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A duration for people: "12.3s", "1.234s", "12.3ms", "12.3us", "123ns". */
void gs_fmt_dur(char *buf, size_t len, uint64_t ns);

/* FNV-1a over the bytes of s (not its NUL), continuing from h: GS_FNV1A_INIT to start, or a
 * hash so far to chain strings. */
#define GS_FNV1A_INIT 1469598103934665603ull
uint64_t gs_fnv1a(uint64_t h, const char *s);

/* Allocation that aborts with a message on exhaustion; the sizes are overflow-checked. */
void *gs_malloc(size_t n);
void *gs_calloc(size_t nmemb, size_t size);
void *gs_realloc_array(void *p, size_t nmemb, size_t size);
char *gs_strdup(const char *s);

/* CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp gilscope records. */
uint64_t gs_now_ns(void);

/* Reads a whole small file (procfs, tracefs) into a NUL-terminated buffer. Returns length or -errno. */
long gs_read_file(const char *path, char *buf, size_t size);
/* Writes a string to a file opened O_WRONLY (O_APPEND when append). Returns 0 or -errno. */
int gs_write_file(const char *path, const char *s, int append);

/* Creates (or truncates) an output file for writing, the way every output of gilscope is
 * created (gilscope often runs as root and is handed paths in /tmp and other shared places):
 * a symbolic link is never followed (O_NOFOLLOW: -ELOOP), a new file gets mode 0644 (less the
 * umask), an existing regular file must have a single link (no hard link to another file:
 * -EMLINK) and, in a world-writable directory, belong to the caller (as the kernel's
 * protected_regular would require: -EPERM); a world-writable file loses that bit. Character
 * devices and FIFOs (/dev/null, a pipe) are opened as they are. Returns the fd (O_CLOEXEC), or
 * -errno with a sentence naming path in why. */
int gs_open_output(const char *path, char *why, size_t whylen);
/* The same as a stdio stream ("w"); NULL with why set. */
FILE *gs_fopen_output(const char *path, char *why, size_t whylen);

/* Opens path read-only for a file that another party wrote (such as the traced program's
 * /tmp/perf-PID.map) without trusting it: O_NOFOLLOW|O_CLOEXEC (a symbolic link: -ELOOP), never
 * blocking on a FIFO, and refused unless it is a regular file (-EINVAL) owned by `owner` or by
 * root and not writable by group or others (-EPERM). Returns the fd or -errno. */
int gs_open_owned_nofollow(const char *path, uid_t owner);

/* Decimal parsing without sscanf: returns 0 on success, -1 on garbage or overflow. */
int gs_parse_u64(const char *s, uint64_t *out);
/* Hexadecimal digits (no prefix, at most 16) at p: the end of them, or NULL when there are none
 * or too many. */
const char *gs_parse_hex(const char *p, uint64_t *out);
int gs_parse_i64(const char *s, int64_t *out);

/* argv joined by blanks into buf (cut at len - 1 bytes), for showing a command. */
void gs_argv_join(char *buf, size_t len, char *const *argv);

#endif
