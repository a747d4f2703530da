/* meta.c - run and process metadata, and each process's images (meta.h). */
#define _GNU_SOURCE
#include "analysis/meta.h"
#include "base/util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct gs_native_field gs_native_fields[11] = {
	{ "merged", offsetof(struct gs_native_figures, merged) },
	{ "frozen", offsetof(struct gs_native_figures, frozen) },
	{ "mismatched", offsetof(struct gs_native_figures, mismatched) },
	{ "missing", offsetof(struct gs_native_figures, missing) },
	{ "switch_copies", offsetof(struct gs_native_figures, switch_copies) },
	{ "cpu_copies", offsetof(struct gs_native_figures, cpu_copies) },
	{ "lost", offsetof(struct gs_native_figures, lost) },
	{ "unwinds", offsetof(struct gs_native_figures, unwinds) },
	{ "truncated", offsetof(struct gs_native_figures, truncated) },
	{ "unknown_symbols", offsetof(struct gs_native_figures, unknown_symbols) },
	{ "frozen_mismatched", offsetof(struct gs_native_figures, frozen_mismatched) },
};

enum field_kind {
	F_U64,
	F_U32,
	F_TEXT
};

/* The run's facts: one row per key. */
static const struct run_field {
	const char *key;
	enum field_kind kind;
	size_t offset, size;
} run_fields[] = {
	{ "command", F_TEXT, offsetof(struct gs_analysis, command), sizeof(((struct gs_analysis *)0)->command) },
	{ "gilscope_version", F_TEXT, offsetof(struct gs_analysis, gilscope_version),
	  sizeof(((struct gs_analysis *)0)->gilscope_version) },
	{ "sched.source", F_TEXT, offsetof(struct gs_analysis, sched_source),
	  sizeof(((struct gs_analysis *)0)->sched_source) },
	{ "target_pid", F_U32, offsetof(struct gs_analysis, target_pid), 0 },
	{ "recorder.cpu_ns", F_U64, offsetof(struct gs_analysis, recorder_cpu_ns), 0 },
	{ "recorder.max_rss_kb", F_U64, offsetof(struct gs_analysis, recorder_max_rss_kb), 0 },
	{ "stacks.errors", F_U64, offsetof(struct gs_analysis, stack_errors), 0 },
	{ "stacks.rate_hz", F_U64, offsetof(struct gs_analysis, stack_rate_hz), 0 },
	{ "tids.translated", F_U64, offsetof(struct gs_analysis, tids_translated), 0 },
	{ "tids.unattributed", F_U64, offsetof(struct gs_analysis, tids_unattributed), 0 },
	{ "stacks.unattributed", F_U64, offsetof(struct gs_analysis, stacks_unattributed), 0 },
	{ "names.read", F_U64, offsetof(struct gs_analysis, names_read), 0 },
	{ "names.failed", F_U64, offsetof(struct gs_analysis, names_failed), 0 },
};

/* Format 1: "native.stats" held the figures as numbers separated by blanks, in table order. */
static void native_stats_v1(struct gs_analysis *a, const char *v)
{
	char *end;
	for (size_t i = 0; i < GS_ARRAY_SIZE(gs_native_fields); i++) {
		unsigned long long x = strtoull(v, &end, 10);
		if (end == v)
			break;
		*(uint64_t *)((char *)&a->native + gs_native_fields[i].offset) = x;
		v = end;
	}
	a->have_native = 1;
}

/* "native.NAME" (format 2). 1 when k is one of them. */
static int native_fact(struct gs_analysis *a, const struct gs_meta *m)
{
	if (strncmp(m->key, "native.", 7) != 0 || !m->is_number)
		return 0;
	for (size_t i = 0; i < GS_ARRAY_SIZE(gs_native_fields); i++)
		if (strcmp(m->key + 7, gs_native_fields[i].name) == 0) {
			*(uint64_t *)((char *)&a->native + gs_native_fields[i].offset) = m->u64;
			a->have_native = 1;
			return 1;
		}
	return 0;
}

void gs_meta_run(struct gs_analysis *a, const struct gs_meta *m)
{
	if (strcmp(m->key, "mode") == 0) {
		a->attach = strcmp(m->text, "attach") == 0;
		return;
	}
	if (strcmp(m->key, "native.stats") == 0) {
		native_stats_v1(a, m->text);
		return;
	}
	if (native_fact(a, m))
		return;
	for (size_t i = 0; i < GS_ARRAY_SIZE(run_fields); i++) {
		const struct run_field *f = &run_fields[i];
		char *field = (char *)a + f->offset;
		if (strcmp(m->key, f->key) != 0)
			continue;
		if (f->kind == F_TEXT)
			snprintf(field, f->size, "%s", m->text);
		else if (f->kind == F_U64 && m->is_number)
			memcpy(field, &m->u64, sizeof(uint64_t));
		else if (f->kind == F_U32 && m->is_number && m->u64 <= UINT32_MAX)
			*(uint32_t *)field = (uint32_t)m->u64;
		return;
	}
}

int gs_process_tells_forced_drops(const struct gs_process *p)
{
	if (p->drops_told_apart >= 0)
		return p->drops_told_apart;
	return !strstr(p->mechanism, "forced drops not told apart");
}

