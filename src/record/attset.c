/* attset.c - the processes a `record -p` holds (see attset.h). */
#define _GNU_SOURCE
#include "record/attset.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct gs_att *gs_attset_find(struct gs_attset *s, pid_t pid)
{
	struct gs_att *first = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->a[i].pid == pid) {
			if (!s->a[i].ended)
				return &s->a[i];
			if (!first)
				first = &s->a[i];
		}
	return first;
}

static void note_exe(struct gs_att *e, uint64_t *dev, uint64_t *ino)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)e->pid);
	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
}

struct gs_att *gs_attset_add(struct gs_attset *s, pid_t pid, int kind)
{
	struct gs_att *e;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->a = gs_realloc_array(s->a, s->cap, sizeof(*s->a));
	}
	e = &s->a[s->n++];
	memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->kind = kind;
	e->pidfd = kind == GS_ATT_REFUSED ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
	e->ended = e->pidfd < 0; /* refused, or gone already */
	e->ended_ns = e->ended ? gs_now_ns() : 0;
	if (kind != GS_ATT_GUARDED) /* proctree.c's: its execs are not looked at here */
		note_exe(e, &e->exe_dev, &e->exe_ino);
	return e;
}

size_t gs_attset_live(const struct gs_attset *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += !s->a[i].ended;
	return n;
}

int gs_attset_exe_changed(struct gs_att *e)
{
	uint64_t dev, ino;
	note_exe(e, &dev, &ino);
	if (!ino || (dev == e->exe_dev && ino == e->exe_ino))
		return 0;
	e->exe_dev = dev;
	e->exe_ino = ino;
	return 1;
}

/* The pids listed in one children file ("PID PID ..."). */
static size_t read_children(const char *path, pid_t *out, size_t max)
{
	char buf[4096];
	long len = gs_read_file(path, buf, sizeof(buf) - 1);
	size_t n = 0;
	char *p = buf;
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	while (*p && n < max) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 0 && v <= 0x7fffffff)
			out[n++] = (pid_t)v;
		p = end;
		while (*p == ' ' || *p == '\n')
			p++;
	}
	return n;
}

size_t gs_attset_children(pid_t pid, pid_t *out, size_t max)
{
	char path[96];
	struct dirent *de;
	DIR *d;
	size_t n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d)) && n < max) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid, de->d_name);
		n += read_children(path, out + n, max - n);
	}
	if (d)
		closedir(d);
	return n;
}

void gs_attset_prune(struct gs_attset *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct gs_att *e = &s->a[i];
		if (e->ended && (e->kind == GS_ATT_STATES || e->kind == GS_ATT_INHERITED || e->kind == GS_ATT_GUARDED))
			continue; /* its pidfd closed when it ended */
		if (e->kind == GS_ATT_REFUSED && kill(e->pid, 0) < 0 && errno == ESRCH)
			continue; /* refused, and gone since (one that ended before it could be attached) */
		s->a[k++] = *e;
	}
	s->n = k;
}

void gs_attset_clear(struct gs_attset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->a[i].pidfd >= 0)
			close(s->a[i].pidfd);
	free(s->a);
	memset(s, 0, sizeof(*s));
}
