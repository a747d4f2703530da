/* util.c - messages, checked allocation, clocks, small file helpers. */
#define _GNU_SOURCE
#include "base/util.h"

#include <inttypes.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int gs_verbose = 1;

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
	fputs("gilscope: ", stderr);
	if (prefix)
		fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void gs_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg("error: ", fmt, ap);
	va_end(ap);
}

void gs_warn(const char *fmt, ...)
{
	va_list ap;
	if (gs_verbose < 1)
		return;
	va_start(ap, fmt);
	vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void gs_info(const char *fmt, ...)
{
	va_list ap;
	if (gs_verbose < 1)
		return;
	va_start(ap, fmt);
	vmsg(NULL, fmt, ap);
	va_end(ap);
}

void gs_debug(const char *fmt, ...)
{
	va_list ap;
	if (gs_verbose < 2)
		return;
	va_start(ap, fmt);
	vmsg("debug: ", fmt, ap);
	va_end(ap);
}

static void oom(size_t n)
{
	fprintf(stderr, "gilscope: error: out of memory (allocating %zu bytes)\n", n);
	abort();
}

void *gs_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

uint64_t gs_fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

void *gs_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		oom(nmemb * size);
	return p;
}

void *gs_realloc_array(void *p, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n))
		oom(SIZE_MAX);
	p = realloc(p, n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

char *gs_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = gs_malloc(n);
	memcpy(d, s, n);
	return d;
}

uint64_t gs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

long gs_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd;

	if (size == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return (long)len;
}

int gs_write_file(const char *path, const char *s, int append)
{
	size_t len = strlen(s);
	int fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0 || (size_t)n != len) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		return -e;
	}
	if (close(fd) < 0)
		return -errno;
	return 0;
}

/* The directory part of path is world-writable (like /tmp)? */
static int dir_world_writable(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;
	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return 1; /* cannot tell: be careful */
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	return stat(dir, &st) == 0 && (st.st_mode & S_IWOTH);
}

int gs_open_output(const char *path, char *why, size_t whylen)
{
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: opening a FIFO without a reader must not hang (cleared below) */
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			snprintf(why, whylen,
				 "refusing to write %s: it is a symbolic link (gilscope does not follow them "
				 "for its output files; remove it or choose another path)",
				 path);
		else if (e == ENXIO)
			snprintf(why, whylen, "cannot create %s: it is a FIFO that nothing reads", path);
		else
			snprintf(why, whylen, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		snprintf(why, whylen, "cannot create %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (S_ISREG(st.st_mode)) {
		if (st.st_nlink > 1) {
			snprintf(why, whylen,
				 "refusing to write %s: it has %lu hard links (another file would be "
				 "overwritten too); remove it or choose another path",
				 path, (unsigned long)st.st_nlink);
			close(fd);
			return -EMLINK;
		}
		if (st.st_uid != geteuid() && dir_world_writable(path)) {
			snprintf(why, whylen,
				 "refusing to write %s: it belongs to user %u and sits in a world-writable "
				 "directory; remove it or choose another path",
				 path, (unsigned)st.st_uid);
			close(fd);
			return -EPERM;
		}
		if (ftruncate(fd, 0) < 0) {
			e = errno;
			snprintf(why, whylen, "cannot truncate %s: %s", path, strerror(e));
			close(fd);
			return -e;
		}
		if ((st.st_mode & S_IWOTH) && st.st_uid == geteuid())
			(void)fchmod(fd, st.st_mode & 07755 & ~(mode_t)S_IWOTH);
	} else if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		snprintf(why, whylen, "cannot write %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		e = errno;
		snprintf(why, whylen, "cannot create %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

FILE *gs_fopen_output(const char *path, char *why, size_t whylen)
{
	int fd = gs_open_output(path, why, whylen);
	FILE *f;
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	if (!f) {
		snprintf(why, whylen, "cannot create %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

int gs_open_owned_nofollow(const char *path, uid_t owner)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY), e;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((st.st_uid != owner && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return -EPERM;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int gs_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return -1;
	}
	*out = v;
	return 0;
}

int gs_parse_i64(const char *s, int64_t *out)
{
	uint64_t v;
	int neg = 0;
	if (s && *s == '-') {
		neg = 1;
		s++;
	}
	if (gs_parse_u64(s, &v) < 0 || v > (uint64_t)INT64_MAX + (uint64_t)neg)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

const char *gs_parse_hex(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0, d;
	while ((d = hexval(*p)) >= 0) {
		if (n++ >= 16)
			return NULL;
		v = v << 4 | (uint64_t)d;
		p++;
	}
	if (n == 0)
		return NULL;
	*out = v;
	return p;
}

void gs_argv_join(char *buf, size_t len, char *const *argv)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int i = 0; argv[i] && o + 2 < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s", i ? " " : "", argv[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

void gs_fmt_dur(char *buf, size_t len, uint64_t ns)
{
	if (ns >= 10000000000ull)
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	else if (ns >= 1000000000ull)
		snprintf(buf, len, "%.3fs", (double)ns / 1e9);
	else if (ns >= 1000000ull)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else if (ns >= 1000ull)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%" PRIu64 "ns", ns);
}
