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

static void subtree(const struct gs_analysis *a, const struct gs_process *p, int depth, FILE *out)
{
	line(a, p, depth, out);
	if (depth >= MAX_DEPTH)
		return;
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct gs_process *c = &a->procs[i];
		if (c != p && c->ppid == p->pid && has_parent(a, c))
			subtree(a, c, depth + 1, out);
	}
}

void gs_tree_text(const struct gs_analysis *a, FILE *out)
{
	if (a->nprocs < 2)
		return;
	fprintf(out, "\nProcesses:\n");
	for (size_t i = 0; i < a->nprocs; i++)
		if (!has_parent(a, &a->procs[i]))
			subtree(a, &a->procs[i], 0, out);
}
