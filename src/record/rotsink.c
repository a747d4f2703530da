/* rotsink.c - the recording file, rotated at a size, each file complete (rotsink.h). */
#define _GNU_SOURCE
#include "record/rotsink.h"
#include "base/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_BYTES 128 /* a PYNAME payload (recfile.h: under 128 bytes) */

/* A record to write again at the start of every file (META). */
struct saved {
	struct gs_rec r;
	void *payload;
	size_t plen;
};

/* What the new file must say of a thread alive at the rotation. */
struct thread {
	uint32_t pid, tid;
	char state;         /* THREAD's letter: R (on a CPU or runnable), S, D; 0: not known */
	int holds, waiting; /* the main GIL of its process; a GIL (wait_ref) */
	uint64_t wait_ref;
	char comm[16], pyname[NAME_MAX_BYTES];
};

/* A frame or stack definition, written into a file when a record there first uses it. */
struct def {
	struct gs_rec r;
	void *payload;
	size_t plen;
	uint64_t gen; /* the file it was last written into (rot_sink.gen) */
};

/* Definition ids to their index in rot_sink.defs + 1 (0: free), open addressing. */
struct idmap {
	uint32_t *keys, *vals;
	size_t cap, n;
};

struct proc_gil {
	uint32_t pid;
	uint64_t ref; /* the first GIL reference its GIL events gave: the main GIL */
};

struct rot_sink {
	struct gs_sink sink; /* first */
	const char *path;
	uint64_t max_bytes;
	unsigned max_files;
	struct gs_recwriter *w;
	int failed;          /* said once already */
	uint64_t lost;       /* events lost while the current file was written */
	uint64_t last_ns;    /* the newest record's time */
	struct saved *saved; /* META records */
	size_t nsaved, cap_saved;
	struct def *defs;
	size_t ndefs, cap_defs;
	struct idmap frames, stacks; /* PYFRAME and NATFRAME share their ids; STACK */
	uint64_t gen;                /* the current file: 1 the first, one more at each rotation */
	struct thread *threads;
	size_t nthreads, cap_threads;
	struct proc_gil *gils;
	size_t ngils, cap_gils;
	uint64_t preamble; /* bytes of the current file before its first new record */
};

static void say_failed(struct rot_sink *f, const char *what, int err)
{
	if (!f->failed++)
		gs_err("writing %s failed (%s%s%s): the recording stops here; the program keeps running", f->path, what,
		       *what ? ": " : "", strerror(-err));
}

static struct thread *thread_find(struct rot_sink *f, uint32_t tid, uint32_t pid, int create)
{
	struct thread *t;
	for (size_t i = 0; i < f->nthreads; i++)
		if (f->threads[i].tid == tid)
			return &f->threads[i];
	if (!create || !tid)
		return NULL;
	if (f->nthreads == f->cap_threads) {
		f->cap_threads = f->cap_threads ? 2 * f->cap_threads : 16;
		f->threads = gs_realloc_array(f->threads, f->cap_threads, sizeof(*f->threads));
	}
	t = &f->threads[f->nthreads++];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->tid = tid;
	return t;
}

static void thread_drop(struct rot_sink *f, uint32_t tid)
{
	struct thread *t = thread_find(f, tid, 0, 0);
	if (t)
		*t = f->threads[--f->nthreads];
}

static void save(struct rot_sink *f, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct saved *s;
	if (f->nsaved == f->cap_saved) {
		f->cap_saved = f->cap_saved ? 2 * f->cap_saved : 64;
		f->saved = gs_realloc_array(f->saved, f->cap_saved, sizeof(*f->saved));
	}
	s = &f->saved[f->nsaved++];
	s->r = *r;
	s->plen = payload ? plen : 0;
	s->payload = NULL;
	if (s->plen) {
		s->payload = gs_malloc(plen);
		memcpy(s->payload, payload, plen);
	}
}

static uint32_t *idmap_slot(struct idmap *m, uint32_t id)
{
	size_t i = (id * 2654435761u) & (m->cap - 1);
	while (m->vals[i] && m->keys[i] != id)
		i = (i + 1) & (m->cap - 1);
	return &m->vals[i];
}

