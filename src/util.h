/* util.h - small helpers shared by every module: messages, checked allocation, clocks. */
#ifndef GS_UTIL_H
#define GS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Verbosity: 0 quiet (errors only), 1 normal, 2 verbose. */
extern int gs_verbose;

void gs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gs_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* Decimal parsing without sscanf: returns 0 on success, -1 on garbage or overflow. */
int gs_parse_u64(const char *s, uint64_t *out);
int gs_parse_i64(const char *s, int64_t *out);

#endif
