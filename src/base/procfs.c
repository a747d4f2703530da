/* procfs.c - /proc readers. Hand-written cursor parsing: paths may contain spaces. */
#define _GNU_SOURCE
#include "base/procfs.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

/* "MAJ:MIN INODE" then blanks (before the path, if any). NULL when malformed. */
static const char *parse_dev_inode(const char *p, struct gs_map *m)
{
	uint64_t maj, min, ino = 0;
	int digits = 0;
	if (!(p = gs_parse_hex(p, &maj)) || *p++ != ':' || !(p = gs_parse_hex(p, &min)) || *p++ != ' ')
		return NULL;
	if (maj > 0xfffff || min > 0xfffff)
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (ino > (UINT64_MAX - d) / 10)
			return NULL;
		ino = ino * 10 + d;
	}
	if (!digits || (*p && *p != ' ' && *p != '\n'))
		return NULL;
	m->dev_major = (unsigned)maj;
	m->dev_minor = (unsigned)min;
	m->inode = ino;
	while (*p == ' ')
		p++;
	return p;
}

int gs_maps_parse_line(const char *line, struct gs_map *m)
{
	const char *p = line;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (!(p = gs_parse_hex(p, &m->start)) || *p++ != '-' || !(p = gs_parse_hex(p, &m->end)) || *p++ != ' ')
		return -1;
	if (strlen(p) < 5 || p[4] != ' ')
		return -1;
	memcpy(m->perms, p, 4);
	p += 5;
	if (!(p = gs_parse_hex(p, &m->offset)) || *p != ' ')
		return -1;
	p++;
	if (!(p = parse_dev_inode(p, m)))
		return -1;
	n = strlen(p);
	while (n > 0 && (p[n - 1] == '\n'))
		n--;
	if (n >= sizeof(m->path))
		return -1;
	memcpy(m->path, p, n);
	m->path[n] = '\0';
	if (n > 10 && strcmp(m->path + n - 10, " (deleted)") == 0) {
		m->deleted = 1;
		m->path[n - 10] = '\0';
	}
	if (m->end < m->start)
		return -1;
	return 0;
}

int gs_maps_foreach(pid_t pid, int (*cb)(const struct gs_map *m, void *arg), void *arg)
{
	char path[64];
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	struct gs_map *m = gs_malloc(sizeof(*m));

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		if (gs_maps_parse_line(line, m) < 0)
			continue;
		ret = cb(m, arg);
		if (ret)
			break;
	}
	fclose(f);
out:
	free(line);
	free(m);
	return ret;
}

int gs_mem_read(pid_t pid, uint64_t addr, void *dst, size_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EFAULT;
	if (errno == ENOSYS || errno == EPERM) {
		/* fall back to /proc/PID/mem */
		char path[64];
		int fd;
		snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = pread(fd, dst, len, (off_t)addr);
		close(fd);
		return n == (ssize_t)len ? 0 : -EFAULT;
	}
	return -errno;
}

uint64_t gs_proc_auxv(pid_t pid, uint64_t type)
{
	char path[64];
	uint64_t v[2], entry = 0;
	int fd;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && read(fd, v, sizeof(v)) == sizeof(v) && v[0] != 0 /* AT_NULL */)
		if (v[0] == type) {
			entry = v[1];
			break;
		}
	if (fd >= 0)
		close(fd);
	return entry;
}

int gs_mem_write(pid_t pid, uint64_t addr, const void *src, size_t len)
{
	char path[64];
	int fd;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pwrite(fd, src, len, (off_t)addr);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

int gs_task_list(pid_t pid, pid_t **tids)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int n = 0, cap = 16;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	*tids = gs_realloc_array(NULL, (size_t)cap, sizeof(pid_t));
	while ((de = readdir(d))) {
		uint64_t v;
		if (gs_parse_u64(de->d_name, &v) < 0 || v == 0 || v > 0x7fffffff)
			continue;
		if (n == cap) {
			cap *= 2;
			*tids = gs_realloc_array(*tids, (size_t)cap, sizeof(pid_t));
		}
		(*tids)[n++] = (pid_t)v;
	}
	closedir(d);
	return n;
}

