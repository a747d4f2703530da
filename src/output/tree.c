/* tree.c (output) - the processes as a tree (see tree.h). */
#define _GNU_SOURCE
#include "output/tree.h"
#include "analysis/meta.h"
#include "base/escape.h"
#include "base/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MAX_DEPTH 32

/* The command line of p's current image joined by blanks, or the command (the target), or its name. */
static void command_of(const struct gs_analysis *a, const struct gs_process *p, char *buf, size_t len)
{
	const struct gs_image *im = p->nimages ? &p->images[p->nimages - 1] : NULL;
	const char *cur = im ? im->argv : NULL, *arg;
	char raw[1024] = "";
	size_t n;
	while ((arg = gs_argv_next(&cur, &n)) != NULL) {
		size_t l = strlen(raw);
		snprintf(raw + l, sizeof(raw) - l, "%s%.*s", l ? " " : "", (int)n, arg);
	}
	if (!raw[0] && p->pid == a->target_pid)
		snprintf(raw, sizeof(raw), "%s", a->command);
	if (!raw[0])
		for (size_t i = 0; i < a->nthreads; i++)
			if (a->threads[i].tid == p->pid)
				snprintf(raw, sizeof(raw), "%s", gs_thread_name(a, &a->threads[i]));
	gs_esc_term_buf(buf, len, raw[0] ? raw : "?");
	if (strlen(buf) > 60)
		memcpy(buf + 57, "...", 4);
}

static void ending(const struct gs_analysis *a, const struct gs_process *p, char *buf, size_t len)
{
	int have = p->have_exit || (p->pid == a->target_pid && a->have_exit_status);
	int st = p->have_exit ? p->exit_status : a->exit_status;
	if (!have)
		snprintf(buf, len, "%s", p->end_ns && p->end_ns < a->end_ns ? "ended" : "running");
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
}

static int has_parent(const struct gs_analysis *a, const struct gs_process *p)
{
	if (!p->ppid || p->ppid == p->pid)
		return 0;
	return gs_analysis_process((struct gs_analysis *)a, p->ppid) != NULL;
}

static void line(const struct gs_analysis *a, const struct gs_process *p, int depth, FILE *out)
{
	char cmd[1024], end[32], ver[128];
	const struct gs_gilstat *g = p->main_gil >= 0 ? &a->gils[p->main_gil] : NULL;
	uint64_t gw = g && g->end_ns > g->first_ns ? g->end_ns - g->first_ns : 0;
	command_of(a, p, cmd, sizeof(cmd));
	ending(a, p, end, sizeof(end));
	fprintf(out, "  %*s%-8u %-*s %-10s", depth * 2, "", p->pid, 62 - depth * 2 > 20 ? 62 - depth * 2 : 20, cmd,
		end);
	if (!p->python_version[0]) {
		fputs(" not Python\n", out);
		return;
	}
	gs_esc_term_buf(ver, sizeof(ver), p->python_version);
	fprintf(out, " CPython %s", ver);
	if (gw)
		fprintf(out, ", GIL held %.1f%%, contended %.1f%%", 100.0 * (double)g->held_ns / (double)gw,
			100.0 * (double)g->contended_ns / (double)gw);
	fputc('\n', out);
}

/* Folding (tree.h): fold[i] of procs[i], worked out once, children before parents. */
enum {
	FOLD_UNKNOWN = 0,
	FOLD_NO,
	FOLD_YES,
	FOLD_VISITING
};

#define BRIEF_NS 1000000000ull

static int is_child(const struct gs_analysis *a, const struct gs_process *c, const struct gs_process *p)
{
	return c != p && c->ppid == p->pid && has_parent(a, c);
}

/* Not Python, nothing said about it, no GIL activity, ended within BRIEF_NS of its start. */
static int uninteresting(const struct gs_analysis *a, const struct gs_process *p)
{
	int ended = p->have_exit || p->exited || (p->end_ns && p->end_ns < a->end_ns);
	if (p->python_version[0] || p->python_error[0] || p->pid == a->target_pid || !ended ||
	    p->end_ns < p->first_ns || p->end_ns - p->first_ns >= BRIEF_NS)
		return 0;
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = &a->threads[i];
		if (t->pid == p->pid && (t->acquisitions || t->wait_ns || t->held_ns || t->seen_gil_event))
			return 0;
	}
	return 1;
}

/* Whether procs[i] and all it started fold; a cycle of parents (pids reused) or a tree deeper
 * than MAX_DEPTH does not. */
