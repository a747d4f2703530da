/* discover.c - the host's CPython processes, polled (discover.h). */
#define _GNU_SOURCE
#include "record/discover.h"
#include "base/procfs.h"
#include "base/util.h"
#include "cpython/elfsym.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GS_DISCOVER_EXES 1024 /* executables' answers kept (then forgotten all at once) */
#define GS_DISCOVER_DEPTH 64  /* parents followed to find gilscope among a process's ancestors */

/* A process looked at: returned, or not returned yet while it runs this executable. */
struct known {
	pid_t pid;
	uint64_t start; /* start time (clock ticks since boot): a reused pid is another process */
	dev_t dev;
	ino_t ino;
	int returned;
	int python;    /* it runs CPython (decided once per executable it runs) */
	int ours;      /* gilscope, one of its descendants or ancestors: never returned */
	unsigned seen; /* the scan that saw it last */
};

struct ancestor {
	pid_t pid;
	uint64_t start;
};

struct exe {
	dev_t dev;
	ino_t ino;
	int python;
};

struct gs_discover {
	regex_t re;
	int have_re, have_uid;
	uid_t uid;
	pid_t self;
	struct known *known;
	size_t nknown, cap_known;
	uint32_t *slots; /* pid hash: index in known + 1, 0 free; rebuilt after each poll */
	size_t nslots;
	struct ancestor anc[GS_DISCOVER_DEPTH]; /* gilscope's parent, its parent... at gs_discover_new */
	int nanc;
	struct exe *exes;
	size_t nexes;
	unsigned scan;
};

/* Fields 4 (ppid) and 22 (starttime) of /proc/PID/stat, read after the last ')' (the name
 * before it may hold anything). 0 or -1. */