int gs_task_comm(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[96];
	long n;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	n = gs_read_file(path, buf, len);
	if (n < 0)
		return (int)n;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

char gs_task_state(pid_t pid, pid_t tid)
{
	char path[96], buf[1024];
	const char *p;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	if (gs_read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
	if (!p || p[1] != ' ' || !p[2])
		return 0;
	return p[2];
}

int gs_proc_status_u64(pid_t pid, const char *key, int base, uint64_t *out)
{
	char path[64], buf[4096], field[64];
	const char *p;
	uint64_t v = 0;
	long n;
	int digits = 0;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	n = gs_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	snprintf(field, sizeof(field), "\n%s:", key);
	if (strncmp(buf, field + 1, strlen(field + 1)) == 0) /* the first line has no newline before it */
		p = buf + strlen(field + 1);
	else if ((p = strstr(buf, field)) != NULL)
		p += strlen(field);
	else
		return -ENOENT;
	while (*p == ' ' || *p == '\t')
		p++;
	for (;; p++, digits++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			break;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -EINVAL;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (!digits)
		return -EINVAL;
	*out = v;
	return 0;
}

pid_t gs_task_tgid(pid_t tid)
{
	uint64_t v;
	int err = gs_proc_status_u64(tid, "Tgid", 10, &v);
	if (err < 0)
		return err == -ENOENT ? -EINVAL : err;
	return v <= 0x7fffffff ? (pid_t)v : -EINVAL;
}

int gs_proc_exe(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Opens name and keeps it if it is m's file: the fd, -ESTALE (another file), or -errno. The
 * target may have put a FIFO or a device at that name: opened without blocking, and only a
 * regular file is kept (O_NONBLOCK changes nothing for one). */
static int open_if_same(const char *name, const struct gs_map *m)
{
	struct stat st;
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_ino != m->inode || major(st.st_dev) != m->dev_major ||
	    minor(st.st_dev) != m->dev_minor) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

int gs_proc_open_mapped(pid_t pid, const struct gs_map *m, char *path, size_t pathlen)
{
	int fd, stale = 0, denied = 0;

	if (!m->path[0] || !m->inode)
		return -EINVAL;
	/* GILSCOPE_NO_MAP_FILES=1: as without the rights map_files needs (tests) */
	if (!getenv("GILSCOPE_NO_MAP_FILES")) {
		snprintf(path, pathlen, "/proc/%d/map_files/%lx-%lx", (int)pid, (unsigned long)m->start,
			 (unsigned long)m->end);
		if ((fd = open_if_same(path, m)) >= 0)
			return fd;
		stale |= fd == -ESTALE;
	}
	if (m->deleted) /* no name leads to it any more */
		return -ESTALE;
	if (m->path[0] == '/') {
		snprintf(path, pathlen, "/proc/%d/root%s", (int)pid, m->path);
		if ((fd = open_if_same(path, m)) >= 0)
			return fd;
		stale |= fd == -ESTALE;
		denied |= fd == -EACCES || fd == -EPERM;
	}
	snprintf(path, pathlen, "%s", m->path);
	if ((fd = open_if_same(path, m)) >= 0)
		return fd;
	stale |= fd == -ESTALE;
	denied |= fd == -EACCES || fd == -EPERM;
	path[0] = '\0';
	return stale ? -ESTALE : denied ? -EACCES : -ENOENT;
}

const char *gs_proc_mapped_strerror(int err, const struct gs_map *m)
{
	if (err == -ESTALE)
		return m->deleted ? "deleted after start" : "replaced since it started";
	if (err == -EINVAL)
		return "not a file";
	if (err == -EACCES)
		return "not readable by gilscope (permission denied)";
	return "not visible from here";
}

int gs_nspid_parse(const char *status, uint32_t *ids, int max)
{
	const char *p = strncmp(status, "NSpid:", 6) == 0 ? status : strstr(status, "\nNSpid:");
	int n = 0;
	if (!p)
		return -1;
	p = strchr(p + 1, ':') + 1;
	for (;;) {
		uint64_t v = 0;
		int digits = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || !*p)
			break;
		for (; *p >= '0' && *p <= '9'; p++, digits++)
			if ((v = v * 10 + (uint64_t)(*p - '0')) > 0x7fffffff)
				return -1;
		if (!digits || v == 0 || (*p && *p != ' ' && *p != '\t' && *p != '\n'))
			return -1;
		if (n < max)
			ids[n] = (uint32_t)v;
		n++;
	}
	if (n == 0)
		return -1;
	return n < max ? n : max;
}

int gs_task_nspid(pid_t tid, uint32_t *ids, int max)
{
	char path[64], buf[4096];
	long n;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	n = gs_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	n = gs_nspid_parse(buf, ids, max);
	return n < 0 ? -EINVAL : (int)n;
}

int gs_proc_pidns(pid_t pid, uint64_t *ino)
{
	char path[64];
	struct stat st;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/pid");
	if (stat(path, &st) < 0)
		return -errno;
	*ino = (uint64_t)st.st_ino;
	return 0;
}