static int foldable(const struct gs_analysis *a, size_t i, unsigned char *fold, int depth)
{
	if (fold[i] != FOLD_UNKNOWN)
		return fold[i] == FOLD_YES;
	fold[i] = FOLD_VISITING;
	if (depth >= MAX_DEPTH || !uninteresting(a, &a->procs[i])) {
		fold[i] = FOLD_NO;
		return 0;
	}
	for (size_t k = 0; k < a->nprocs; k++)
		if (is_child(a, &a->procs[k], &a->procs[i]) && !foldable(a, k, fold, depth + 1)) {
			fold[i] = FOLD_NO;
			return 0;
		}
	fold[i] = FOLD_YES;
	return 1;
}

/* The folded processes under one parent, by program name (its first argument's last
 * component, or its name). */
struct group {
	char name[64];
	size_t n;
};

struct folded {
	struct group *v;
	size_t n, cap, total;
};

static void program_of(const struct gs_analysis *a, const struct gs_process *p, char *buf, size_t len)
{
	const struct gs_image *im = p->nimages ? &p->images[p->nimages - 1] : NULL;
	const char *cur = im ? im->argv : NULL, *arg, *slash;
	char raw[256] = "";
	size_t n;
	if ((arg = gs_argv_next(&cur, &n)) != NULL && n) {
		snprintf(raw, sizeof(raw), "%.*s", (int)n, arg);
		slash = strrchr(raw, '/');
		if (slash && slash[1])
			memmove(raw, slash + 1, strlen(slash + 1) + 1);
	}
	for (size_t i = 0; !raw[0] && i < a->nthreads; i++)
		if (a->threads[i].tid == p->pid)
			snprintf(raw, sizeof(raw), "%s", a->threads[i].name);
	gs_esc_term_buf(buf, len, raw[0] ? raw : "?");
}

/* p and all it started (all folded) into f. */
static void fold_in(const struct gs_analysis *a, const struct gs_process *p, struct folded *f, int depth)
{
	char name[sizeof(f->v->name)];
	size_t g;
	program_of(a, p, name, sizeof(name));
	for (g = 0; g < f->n && strcmp(f->v[g].name, name) != 0; g++)
		;
	if (g == f->n) {
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 8;
			f->v = gs_realloc_array(f->v, f->cap, sizeof(*f->v));
		}
		memcpy(f->v[f->n].name, name, sizeof(name));
		f->v[f->n++].n = 0;
	}
	f->v[g].n++;
	f->total++;
	for (size_t k = 0; depth < MAX_DEPTH && k < a->nprocs; k++)
		if (is_child(a, &a->procs[k], p))
			fold_in(a, &a->procs[k], f, depth + 1);
}

static int cmp_groups(const void *x, const void *y)
{
	const struct group *g = x, *h = y;
	if (g->n != h->n)
		return g->n > h->n ? -1 : 1;
	return strcmp(g->name, h->name);
}

#define SHOWN_GROUPS 6

/* "+ 40 short-lived processes, not Python: bash x33, readlink x6, basename" */
static void folded_line(struct folded *f, int depth, FILE *out)
{
	qsort(f->v, f->n, sizeof(*f->v), cmp_groups);
	fprintf(out, "  %*s+ %zu short-lived processes, not Python:", depth * 2, "", f->total);
	for (size_t g = 0; g < f->n && g < SHOWN_GROUPS; g++) {
		fprintf(out, "%s %s", g ? "," : "", f->v[g].name);
		if (f->v[g].n > 1)
			fprintf(out, " x%zu", f->v[g].n);
	}
	if (f->n > SHOWN_GROUPS)
		fprintf(out, " and %zu other programs", f->n - SHOWN_GROUPS);
	fputc('\n', out);
}

static void subtree(const struct gs_analysis *a, const struct gs_process *p, int depth, const unsigned char *fold,
		    FILE *out)
{
	struct folded f = { 0 };
	line(a, p, depth, out);
	if (depth >= MAX_DEPTH)
		return;
	for (size_t i = 0; fold && i < a->nprocs; i++)
		if (fold[i] == FOLD_YES && is_child(a, &a->procs[i], p))
			fold_in(a, &a->procs[i], &f, depth + 1);
	for (size_t i = 0; i < a->nprocs; i++)
		if (is_child(a, &a->procs[i], p) && (!fold || f.total < 2 || fold[i] != FOLD_YES))
			subtree(a, &a->procs[i], depth + 1, fold, out);
	if (f.total >= 2)
		folded_line(&f, depth + 1, out);
	free(f.v);
}

void gs_tree_text(const struct gs_analysis *a, FILE *out)
{
	unsigned char *fold = NULL;
	if (a->nprocs < 2)
		return;
	if (!a->all_processes) {
		fold = gs_calloc(a->nprocs, 1);
		for (size_t i = 0; i < a->nprocs; i++)
			foldable(a, i, fold, 0);
	}
	fprintf(out, "\nProcesses:\n");
	for (size_t i = 0; i < a->nprocs; i++)
		if (!has_parent(a, &a->procs[i]))
			subtree(a, &a->procs[i], 0, fold, out);
	free(fold);
}