static struct gs_image *image_new(struct gs_process *p, uint64_t start)
{
	struct gs_image *im;
	p->images = gs_realloc_array(p->images, p->nimages + 1, sizeof(*p->images));
	im = &p->images[p->nimages++];
	memset(im, 0, sizeof(*im));
	im->start_ns = start;
	return im;
}

/* The image the process runs now (its first one, from its start, when none is known yet). */
static struct gs_image *image_current(struct gs_process *p)
{
	return p->nimages ? &p->images[p->nimages - 1] : image_new(p, p->first_ns);
}

/* The image p ran at `at`: the last one started then or before (NULL: p started after it). */
static struct gs_image *image_at(struct gs_process *p, uint64_t at)
{
	struct gs_image *im = image_current(p);
	for (size_t i = p->nimages; i-- > 0;)
		if (p->images[i].start_ns <= at)
			return &p->images[i];
	return im->start_ns <= at ? im : NULL;
}

void gs_meta_process(struct gs_process *p, const struct gs_meta *m, uint64_t at)
{
	struct gs_image *im = image_current(p);
	const char *k = m->key, *v = m->text;
	if (strcmp(k, "python.version") == 0) {
		snprintf(im->python_version, sizeof(im->python_version), "%s", v);
		im->is_python = 1;
		im->forked = 0;
		/* the process is described by this image from now on, not partly by an older one */
		memcpy(p->python_version, im->python_version, sizeof(p->python_version));
		memcpy(p->python_path, im->python_path, sizeof(p->python_path));
		memcpy(p->python_build, im->python_build, sizeof(p->python_build));
		if (p->nimages > 1)
			p->mechanism[0] = '\0';
		p->is_python = 1;
	} else if (strcmp(k, "python.path") == 0) {
		snprintf(im->python_path, sizeof(im->python_path), "%s", v);
		memcpy(p->python_path, im->python_path, sizeof(p->python_path));
	} else if (strcmp(k, "python.build") == 0) {
		snprintf(im->python_build, sizeof(im->python_build), "%s", v);
		memcpy(p->python_build, im->python_build, sizeof(p->python_build));
	} else if (strcmp(k, "python.error") == 0) {
		snprintf(im->python_error, sizeof(im->python_error), "%s", v);
		if (!p->python_version[0] || p->nimages == 1) /* an earlier image's CPython stays */
			memcpy(p->python_error, im->python_error, sizeof(p->python_error));
	} else if (strcmp(k, "mechanism") == 0) {
		snprintf(p->mechanism, sizeof(p->mechanism), "%s", v);
	} else if (strcmp(k, "python.forced_drops_told_apart") == 0 && m->is_number) {
		p->drops_told_apart = m->u64 != 0;
	} else if (strcmp(k, "python.switch_interval_us") == 0 && m->is_number) {
		p->switch_interval_us = m->u64;
	} else if (strcmp(k, "argv") == 0 && !m->is_number && (im = image_at(p, at)) != NULL) {
		free(im->argv);
		im->argv = gs_strdup(v);
	}
}

void gs_meta_exec(struct gs_process *p, uint64_t now)
{
	struct gs_image *old = image_current(p);
	if (old->forked && !p->ngils) {
		/* a CPython only by fork() that never used its GIL (subprocess's child on its way to
		 * exec): not a Python process */
		old->is_python = 0;
		p->python_version[0] = p->python_path[0] = p->python_build[0] = p->mechanism[0] = '\0';
	}
	image_new(p, now);
	p->is_python = 0; /* GIL events of the old image end here; the new one's count once it is known */
}

void gs_meta_fork(struct gs_process *p, const struct gs_process *parent, uint64_t now)
{
	/* fork() of a Python process: same interpreter image, same GIL address */
	struct gs_image *im = image_new(p, now);
	if (parent->nimages) {
		*im = parent->images[parent->nimages - 1];
		im->argv = im->argv ? gs_strdup(im->argv) : NULL;
	}
	im->start_ns = now;
	im->forked = 1;
	p->is_python = 1;
	memcpy(p->python_version, parent->python_version, sizeof(p->python_version));
	memcpy(p->python_path, parent->python_path, sizeof(p->python_path));
	memcpy(p->python_build, parent->python_build, sizeof(p->python_build));
	memcpy(p->mechanism, parent->mechanism, sizeof(p->mechanism));
	p->drops_told_apart = parent->drops_told_apart;
	p->switch_interval_us = parent->switch_interval_us;
}

void gs_meta_fork_argv(struct gs_process *p, const struct gs_process *parent, uint64_t now)
{
	struct gs_image *im = image_new(p, now);
	if (parent->nimages && parent->images[parent->nimages - 1].argv)
		im->argv = gs_strdup(parent->images[parent->nimages - 1].argv);
}

const char *gs_argv_next(const char **cur, size_t *len)
{
	const char *s = *cur, *arg;
	size_t n = 0;
	if (!s || !*s)
		return NULL;
	while (*s >= '0' && *s <= '9' && n < 1000000)
		n = n * 10 + (size_t)(*s++ - '0');
	if (*s != ':' || strnlen(s + 1, n) < n)
		return NULL; /* malformed: the rest is ignored */
	arg = s + 1;
	*len = n;
	*cur = arg + n;
	return arg;
}

void gs_meta_free(struct gs_process *p)
{
	for (size_t i = 0; i < p->nimages; i++)
		free(p->images[i].argv);
	free(p->images);
	p->images = NULL;
	p->nimages = 0;
}