static struct def *def_get(struct rot_sink *f, struct idmap *m, uint32_t id)
{
	uint32_t v = m->cap ? *idmap_slot(m, id) : 0;
	return v ? &f->defs[v - 1] : NULL;
}

static void idmap_put(struct idmap *m, uint32_t id, uint32_t val)
{
	uint32_t *slot;
	if (2 * (m->n + 1) > m->cap) {
		struct idmap old = *m;
		m->cap = m->cap ? 2 * m->cap : 256;
		m->keys = gs_calloc(m->cap, sizeof(*m->keys));
		m->vals = gs_calloc(m->cap, sizeof(*m->vals));
		for (size_t i = 0; i < old.cap; i++)
			if (old.vals[i]) {
				slot = idmap_slot(m, old.keys[i]);
				m->keys[slot - m->vals] = old.keys[i];
				*slot = old.vals[i];
			}
		free(old.keys);
		free(old.vals);
	}
	slot = idmap_slot(m, id);
	if (!*slot)
		m->n++;
	m->keys[slot - m->vals] = id;
	*slot = val;
}

/* Keeps a definition that r writes into the current file (a later one of the same id replaces it). */
static void def_keep(struct rot_sink *f, struct idmap *m, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct def *d = def_get(f, m, (uint32_t)r->arg64);
	if (!d) {
		if (f->ndefs == f->cap_defs) {
			f->cap_defs = f->cap_defs ? 2 * f->cap_defs : 256;
			f->defs = gs_realloc_array(f->defs, f->cap_defs, sizeof(*f->defs));
		}
		d = &f->defs[f->ndefs++];
		idmap_put(m, (uint32_t)r->arg64, (uint32_t)f->ndefs);
	} else {
		free(d->payload);
	}
	d->r = *r;
	d->plen = payload ? plen : 0;
	d->payload = d->plen ? gs_malloc(d->plen) : NULL;
	if (d->plen)
		memcpy(d->payload, payload, d->plen);
	d->gen = f->gen;
}

/* Writes d into the current file at now unless it is there already. 0 or -errno. */
static int def_write(struct rot_sink *f, struct def *d, uint64_t now)
{
	struct gs_rec r;
	if (!d || d->gen == f->gen)
		return 0;
	d->gen = f->gen;
	r = d->r;
	r.time = now;
	return gs_recwriter_add(f->w, &r, d->payload, d->plen);
}

/* Writes the frames of a stack payload (u32 ids) that the current file does not define yet. */
static int frames_write(struct rot_sink *f, const void *payload, size_t plen, uint64_t now)
{
	int err = 0;
	for (size_t i = 0; i + sizeof(uint32_t) <= plen && !err; i += sizeof(uint32_t)) {
		uint32_t id;
		memcpy(&id, (const char *)payload + i, sizeof(id));
		err = def_write(f, def_get(f, &f->frames, id), now);
	}
	return err;
}

/* Writes stack id and its frames into the current file when it does not define them yet. */
static int stack_write(struct rot_sink *f, uint32_t id, uint64_t now)
{
	struct def *d = id ? def_get(f, &f->stacks, id) : NULL;
	int err;
	if (!d || d->gen == f->gen)
		return 0;
	err = frames_write(f, d->payload, d->plen, now);
	return err ? err : def_write(f, d, now);
}

/* Is ref the main GIL of pid (the first one its events named)? */
static int main_gil(struct rot_sink *f, uint32_t pid, uint64_t ref)
{
	for (size_t i = 0; i < f->ngils; i++)
		if (f->gils[i].pid == pid)
			return f->gils[i].ref == ref;
	if (f->ngils == f->cap_gils) {
		f->cap_gils = f->cap_gils ? 2 * f->cap_gils : 8;
		f->gils = gs_realloc_array(f->gils, f->cap_gils, sizeof(*f->gils));
	}
	f->gils[f->ngils++] = (struct proc_gil){ .pid = pid, .ref = ref };
	return 1;
}

/* A process ended (its main thread exited): its facts and GIL are not carried into later files,
 * so serve --all-python's memory does not grow with the processes that came and went. */