static int stat_fields(pid_t pid, pid_t *ppid, uint64_t *start)
{
	char path[64], buf[1024], *c;
	long n;
	uint64_t v = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((n = gs_read_file(path, buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	if (!(c = strrchr(buf, ')')))
		return -1;
	c++;
	/* after ')': field 3 (state) is the first; field k is the (k - 2)th */
	for (int field = 3; field <= 22; field++) {
		while (*c == ' ')
			c++;
		if (!*c)
			return -1;
		if (field == 4 || field == 22) {
			char *end;
			errno = 0;
			v = strtoull(c, &end, 10);
			if (errno || end == c)
				return -1;
			if (field == 4)
				*ppid = (pid_t)v;
		}
		while (*c && *c != ' ')
			c++;
	}
	*start = v;
	return 0;
}

/* Is pid (started at start) gilscope, one of its descendants or one of its ancestors (a Python
 * wrapper or test runner that started gilscope)? */
static int ours(const struct gs_discover *d, pid_t pid, uint64_t start)
{
	for (int i = 0; i < d->nanc; i++)
		if (d->anc[i].pid == pid && d->anc[i].start == start)
			return 1;
	for (int depth = 0; pid > 1 && depth < GS_DISCOVER_DEPTH; depth++) {
		uint64_t since;
		pid_t ppid;
		if (pid == d->self)
			return 1;
		if (stat_fields(pid, &ppid, &since) < 0)
			return 0;
		pid = ppid;
	}
	return 0;
}

static int real_uid(pid_t pid, uid_t *uid)
{
	char path[64], buf[4096], *l;
	long n;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((n = gs_read_file(path, buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	if (!(l = strstr(buf, "\nUid:")))
		return -1;
	errno = 0;
	*uid = (uid_t)strtoul(l + 5, NULL, 10);
	return errno ? -1 : 0;
}

static int cmdline_matches(const struct gs_discover *d, pid_t pid)
{
	char path[64], buf[8192];
	long n;
	if (!d->have_re)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((n = gs_read_file(path, buf, sizeof(buf) - 1)) <= 0)
		return 0; /* a kernel thread, or gone */
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	buf[n] = '\0';
	for (long i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return regexec(&d->re, buf, 0, NULL, 0) == 0;
}

static int maps_libpython(const struct gs_map *m, void *arg)
{
	const char *base = strrchr(m->path, '/');
	(void)arg;
	return base && strncmp(base + 1, "libpython", 9) == 0;
}

/* Does the executable (or a library pid maps) hold a CPython runtime? */
static int runs_python(struct gs_discover *d, pid_t pid, const struct stat *st)
{
	char exe[64];
	struct gs_elf *e;
	uint64_t a, s;
	int yes = 0;
	for (size_t i = 0; i < d->nexes; i++)
		if (d->exes[i].dev == st->st_dev && d->exes[i].ino == st->st_ino) {
			yes = d->exes[i].python;
			goto maps;
		}
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (gs_elf_open(exe, &e) == 0) {
		yes = gs_elf_dynsym(e, "_PyRuntime", &a, &s) == 0 || gs_elf_symbol(e, "_PyRuntime", &a, &s) == 0 ||
		      gs_elf_needs(e, "libpython");
		gs_elf_free(e);
	}
	if (d->nexes == GS_DISCOVER_EXES)
		d->nexes = 0;
	d->exes[d->nexes++] = (struct exe){ .dev = st->st_dev, .ino = st->st_ino, .python = yes };
maps:
	return yes || gs_maps_foreach(pid, maps_libpython, NULL) == 1;
}

static uint32_t *known_slot(struct gs_discover *d, pid_t pid)
{
	size_t i = ((uint32_t)pid * 2654435761u) & (d->nslots - 1);
	while (d->slots[i] && d->known[d->slots[i] - 1].pid != pid)
		i = (i + 1) & (d->nslots - 1);
	return &d->slots[i];
}

static struct known *known_find(struct gs_discover *d, pid_t pid)
{
	uint32_t v = d->nslots ? *known_slot(d, pid) : 0;
	return v ? &d->known[v - 1] : NULL;
}

/* The hash from the known array (after a sweep moved entries, or to grow it: kept under half full). */
static void known_rehash(struct gs_discover *d, size_t want)
{
	if (want * 2 > d->nslots) {
		free(d->slots);
		d->nslots = d->nslots ? d->nslots : 512;
		while (want * 2 > d->nslots)
			d->nslots *= 2;
		d->slots = gs_calloc(d->nslots, sizeof(*d->slots));
	} else {
		memset(d->slots, 0, d->nslots * sizeof(*d->slots));
	}
	for (size_t i = 0; i < d->nknown; i++)
		*known_slot(d, d->known[i].pid) = (uint32_t)i + 1;
}

static struct known *known_add(struct gs_discover *d, pid_t pid)
{
	if (d->nknown == d->cap_known) {
		d->cap_known = d->cap_known ? 2 * d->cap_known : 256;
		d->known = gs_realloc_array(d->known, d->cap_known, sizeof(*d->known));
	}
	memset(&d->known[d->nknown], 0, sizeof(d->known[0]));
	d->known[d->nknown].pid = pid;
	d->nknown++;
	if (d->nknown * 2 > d->nslots)
		known_rehash(d, d->nknown);
	else
		*known_slot(d, pid) = (uint32_t)d->nknown;
	return &d->known[d->nknown - 1];
}

/* One process of the scan: 1 when it is to be returned now. Whether it runs CPython is decided
 * once per executable it runs; its user and command line are looked at on every poll until it is
 * returned (a setuid or a rewritten command line may make it qualify later). */
static int consider(struct gs_discover *d, pid_t pid)
{
	char exe[64];
	struct known *k = known_find(d, pid);
	struct stat st;
	uint64_t start;
	pid_t ppid;
	uid_t uid;
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	if (stat_fields(pid, &ppid, &start) < 0 || stat(exe, &st) < 0)
		return 0; /* gone, a kernel thread, or not ours to read */
	if (k && k->start == start && k->returned) {
		k->seen = d->scan;
		return 0;
	}
	if (!k || k->start != start) { /* a new process (or a reused pid) */
		if (!k)
			k = known_add(d, pid);
		k->start = start;
		k->returned = 0;
		k->ours = ours(d, pid, start);
		k->dev = 0;
		k->ino = 0;
		k->python = 0;
	}
	k->seen = d->scan;
	if (k->ours)
		return 0;
	if (k->dev != st.st_dev || k->ino != st.st_ino) { /* new, or exec'd another program */
		k->dev = st.st_dev;
		k->ino = st.st_ino;
		k->python = runs_python(d, pid, &st);
	}
	return k->python && (!d->have_uid || (real_uid(pid, &uid) == 0 && uid == d->uid)) && cmdline_matches(d, pid);
}

size_t gs_discover_poll(struct gs_discover *d, pid_t *out, size_t max)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	size_t n = 0;
	if (!dir)
		return 0;
	d->scan++;
	while ((de = readdir(dir)) != NULL) {
		uint64_t v;
		struct known *k;
		if (de->d_name[0] < '1' || de->d_name[0] > '9' || gs_parse_u64(de->d_name, &v) < 0 || v > INT32_MAX)
			continue;
		if (n < max && consider(d, (pid_t)v)) {
			out[n++] = (pid_t)v;
			k = known_find(d, (pid_t)v);
			k->returned = 1;
		} else if (n >= max && (k = known_find(d, (pid_t)v)) != NULL) {
			k->seen = d->scan; /* not looked at (out is full): kept as it was */
		}
	}
	closedir(dir);
	for (size_t i = 0; i < d->nknown;) /* the processes gone */
		if (d->known[i].seen != d->scan)
			d->known[i] = d->known[--d->nknown];
		else
			i++;
	known_rehash(d, d->nknown);
	return n;
}

size_t gs_discover_cb(void *ctx, pid_t *out, size_t max) { return gs_discover_poll(ctx, out, max); }

int gs_discover_new(const char *match, const char *user, struct gs_discover **out, char *why, size_t whylen)
{
	struct gs_discover *d = gs_calloc(1, sizeof(*d));
	int err;
	*out = NULL;
	d->self = getpid();
	for (pid_t pid = getppid(); pid > 1 && d->nanc < GS_DISCOVER_DEPTH; d->nanc++) {
		pid_t ppid;
		if (stat_fields(pid, &ppid, &d->anc[d->nanc].start) < 0)
			break;
		d->anc[d->nanc].pid = pid;
		pid = ppid;
	}
	d->exes = gs_calloc(GS_DISCOVER_EXES, sizeof(*d->exes));
	if (match && (err = regcomp(&d->re, match, REG_EXTENDED | REG_NOSUB)) != 0) {
		char msg[256];
		regerror(err, &d->re, msg, sizeof(msg));
		snprintf(why, whylen, "invalid --match '%s' (a POSIX extended regular expression): %s", match, msg);
		goto fail;
	}
	d->have_re = match != NULL;
	if (user) {
		struct passwd *pw = getpwnam(user);
		uint64_t v;
		if (pw) {
			d->uid = pw->pw_uid;
		} else if (gs_parse_u64(user, &v) == 0 && v < UINT32_MAX) {
			d->uid = (uid_t)v; /* a numeric uid with no name */
		} else {
			snprintf(why, whylen, "invalid --user '%s' (no such user on this host)", user);
			goto fail;
		}
		d->have_uid = 1;
	}
	*out = d;
	return 0;
fail:
	gs_discover_free(d);
	return -EINVAL;
}

void gs_discover_free(struct gs_discover *d)
{
	if (!d)
		return;
	if (d->have_re)
		regfree(&d->re);
	free(d->known);
	free(d->slots);
	free(d->exes);
	free(d);
}
