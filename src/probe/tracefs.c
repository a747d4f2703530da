/* tracefs.c - tracefs access. */
#define _GNU_SOURCE
#include "probe/tracefs.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static int has_uprobe_events(const char *dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/uprobe_events", dir);
	/* AT_EACCESS: with the effective ids and capabilities (file capabilities, setpriv), not the
	 * real user's */
	return faccessat(AT_FDCWD, p, F_OK, AT_EACCESS) == 0;
}

int gs_tracefs_open(char *dir, size_t dirlen, char *why, size_t whylen)
{
	static const char *const candidates[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	for (size_t i = 0; i < GS_ARRAY_SIZE(candidates); i++)
		if (has_uprobe_events(candidates[i])) {
			snprintf(dir, dirlen, "%s", candidates[i]);
			goto check;
		}
	{
		struct statfs sf;
		if (statfs("/sys/kernel/tracing", &sf) == 0 && sf.f_type == TRACEFS_MAGIC) {
			snprintf(why, whylen,
				 "tracefs (/sys/kernel/tracing) is not accessible to this user: defining the take_gil "
				 "probe needs root, or CAP_SYS_ADMIN and access to tracefs");
			return -EACCES;
		}
	}
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0) {
		int e = errno;
		if ((e == EPERM || e == EACCES) && geteuid() == 0)
			snprintf(
				why, whylen,
				"tracefs is not mounted at /sys/kernel/tracing and this root user may not mount it (no "
				"CAP_SYS_ADMIN: a container or a reduced capability set?); mount it where gilscope "
				"runs "
				"(`mount -t tracefs nodev /sys/kernel/tracing`) or grant CAP_SYS_ADMIN");
		else if (e == EPERM || e == EACCES)
			snprintf(why, whylen,
				 "tracefs is not mounted and mounting it needs root (CAP_SYS_ADMIN): run gilscope as "
				 "root, "
				 "or have root run `mount -t tracefs nodev /sys/kernel/tracing`");
		else if (e == ENOENT || e == ENOTDIR)
			snprintf(why, whylen,
				 "tracefs is not available: /sys/kernel/tracing does not exist (is /sys mounted? a "
				 "kernel "
				 "without CONFIG_TRACING has no tracefs, and gilscope needs its uprobes and sched "
				 "tracepoints)");
		else if (e == ENODEV)
			snprintf(why, whylen,
				 "this kernel has no tracefs (built without CONFIG_TRACING?): gilscope needs its "
				 "uprobes "
				 "and sched tracepoints");
		else
			snprintf(why, whylen,
				 "cannot mount tracefs at /sys/kernel/tracing (%s): mount it with "
				 "`mount -t tracefs nodev /sys/kernel/tracing` and try again",
				 strerror(e));
		return -e;
	}
	snprintf(dir, dirlen, "/sys/kernel/tracing");
	if (!has_uprobe_events(dir)) {
		snprintf(why, whylen, "this kernel has no uprobe support (%s/uprobe_events is missing)", dir);
		return -ENOTSUP;
	}
check : {
	char p[512];
	snprintf(p, sizeof(p), "%s/uprobe_events", dir);
	if (faccessat(AT_FDCWD, p, W_OK, AT_EACCESS) < 0) {
		int e = errno;
		snprintf(why, whylen,
			 "%s is not writable (%s): defining the take_gil probe needs root (CAP_SYS_ADMIN) "
			 "or write access to tracefs",
			 p, strerror(e));
		return -e;
	}
}
	return 0;
}

long gs_tracefs_event_id(const char *dir, const char *system, const char *event)
{
	char p[512], buf[32];
	long n;
	uint64_t v;
	snprintf(p, sizeof(p), "%s/events/%s/%s/id", dir, system, event);
	n = gs_read_file(p, buf, sizeof(buf));
	if (n < 0)
		return n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (gs_parse_u64(buf, &v) < 0)
		return -EINVAL;
	return (long)v;
}