static void process_gone(struct rot_sink *f, uint32_t pid)
{
	size_t n = 0;
	for (size_t i = 0; i < f->nsaved; i++) {
		if (f->saved[i].r.type == GS_REC_META && f->saved[i].r.pid == pid) {
			free(f->saved[i].payload);
			continue;
		}
		f->saved[n++] = f->saved[i]; /* the order kept: definitions before their uses */
	}
	f->nsaved = n;
	for (size_t i = 0; i < f->ngils; i++)
		if (f->gils[i].pid == pid) {
			f->gils[i] = f->gils[--f->ngils];
			break;
		}
	for (size_t i = 0; i < f->nthreads;)
		if (f->threads[i].pid == pid)
			f->threads[i] = f->threads[--f->nthreads];
		else
			i++;
}

static void copy_name(char *dst, size_t len, const void *payload, size_t plen)
{
	size_t n = payload ? strnlen(payload, plen < len ? plen : len - 1) : 0;
	memcpy(dst, payload, n);
	dst[n] = '\0';
}

/* The GIL events: who holds each process's main GIL, who waits for a GIL. */
static void track_gil(struct rot_sink *f, struct thread *t, const struct gs_rec *r)
{
	if (r->type == GS_REC_GIL_WAIT) {
		t->waiting = 1;
		t->wait_ref = r->arg64;
		return;
	}
	if (r->arg == 1) {
		t->waiting = 0;
		if (main_gil(f, t->pid, r->arg64)) {
			for (size_t i = 0; i < f->nthreads; i++)
				if (f->threads[i].pid == t->pid)
					f->threads[i].holds = 0;
			t->holds = 1;
		}
	} else if (main_gil(f, t->pid, r->arg64)) {
		t->holds = 0;
	}
}

/* The definitions r uses and the current file lacks, written before r (at now); keeps r's own.
 * 0 or -errno. */
static int track_defs(struct rot_sink *f, const struct gs_rec *r, const void *payload, size_t plen, uint64_t now)
{
	int err = 0;
	switch (r->type) {
	case GS_REC_PYFRAME:
	case GS_REC_NATFRAME:
		def_keep(f, &f->frames, r, payload, plen);
		break;
	case GS_REC_STACK:
		err = frames_write(f, payload, plen, now);
		def_keep(f, &f->stacks, r, payload, plen);
		break;
	case GS_REC_SAMPLE:
	case GS_REC_CTR_STACK:
		err = stack_write(f, (uint32_t)r->arg64, now);
		break;
	default:
		break;
	}
	return err;
}

/* Keeps what a file started later needs from r. */
static void track(struct rot_sink *f, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct thread *t;
	int gil;
	switch (r->type) {
	case GS_REC_META:
		save(f, r, payload, plen);
		return;
	case GS_REC_LOST:
		f->lost += r->arg64;
		return;
	case GS_REC_EXIT:
		thread_drop(f, r->tid);
		if (r->tid == r->pid)
			process_gone(f, r->pid);
		return;
	case GS_REC_FORK:
	case GS_REC_THREAD:
	case GS_REC_SWITCH_IN:
	case GS_REC_SWITCH_OUT:
	case GS_REC_WAKEUP:
	case GS_REC_COMM:
	case GS_REC_PYNAME:
	case GS_REC_GIL_WAIT:
	case GS_REC_GIL_WRITE:
		break;
	default:
		return;
	}
	/* WAKEUP and the GIL events carry pid 0: their thread is looked up by tid, never created */
	gil = r->type == GS_REC_GIL_WAIT || r->type == GS_REC_GIL_WRITE;
	if (!r->pid && r->type != GS_REC_WAKEUP && !gil)
		return;
	t = thread_find(f, r->tid, r->pid, r->pid && r->type != GS_REC_WAKEUP);
	if (!t)
		return;
	if (r->pid && t->pid != r->pid)
		t->pid = r->pid;
	switch (r->type) {
	case GS_REC_THREAD:
		t->state = (char)r->arg;
		if (r->arg64 & GS_THREAD_HOLDS_GIL)
			t->holds = 1;
		return;
	case GS_REC_SWITCH_IN:
	case GS_REC_WAKEUP:
		t->state = 'R';
		return;
	case GS_REC_SWITCH_OUT: /* sched_switch prev_state: 0 or 0x100 runnable, 2 D, else asleep */
		t->state = (r->arg64 == 0 || (r->arg64 & 0x100)) ? 'R' : (r->arg64 & 2) ? 'D' : 'S';
		return;
	case GS_REC_COMM:
		copy_name(t->comm, sizeof(t->comm), payload, plen);
		return;
	case GS_REC_PYNAME:
		copy_name(t->pyname, sizeof(t->pyname), payload, plen);
		return;
	case GS_REC_GIL_WAIT:
	case GS_REC_GIL_WRITE:
		track_gil(f, t, r);
		return;
	default:
		return;
	}
}

