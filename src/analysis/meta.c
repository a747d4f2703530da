/* meta.c - run and process metadata, and each process's images (meta.h). */
#define _GNU_SOURCE
#include "analysis/meta.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gs_meta_run(struct gs_analysis *a, const char *k, const char *v)
{
	if (strcmp(k, "command") == 0) {
		snprintf(a->command, sizeof(a->command), "%s", v);
	} else if (strcmp(k, "mode") == 0) {
		a->attach = strcmp(v, "attach") == 0;
	} else if (strcmp(k, "target_pid") == 0) {
		uint64_t x;
		if (gs_parse_u64(v, &x) == 0)
			a->target_pid = (uint32_t)x;
	} else if (strcmp(k, "recorder.cpu_ns") == 0) {
		gs_parse_u64(v, &a->recorder_cpu_ns);
	} else if (strcmp(k, "recorder.max_rss_kb") == 0) {
		gs_parse_u64(v, &a->recorder_max_rss_kb);
	} else if (strcmp(k, "stacks.errors") == 0) {
		gs_parse_u64(v, &a->stack_errors);
	} else if (strcmp(k, "stacks.rate_hz") == 0) {
		gs_parse_u64(v, &a->stack_rate_hz);
	} else if (strcmp(k, "native.stats") == 0) {
		/* counts separated by spaces (record.c) */
		char *end;
		const char *c = v;
		for (int i = 0; i < 11; i++) {
			unsigned long long x = strtoull(c, &end, 10);
			if (end == c)
				break;
			a->native_stats[i] = x;
			c = end;
		}
		a->have_native = 1;
	} else if (strcmp(k, "gilscope_version") == 0) {
		snprintf(a->gilscope_version, sizeof(a->gilscope_version), "%s", v);
	}
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

void gs_meta_process(struct gs_process *p, const char *k, const char *v, uint64_t now)
{
	struct gs_image *im = image_current(p);
	(void)now;
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
	if (parent->nimages)
		*im = parent->images[parent->nimages - 1];
	im->start_ns = now;
	im->forked = 1;
	p->is_python = 1;
	memcpy(p->python_version, parent->python_version, sizeof(p->python_version));
	memcpy(p->python_path, parent->python_path, sizeof(p->python_path));
	memcpy(p->python_build, parent->python_build, sizeof(p->python_build));
	memcpy(p->mechanism, parent->mechanism, sizeof(p->mechanism));
}

void gs_meta_free(struct gs_process *p)
{
	free(p->images);
	p->images = NULL;
	p->nimages = 0;
}