static int parse_uint_after(const char *line, const char *key, unsigned *out)
{
	const char *p = strstr(line, key);
	uint64_t v = 0;
	int digits = 0;
	if (!p)
		return -1;
	p += strlen(key);
	while (*p >= '0' && *p <= '9' && digits < 9) {
		v = v * 10 + (uint64_t)(*p++ - '0');
		digits++;
	}
	if (!digits)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int gs_tracefs_parse_field(const char *format, const char *field, unsigned *offset, unsigned *size)
{
	const char *line = format;
	size_t flen = strlen(field);
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		const char *f = strstr(line, "field:");
		if (f && (!eol || f < eol)) {
			const char *semi = strchr(f, ';');
			if (semi && (!eol || semi < eol)) {
				/* the name is the last identifier before ';' (skipping an array suffix) */
				const char *end = semi;
				if (end > f && end[-1] == ']')
					while (end > f && *end != '[')
						end--;
				const char *start = end;
				while (start > f && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
						     (start[-1] >= 'A' && start[-1] <= 'Z') ||
						     (start[-1] >= '0' && start[-1] <= '9')))
					start--;
				if ((size_t)(end - start) == flen && strncmp(start, field, flen) == 0) {
					char tmp[256];
					size_t n = eol ? (size_t)(eol - line) : strlen(line);
					if (n >= sizeof(tmp))
						n = sizeof(tmp) - 1;
					memcpy(tmp, line, n);
					tmp[n] = '\0';
					if (parse_uint_after(tmp, "offset:", offset) < 0 ||
					    parse_uint_after(tmp, "size:", size) < 0)
						return -EINVAL;
					return 0;
				}
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int gs_tracefs_field(const char *dir, const char *system, const char *event, const char *field, unsigned *offset,
		     unsigned *size)
{
	char p[512];
	char *buf = gs_malloc(16384);
	long n;
	int err;
	snprintf(p, sizeof(p), "%s/events/%s/%s/format", dir, system, event);
	n = gs_read_file(p, buf, 16384);
	err = n < 0 ? (int)n : gs_tracefs_parse_field(buf, field, offset, size);
	free(buf);
	return err;
}

int gs_uprobe_add(const char *dir, const char *group, const char *event, const char *path, uint64_t off)
{
	char p[512], def[4096 + 256];
	if (strpbrk(path, " \t\n"))
		return -EINVAL; /* uprobe_events cannot express paths with blanks */
	snprintf(p, sizeof(p), "%s/uprobe_events", dir);
	snprintf(def, sizeof(def), "p:%s/%s %s:0x%lx\n", group, event, path, (unsigned long)off);
	return gs_write_file(p, def, 1);
}

int gs_uprobe_del(const char *dir, const char *group, const char *event)
{
	char p[512], def[256];
	snprintf(p, sizeof(p), "%s/uprobe_events", dir);
	snprintf(def, sizeof(def), "-:%s/%s\n", group, event);
	return gs_write_file(p, def, 1);
}

int gs_uprobe_cleanup_stale(const char *dir)
{
	char p[512];
	char *buf = gs_malloc(1 << 20);
	long n;
	int removed = 0;
	char *line, *save = NULL;

	snprintf(p, sizeof(p), "%s/uprobe_events", dir);
	n = gs_read_file(p, buf, 1 << 20);
	if (n <= 0) {
		free(buf);
		return 0;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "p:gilscope_1234/take_gil /path:0x..." */
		char group[64], event[64];
		const char *g = strstr(line, ":gilscope_"), *slash, *sp;
		uint64_t pid;
		if (!g || g != line + 1)
			continue;
		g++;
		slash = strchr(g, '/');
		sp = slash ? strchr(slash, ' ') : NULL;
		if (!slash || !sp || (size_t)(slash - g) >= sizeof(group) || (size_t)(sp - slash - 1) >= sizeof(event))
			continue;
		memcpy(group, g, (size_t)(slash - g));
		group[slash - g] = '\0';
		memcpy(event, slash + 1, (size_t)(sp - slash - 1));
		event[sp - slash - 1] = '\0';
		if (gs_parse_u64(group + 9, &pid) < 0 || pid == 0 || pid > 0x7fffffff)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM) {
			/* alive: is it still gilscope? */
			char cp[64], comm[32];
			snprintf(cp, sizeof(cp), "/proc/%d/comm", (int)pid);
			if (gs_read_file(cp, comm, sizeof(comm)) > 0 && strncmp(comm, "gilscope", 8) == 0)
				continue;
		}
		if (gs_uprobe_del(dir, group, event) == 0)
			removed++;
	}
	free(buf);
	return removed;
}