/* The start of a file after a rotation at time now: what a reader needs to stand alone. */
static int write_preamble(struct rot_sink *f, uint64_t now)
{
	int err = 0;
	for (size_t i = 0; i < f->nsaved && !err; i++) {
		struct gs_rec r = f->saved[i].r;
		r.time = now;
		err = gs_recwriter_add(f->w, &r, f->saved[i].payload, f->saved[i].plen);
	}
	for (size_t i = 0; i < f->nthreads && !err; i++) {
		const struct thread *t = &f->threads[i];
		struct gs_rec r = { .type = GS_REC_THREAD, .pid = t->pid, .tid = t->tid, .time = now };
		if (!t->state && !t->holds && !t->waiting)
			continue; /* only named (a sample can name a thread after its exit): not known alive */
		r.arg = t->state ? t->state : '?';
		r.arg64 = (t->holds ? GS_THREAD_HOLDS_GIL : 0) | (t->pid == t->tid ? GS_THREAD_MAIN : 0);
		err = gs_recwriter_add(f->w, &r, NULL, 0);
		r.arg = 0;
		r.arg64 = 0;
		if (!err && t->comm[0]) {
			r.type = GS_REC_COMM;
			err = gs_recwriter_add(f->w, &r, t->comm, strlen(t->comm) + 1);
		}
		if (!err && t->pyname[0]) {
			r.type = GS_REC_PYNAME;
			err = gs_recwriter_add(f->w, &r, t->pyname, strlen(t->pyname) + 1);
		}
	}
	for (size_t i = 0; i < f->nthreads && !err; i++) {
		const struct thread *t = &f->threads[i];
		struct gs_rec r = { .type = GS_REC_GIL_WAIT, .pid = t->pid, .tid = t->tid, .time = now };
		r.arg64 = t->wait_ref;
		if (t->waiting && !t->holds)
			err = gs_recwriter_add(f->w, &r, NULL, 0);
	}
	return err;
}

/* path.K into buf (K 0: path). */
static void numbered(char *buf, size_t len, const char *path, unsigned k)
{
	if (k)
		snprintf(buf, len, "%s.%u", path, k);
	else
		snprintf(buf, len, "%s", path);
}

/* Completes the current file, shifts the kept ones, starts the next at now. 0 or -errno. */
static int rotate(struct rot_sink *f, uint64_t now)
{
	struct gs_rec end = { .type = GS_REC_END, .time = now, .arg64 = f->lost }; /* the next file starts there */
	char from[4096], to[4096], why[512];
	struct stat st;
	int err = gs_recwriter_add(f->w, &end, NULL, 0), fd, cerr = gs_recwriter_close(f->w);
	f->w = NULL;
	if (err < 0 || (err = cerr) < 0) {
		say_failed(f, "completing it before the rotation", err);
		return err;
	}
	if (lstat(f->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		say_failed(f, "it is no longer a regular file, so it is not rotated", -EINVAL);
		return -EINVAL;
	}
	for (unsigned k = f->max_files; k > 0; k--) {
		numbered(from, sizeof(from), f->path, k - 1);
		numbered(to, sizeof(to), f->path, k);
		if (rename(from, to) < 0 && errno != ENOENT) {
			err = -errno;
			say_failed(f, "renaming the older recordings", err);
			return err;
		}
	}
	if ((fd = gs_open_output(f->path, why, sizeof(why))) < 0) {
		if (!f->failed++)
			gs_err("%s: the recording stops here; the program keeps running", why);
		return fd;
	}
	f->gen++; /* no definition is in the new file yet */
	if ((err = gs_recwriter_open_fd(fd, now, &f->w)) < 0 || (err = write_preamble(f, now)) < 0) {
		say_failed(f, "starting the next file", err);
		return err;
	}
	f->lost = 0;
	f->preamble = gs_recwriter_bytes(f->w);
	return 0;
}

/* Rotation renames path: only a regular file may be rotated (a device node or FIFO renamed away
 * would be replaced by a plain file: -o /dev/null would take the host's /dev/null). */
static int not_regular(const struct rot_sink *f, const struct stat *st, char *why, size_t whylen)
{
	if (S_ISREG(st->st_mode))
		return 0;
	snprintf(why, whylen,
		 "refusing to rotate %s with --max-size %" PRIu64 ": it is not a regular file (a device, FIFO or "
		 "socket would be renamed away and replaced), so choose a regular file's path or drop --max-size",
		 f->path, f->max_bytes);
	return -EINVAL;
}

static int rot_start(void *ctx, uint64_t start_ns, char *why, size_t whylen)
{
	struct rot_sink *f = ctx;
	struct stat st;
	int fd, err;
	/* checked before opening (a FIFO or device is not even opened; a symbolic link is refused by
	 * gs_open_output with its own sentence), then on what was opened */
	if (f->max_bytes && lstat(f->path, &st) == 0 && !S_ISLNK(st.st_mode) &&
	    (err = not_regular(f, &st, why, whylen)) < 0)
		return err;
	if ((fd = gs_open_output(f->path, why, whylen)) < 0)
		return fd;
	if (f->max_bytes && fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (f->max_bytes && (err = not_regular(f, &st, why, whylen)) < 0) {
		close(fd);
		return err;
	}
	if ((err = gs_recwriter_open_fd(fd, start_ns, &f->w)) < 0) {
		snprintf(why, whylen, "cannot write the recording %s: %s", f->path, strerror(-err));
		return err;
	}
	f->last_ns = start_ns;
	f->gen = 1;
	return 0;
}

static int rot_event(void *ctx, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct rot_sink *f = ctx;
	uint64_t now = r->time > f->last_ns ? r->time : f->last_ns;
	int err;
	if (!f->w)
		return -EIO;
	/* a file holds at least half the size of new records, however long its preamble */
	if (f->max_bytes && r->type != GS_REC_END && gs_recwriter_bytes(f->w) >= f->max_bytes &&
	    gs_recwriter_bytes(f->w) - f->preamble >= f->max_bytes / 2 && (err = rotate(f, now)) < 0)
		return err;
	f->last_ns = now;
	if (f->max_bytes) { /* never rotated: nothing to keep */
		track(f, r, payload, plen);
		if ((err = track_defs(f, r, payload, plen, now)) < 0) {
			say_failed(f, "", err);
			return err;
		}
	}
	if ((err = gs_recwriter_add(f->w, r, payload, plen)) < 0)
		say_failed(f, "", err);
	return err;
}

static int rot_flush(void *ctx)
{
	struct rot_sink *f = ctx;
	int err = f->w ? gs_recwriter_flush(f->w) : -EIO;
	if (err < 0)
		say_failed(f, "", err);
	return err;
}

static int rot_close(void *ctx)
{
	struct rot_sink *f = ctx;
	int err = 0;
	if (f->w)
		err = gs_recwriter_close(f->w);
	if (err < 0)
		say_failed(f, "", err);
	f->w = NULL;
	return err;
}

struct gs_sink *gs_rotating_sink_new(const char *path, uint64_t max_bytes, unsigned max_files)
{
	struct rot_sink *f = gs_calloc(1, sizeof(*f));
	f->path = path;
	f->max_bytes = max_bytes;
	f->max_files = max_files ? max_files : 1;
	f->sink.start = rot_start;
	f->sink.event = rot_event;
	f->sink.flush = rot_flush;
	f->sink.close = rot_close;
	f->sink.ctx = f;
	return &f->sink;
}

void gs_rotating_sink_free(struct gs_sink *s)
{
	struct rot_sink *f;
	if (!s)
		return;
	f = s->ctx;
	rot_close(f);
	for (size_t i = 0; i < f->nsaved; i++)
		free(f->saved[i].payload);
	free(f->saved);
	for (size_t i = 0; i < f->ndefs; i++)
		free(f->defs[i].payload);
	free(f->defs);
	free(f->frames.keys);
	free(f->frames.vals);
	free(f->stacks.keys);
	free(f->stacks.vals);
	free(f->threads);
	free(f->gils);
	free(f);
}
