/* report.c - text table and JSON. */
#define _GNU_SOURCE
#include "output/report.h"
#include "output/convoy.h"
#include "output/counters.h"
#include "output/flame.h"
#include "output/tree.h"
#include "analysis/meta.h"

#include "base/escape.h"
#include "base/util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static double pct(uint64_t part, uint64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

/* s as the terminal may show it (base/escape.h), in buf. */
static const char *term(char *buf, size_t len, const char *s)
{
	gs_esc_term_buf(buf, len, s);
	return buf;
}

static int gils_used(const struct gs_analysis *a, uint32_t pid);

/* Columns of the thread table's NAME: as wide as the longest name shown, 16 to 24. */
enum {
	NAME_MIN_COLS = 16,
	NAME_MAX_COLS = 24
};

/* A thread's NAME cell into buf: its name (and @N when its process used several GILs) as the
 * terminal shows it, cut in the middle past NAME_MAX_COLS columns, padded to width columns.
 * *ncols (when not NULL) gets the columns of the name before padding. */
static const char *name_cell(const struct gs_analysis *a, const struct gs_thread *t, size_t width, char *buf,
			     size_t len, size_t *ncols)
{
	char nm[GS_THREAD_PYNAME_MAX + 32];
	snprintf(nm, sizeof(nm), "%s", gs_thread_name(a, t));
	if (t->gil_index >= 0 && gils_used(a, t->pid) > 1)
		snprintf(nm + strlen(nm), sizeof(nm) - strlen(nm), "@%d", a->gils[t->gil_index].number);
	gs_esc_term_cell(buf, len, nm, width, NAME_MAX_COLS, ncols);
	return buf;
}

static const struct gs_gilstat empty_gil;

/* Threads of Python processes, other than main threads, that took the GIL but have no Python
 * name: started outside threading (C code, _thread), or gone before the sampler read it. */
static uint64_t unnamed_threads(const struct gs_analysis *a)
{
	uint64_t n = 0;
	for (size_t i = 0; i < a->nthreads; i++)
		n += !a->threads[i].is_main && a->threads[i].acquisitions && !a->threads[i].pyname[0];
	return n;
}
static void longest_holds(const struct gs_analysis *a, FILE *out, int n);
static void stack_line(const struct gs_analysis *a, uint64_t stack, int depth, char *buf, size_t len);
static void json_stack(const struct gs_analysis *a, FILE *out, uint64_t stack);
static void json_wait_sites(const struct gs_analysis *a, FILE *out, const struct gs_thread *t);
static size_t top_stacks_peer(const struct gs_analysis *a, uint32_t what, uint32_t tid, uint32_t peer,
			      const struct gs_stack_count **out, size_t n, uint64_t *total);

/* The GIL a process used first (its main interpreter's), or an empty one. */
static const struct gs_gilstat *main_gil(const struct gs_analysis *a, const struct gs_process *p)
{
	return p->main_gil >= 0 ? &a->gils[p->main_gil] : &empty_gil;
}

static int gils_used(const struct gs_analysis *a, uint32_t pid)
{
	int n = 0;
	for (size_t i = 0; i < a->ngils; i++)
		n += a->gils[i].pid == pid && a->gils[i].acquisitions > 0;
	return n;
}

static uint64_t lifetime(const struct gs_thread *t) { return t->end_ns > t->first_ns ? t->end_ns - t->first_ns : 0; }

static int cmp_threads(const void *x, const void *y)
{
	const struct gs_thread *a = *(const struct gs_thread *const *)x, *b = *(const struct gs_thread *const *)y;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->is_main != b->is_main)
		return a->is_main ? -1 : 1;
	if (a->first_ns != b->first_ns)
		return a->first_ns < b->first_ns ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static const struct gs_thread **sorted_threads(const struct gs_analysis *a)
{
	const struct gs_thread **v = calloc(a->nthreads ? a->nthreads : 1, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < a->nthreads; i++)
		v[i] = &a->threads[i];
	qsort(v, a->nthreads, sizeof(*v), cmp_threads);
	return v;
}

/* When events were lost: which threads were alive then (their figures may miss some). */
static void lost_note(const struct gs_analysis *a, const struct gs_thread *const *v, FILE *out, int with_count)
{
	size_t n = 0;
	if (!a->lost_events)
		return;
	if (with_count)
		fprintf(out, "lost events: %" PRIu64 "; ", a->lost_events);
	fprintf(out, "threads alive when events were lost (their figures may miss some):");
	for (size_t i = 0; i < a->nthreads; i++)
		if (v[i]->lost_while_alive) {
			char name[4 * sizeof(v[i]->name)];
			fprintf(out, "%s TID %u (%s)", n++ ? "," : "", v[i]->tid, term(name, sizeof(name), v[i]->name));
		}
	fprintf(out, "%s\n", n ? "" : " none");
}

/* Threads shown in the table: the Python processes' threads; other processes are summarised. */
static int shown(const struct gs_analysis *a, const struct gs_thread *t)
{
	const struct gs_process *p = gs_analysis_process((struct gs_analysis *)a, t->pid);
	return p && (p->is_python || p->pid == a->target_pid || p->python_version[0]);
}

void gs_report_text(const struct gs_analysis *a, FILE *out)
{
	const struct gs_thread **v = sorted_threads(a);
	uint64_t wall = a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0;
	char d1[32], d2[32], d3[32], cmd[4 * sizeof(a->command)];
	size_t hidden = 0, small = 0, width = NAME_MIN_COLS;

	gs_fmt_dur(d1, sizeof(d1), wall);
	term(cmd, sizeof(cmd), a->command[0] ? a->command : "?");
	if (a->attach)
		fprintf(out, "gilscope: attached to pid %u (%s), %s recorded\n", a->target_pid, cmd, d1);
	else
		fprintf(out, "gilscope: %s, %s recorded\n", cmd, d1);
	if (a->sched_source[0])
		fprintf(out, "scheduler events: %s\n", term(cmd, sizeof(cmd), a->sched_source));
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct gs_process *p = &a->procs[i];
		uint64_t pw = p->end_ns > p->first_ns ? p->end_ns - p->first_ns : 0;
		char e1[4 * sizeof(p->mechanism)], e2[4 * sizeof(p->python_path)], e3[4 * sizeof(p->python_build)];
		const char *why = p->python_error[0] ? p->python_error : "not a CPython this gilscope can trace";
		if (!p->python_version[0]) {
			if (p->pid == a->target_pid)
				fprintf(out, "process %u: %s: thread states only\n", p->pid, term(e1, sizeof(e1), why));
			continue;
		}
		gs_fmt_dur(d1, sizeof(d1), pw);
		fprintf(out, "process %u: CPython %s (%s%s%s)\n", p->pid, term(e1, sizeof(e1), p->python_version),
			term(e2, sizeof(e2), p->python_path), p->python_build[0] ? ", " : "",
			term(e3, sizeof(e3), p->python_build));
		if (p->mechanism[0])
			fprintf(out, "  GIL events: %s\n", term(e1, sizeof(e1), p->mechanism));
		for (size_t k = 0; k < a->ngils; k++) {
			const struct gs_gilstat *g = &a->gils[k];
			uint64_t gw = g->end_ns > g->first_ns ? g->end_ns - g->first_ns : 0;
			if (g->pid != p->pid || (g->acquisitions == 0 && (int)k != p->main_gil))
				continue;
			if (gils_used(a, p->pid) > 1)
				fprintf(out, "  GIL %d (%s):\n", g->number,
					(int)k == p->main_gil ? "main interpreter" : "a sub-interpreter's own GIL");
			gs_fmt_dur(d1, sizeof(d1), gw);
			fprintf(out,
				"  GIL held %.1f%% of %s (utilisation), contended %.1f%% (at least one thread "
				"waiting)\n",
				pct(g->held_ns, gw), d1, pct(g->contended_ns, gw));
			gs_fmt_dur(d2, sizeof(d2), g->drop_latency_n ? g->drop_latency_sum_ns / g->drop_latency_n : 0);
			gs_fmt_dur(d3, sizeof(d3), g->drop_latency_max_ns);
			if (!gs_process_tells_forced_drops(p))
				fprintf(out, "  %" PRIu64 " acquisitions\n", g->acquisitions);
			else if (!g->drop_latency_n)
				fprintf(out,
					"  %" PRIu64 " acquisitions, %" PRIu64
					" forced drops (no switch-interval request)\n",
					g->acquisitions, g->forced_drops);
			else
				fprintf(out,
					"  %" PRIu64 " acquisitions, %" PRIu64
					" forced drops (switch-interval requests honoured in %s on average, %s at "
					"most)\n",
					g->acquisitions, g->forced_drops, d2, d3);
		}
	}
	gs_tree_text(a, out);
	for (size_t i = 0; i < a->nthreads; i++) { /* the NAME column: as wide as the longest name shown */
		char cell[1024];
		size_t n;
		if (shown(a, v[i]) && (name_cell(a, v[i], 0, cell, sizeof(cell), &n), n > width))
			width = n;
	}
	fprintf(out, "\n%-3s%-8s %-*s %9s %6s %6s %6s %6s %6s %8s %7s %9s %10s %10s\n", "", "TID", (int)width, "NAME",
		"LIFETIME", "HELD%", "WAIT%", "NOGIL%", "SLEEP%", "RUNQ%", "ACQUIRE", "FORCED", "VOLUNTARY", "MAX-HOLD",
		"MAX-WAIT");
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = v[i];
		uint64_t lt = lifetime(t);
		char label[1024];
		if (!shown(a, t)) {
			hidden++;
			continue;
		}
		if ((a->nthreads > 60 && t->acquisitions == 0 && lt < 10000000ull) ||
		    (a->active_only && t->acquisitions == 0 && t->wait_ns == 0 && t->run_nogil_ns < 1000000ull)) {
			small++;
			continue;
		}
		gs_fmt_dur(d1, sizeof(d1), lt);
		gs_fmt_dur(d2, sizeof(d2), t->longest_hold_ns);
		gs_fmt_dur(d3, sizeof(d3), t->longest_wait_ns);
		fprintf(out,
			"%-3s%-8u %s %9s %6.1f %6.1f %6.1f %6.1f %6.1f %8" PRIu64 " %7" PRIu64 " %9" PRIu64
			" %10s %10s\n",
			t->is_main ? "*" : "", t->tid, name_cell(a, t, width, label, sizeof(label), NULL), d1,
			pct(t->held_ns, lt), pct(t->wait_ns, lt), pct(t->run_nogil_ns, lt), pct(t->sleeping_ns, lt),
			pct(t->runnable_ns, lt), t->acquisitions, t->forced_drops, t->releases - t->forced_drops, d2,
			d3);
	}
	if (small)
		fprintf(out,
			"   (%zu idle or short-lived threads that never took the GIL are not listed; see --json)\n",
			small);
	if (hidden)
		fprintf(out, "   (%zu threads of processes that do not run CPython not listed; see Processes above)\n",
			hidden);
	gs_convoy_text(a, out);
	gs_ctr_text(a, out);
	if (a->ntop_holds) {
		fputc('\n', out);
		longest_holds(a, out, 3);
	}
	for (size_t i = 0; i < a->nprocs; i++)
		if (gils_used(a, a->procs[i].pid) > 1) {
			fprintf(out, "\nNAME@N: the thread's last GIL was GIL N of its process (sub-interpreters with "
				     "their own GIL).");
			break;
		}
	fprintf(out, "\n* main thread. HELD: holds the GIL; WAIT: waiting for it; NOGIL: on a CPU without it; SLEEP: "
		     "blocked (S/D), not for the GIL;\nRUNQ: runnable, waiting for a CPU, not for the GIL. FORCED: "
		     "releases asked for by a waiter (switch interval).\n");
	if (a->names_read)
		fprintf(out,
			"NAME: threading.Thread.name (%" PRIu64 " read from the program; %" PRIu64
			" other threads started outside threading or ended before it was read: a label from their "
			"function).\n",
			a->names_read, unnamed_threads(a));
	fprintf(out, "lost events: %" PRIu64, a->lost_events);
	if (a->tids_unattributed)
		fprintf(out, ", GIL events of another PID namespace whose thread was not found: %" PRIu64,
			a->tids_unattributed);
	if (a->stacks_unattributed)
		fprintf(out, ", stack samples of such threads left out: %" PRIu64, a->stacks_unattributed);
	if (a->out_of_order || a->anomalies)
		fprintf(out, ", out-of-order: %" PRIu64 ", repaired inconsistencies: %" PRIu64, a->out_of_order,
			a->anomalies);
	if (!a->complete)
		fprintf(out, "\nthe recording is incomplete (gilscope was killed or the disk filled): figures cover "
			     "what was written");
	if (a->have_native) {
		const struct gs_native_figures *s = &a->native;
		fprintf(out,
			"\nnative stacks: %" PRIu64 " merged with Python stacks (%" PRIu64
			" exact: thread off-CPU since the "
			"copy); C and Python stacks disagreed in %" PRIu64 " (%" PRIu64 " of the exact ones); %" PRIu64
			" of %" PRIu64 " unwindings cut short; %" PRIu64 " copies lost",
			s->merged, s->frozen, s->mismatched, s->frozen_mismatched, s->truncated, s->unwinds, s->lost);
	}
	fputc('\n', out);
	lost_note(a, v, out, 0);
	free(v);
}

/* ", "name": v" */
static void kv(FILE *out, const char *name, uint64_t v) { fprintf(out, ", \"%s\": %" PRIu64, name, v); }

/* "python": the traced interpreter (the target's, else the first CPython seen) or null, and
 * "python_error" when the target is not one gilscope can trace. */
static void json_python(const struct gs_analysis *a, FILE *out)
{
	const struct gs_process *main = NULL;
	for (size_t i = 0; i < a->nprocs; i++)
		if (a->procs[i].python_version[0] && (!main || a->procs[i].pid == a->target_pid))
			main = &a->procs[i];
	fputs(", \"python\": ", out);
	if (main) {
		fputs("{\"version\": ", out);
		gs_esc_json(out, main->python_version);
		fputs(", \"executable\": ", out);
		gs_esc_json(out, main->python_path);
		fputs(", \"build\": ", out);
		gs_esc_json(out, main->python_build);
		fputs(", \"mechanism\": ", out);
		gs_esc_json(out, main->mechanism);
		fputs("}", out);
	} else {
		fputs("null", out);
	}
	for (size_t i = 0; i < a->nprocs; i++)
		if (a->procs[i].pid == a->target_pid && a->procs[i].python_error[0]) {
			fputs(", \"python_error\": ", out);
			gs_esc_json(out, a->procs[i].python_error);
		}
}

/* The run: command, mode, duration, the recorder's counts and costs, how complete it is. */
static void json_run(const struct gs_analysis *a, FILE *out)
{
	fputs(", \"command\": ", out);
	gs_esc_json(out, a->command);
	fprintf(out, ", \"mode\": \"%s\", \"target_pid\": %u", a->attach ? "attach" : "launch", a->target_pid);
	if (a->sched_source[0]) {
		fputs(", \"sched_source\": ", out);
		gs_esc_json(out, a->sched_source);
	}
	kv(out, "duration_ns", a->end_ns > a->start_ns ? a->end_ns - a->start_ns : 0);
	kv(out, "lost_events", a->lost_events);
	kv(out, "gil_events", a->gil_events);
	kv(out, "sched_events", a->sched_events);
	kv(out, "recorder_cpu_ns", a->recorder_cpu_ns);
	kv(out, "recorder_max_rss_kb", a->recorder_max_rss_kb);
	kv(out, "stack_samples", a->stack_samples);
	kv(out, "stack_errors", a->stack_errors);
	kv(out, "stack_rate_hz", a->stack_rate_hz);
	kv(out, "threads_named", a->names_read);
	kv(out, "thread_name_read_failures", a->names_failed);
	kv(out, "threads_unnamed", unnamed_threads(a));
	if (a->have_native) {
		fputs(", \"native_stacks\": {", out);
		for (size_t i = 0; i < GS_ARRAY_SIZE(gs_native_fields); i++)
			fprintf(out, "%s\"%s\": %" PRIu64, i ? ", " : "", gs_native_fields[i].name,
				*(const uint64_t *)((const char *)&a->native + gs_native_fields[i].offset));
		fputc('}', out);
	}
	kv(out, "out_of_order_events", a->out_of_order);
	kv(out, "repaired_inconsistencies", a->anomalies);
	kv(out, "gil_events_while_off_cpu", a->off_cpu_gil_events);
	if (a->tids_translated || a->tids_unattributed) {
		kv(out, "gil_events_from_other_pid_namespaces", a->tids_translated + a->tids_unattributed);
		kv(out, "gil_events_unattributed", a->tids_unattributed);
	}
	if (a->stacks_unattributed)
		kv(out, "stack_samples_unattributed", a->stacks_unattributed);
	fprintf(out, ", \"complete\": %s", a->complete ? "true" : "false");
	if (a->have_exit_status) {
		int st = a->exit_status;
		fprintf(out, ", \"exit_status\": %d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}

/* One process: its main interpreter's GIL figures, then every GIL it used in "gils". */
/* "argv": the image's arguments as an array, and "command": them joined by blanks (null: unknown). */
static void json_argv(FILE *out, const char *enc, const char *fallback)
{
	const char *cur = enc, *arg;
	size_t len, n = 0;
	char buf[4096];
	if (!enc) {
		fputs(", \"command\": ", out);
		fallback ? gs_esc_json(out, fallback) : (void)fputs("null", out);
		fputs(", \"argv\": null", out);
		return;
	}
	buf[0] = '\0';
	while ((arg = gs_argv_next(&cur, &len)) != NULL) {
		size_t l = strlen(buf);
		snprintf(buf + l, sizeof(buf) - l, "%s%.*s", l ? " " : "", (int)len, arg);
	}
	fputs(", \"command\": ", out);
	gs_esc_json(out, buf);
	fputs(", \"argv\": [", out);
	cur = enc;
	while ((arg = gs_argv_next(&cur, &len)) != NULL) {
		char one[4096];
		snprintf(one, sizeof(one), "%.*s", (int)len, arg);
		fputs(n++ ? ", " : "", out);
		gs_esc_json(out, one);
	}
	fputc(']', out);
}

/* "python": the interpreter object, or null. */
static void json_interp(FILE *out, const char *version, const char *path, const char *build)
{
	fputs(", \"python\": ", out);
	if (!version[0]) {
		fputs("null", out);
		return;
	}
	fputs("{\"version\": ", out);
	gs_esc_json(out, version);
	fputs(", \"executable\": ", out);
	gs_esc_json(out, path);
	fputs(", \"build\": ", out);
	gs_esc_json(out, build);
	fputc('}', out);
}

/* A process's identity: parent, command line, start, end, interpreter, and each image it ran. */
static void json_process_identity(const struct gs_analysis *a, FILE *out, const struct gs_process *p)
{
	const struct gs_image *cur = p->nimages ? &p->images[p->nimages - 1] : NULL;
	const char *fallback = p->pid == a->target_pid && a->command[0] ? a->command : NULL;
	int st = p->have_exit ? p->exit_status : a->exit_status;
	fprintf(out, "{\"pid\": %u", p->pid);
	if (p->ppid)
		fprintf(out, ", \"ppid\": %u", p->ppid);
	else
		fputs(", \"ppid\": null", out);
	json_argv(out, cur ? cur->argv : NULL, fallback);
	kv(out, "start_ns", p->first_ns > a->start_ns ? p->first_ns - a->start_ns : 0);
	if (p->have_exit || (p->pid == a->target_pid && a->have_exit_status))
		fprintf(out, ", \"exit_status\": %d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	else
		fputs(", \"exit_status\": null", out);
	json_interp(out, p->python_version, p->python_path, p->python_build);
	fputs(", \"images\": [", out);
	for (size_t i = 0; i < p->nimages; i++) {
		const struct gs_image *im = &p->images[i];
		fprintf(out, "%s{\"start_ns\": %" PRIu64, i ? ", " : "",
			im->start_ns > a->start_ns ? im->start_ns - a->start_ns : 0);
		json_argv(out, im->argv, NULL);
		json_interp(out, im->is_python || im->forked ? im->python_version : "", im->python_path,
			    im->python_build);
		fputc('}', out);
	}
	fputc(']', out);
}

static void json_process(const struct gs_analysis *a, FILE *out, const struct gs_process *p)
{
	uint64_t pw = p->end_ns > p->first_ns ? p->end_ns - p->first_ns : 0;
	const struct gs_gilstat *mg = main_gil(a, p);
	int nth = 0;
	json_process_identity(a, out, p);
	kv(out, "wall_ns", pw);
	kv(out, "gil_held_ns", mg->held_ns);
	kv(out, "gil_contended_ns", mg->contended_ns);
	fprintf(out, ", \"gil_utilisation\": %.6f, \"gil_contention\": %.6f",
		pw ? (double)mg->held_ns / (double)pw : 0.0, pw ? (double)mg->contended_ns / (double)pw : 0.0);
	kv(out, "acquisitions", mg->acquisitions);
	kv(out, "forced_drops", mg->forced_drops);
	kv(out, "drop_requests", mg->drop_requests);
	kv(out, "drop_request_latency_avg_ns", mg->drop_latency_n ? mg->drop_latency_sum_ns / mg->drop_latency_n : 0);
	kv(out, "drop_request_latency_max_ns", mg->drop_latency_max_ns);
	if (p->switch_interval_us)
		kv(out, "switch_interval_ns", p->switch_interval_us * 1000);
	else
		fputs(", \"switch_interval_ns\": null", out);
	fputs(", \"gils\": [", out);
	for (size_t k = 0; k < a->ngils; k++) {
		const struct gs_gilstat *g = &a->gils[k];
		if (g->pid != p->pid)
			continue;
		fprintf(out, "%s{\"number\": %d, \"main\": %s, \"locked_address\": %" PRIu64, nth++ ? ", " : "",
			g->number, (int)k == p->main_gil ? "true" : "false", g->ref);
		kv(out, "wall_ns", g->end_ns > g->first_ns ? g->end_ns - g->first_ns : 0);
		kv(out, "held_ns", g->held_ns);
		kv(out, "contended_ns", g->contended_ns);
		kv(out, "acquisitions", g->acquisitions);
		kv(out, "forced_drops", g->forced_drops);
		fputs("}", out);
	}
	fputs("]", out);
	gs_ctr_json_process(a, out, p);
	fputs("}", out);
}

/* "waited_while_held_by": for each holder the thread waited behind, the time and the holder's
 * three most sampled stacks during those waits. */
static void json_waited_behind(const struct gs_analysis *a, FILE *out, const struct gs_thread *t)
{
	fputs(", \"waited_while_held_by\": [", out);
	for (size_t k = 0; k < t->nblame; k++) {
		const struct gs_stack_count *tops[3];
		uint64_t tot = 0;
		uint32_t holder = t->blame[k].holder;
		size_t nt = holder ? top_stacks_peer(a, GS_WHAT_HELD_FOR, t->tid, holder, tops, 3, &tot) : 0;
		fprintf(out,
			"%s{\"holder_tid\": %u, \"ns\": %" PRIu64 ", \"holder_samples\": %" PRIu64
			", \"holder_stacks\": [",
			k ? ", " : "", holder, t->blame[k].ns, tot);
		for (size_t q = 0; q < nt; q++) {
			fprintf(out, "%s{\"samples\": %" PRIu64 ", \"stack\": ", q ? ", " : "", tops[q]->amount);
			json_stack(a, out, tops[q]->stack);
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("]", out);
}

/* One thread: identity, time in each state, GIL counts, whom it waited behind and where. */
static void json_thread(const struct gs_analysis *a, FILE *out, const struct gs_thread *t)
{
	fprintf(out, "{\"pid\": %u, \"tid\": %u, \"name\": ", t->pid, t->tid);
	gs_esc_json(out, gs_thread_name(a, t));
	fputs(", \"python_name\": ", out);
	if (t->pyname[0])
		gs_esc_json(out, t->pyname);
	else
		fputs("null", out);
	fputs(", \"comm\": ", out);
	gs_esc_json(out, t->name);
	fputs(", \"label\": ", out);
	gs_esc_json(out, gs_thread_label(a, t));
	fprintf(out, ", \"is_main\": %s, \"exited\": %s, \"gil\": %d", t->is_main ? "true" : "false",
		t->exited ? "true" : "false", t->gil_index >= 0 ? a->gils[t->gil_index].number : 0);
	kv(out, "start_ns", t->first_ns - a->start_ns);
	kv(out, "lifetime_ns", lifetime(t));
	kv(out, "gil_held_ns", t->held_ns);
	kv(out, "gil_held_off_cpu_ns", t->held_offcpu_ns);
	kv(out, "gil_wait_ns", t->wait_ns);
	kv(out, "gil_wait_sleeping_ns", t->wait_sleep_ns);
	kv(out, "gil_wait_runnable_ns", t->wait_runnable_ns);
	kv(out, "gil_wait_on_cpu_ns", t->wait_oncpu_ns);
	kv(out, "running_no_gil_ns", t->run_nogil_ns);
	kv(out, "sleeping_ns", t->sleeping_ns);
	kv(out, "uninterruptible_ns", t->uninterruptible_ns);
	kv(out, "runnable_ns", t->runnable_ns);
	kv(out, "unknown_ns", t->unknown_ns);
	kv(out, "acquisitions", t->acquisitions);
	kv(out, "releases", t->releases);
	kv(out, "forced_drops", t->forced_drops);
	kv(out, "voluntary_releases", t->releases - t->forced_drops);
	kv(out, "drop_requests", t->drop_requests);
	kv(out, "drop_requests_received", t->drop_requests_received);
	kv(out, "drop_request_latency_avg_ns", t->forced_drops ? t->drop_latency_sum_ns / t->forced_drops : 0);
	kv(out, "drop_request_latency_max_ns", t->drop_latency_max_ns);
	kv(out, "longest_hold_ns", t->longest_hold_ns);
	kv(out, "longest_wait_ns", t->longest_wait_ns);
	kv(out, "lost_events_while_alive", t->lost_while_alive);
	gs_convoy_json(a, out, t);
	json_waited_behind(a, out, t);
	json_wait_sites(a, out, t);
	gs_ctr_json_thread(a, out, t);
	fputs("}", out);
}

/* "longest_holds": the longest GIL holds of the run, with their stacks. */
static void json_longest_holds(const struct gs_analysis *a, FILE *out)
{
	fputs(", \"longest_holds\": [", out);
	for (int i = 0; i < a->ntop_holds; i++) {
		const struct gs_hold *h = &a->top_holds[i];
		fprintf(out, "%s{\"pid\": %u, \"tid\": %u, \"gil\": %d", i ? ", " : "", h->pid, h->tid, h->gil);
		kv(out, "start_ns", h->start_ns - a->start_ns);
		kv(out, "ns", h->ns);
		fprintf(out, ", \"max_waiters\": %d", h->max_waiters);
		kv(out, "waited_ns", h->waited_ns);
		fprintf(out, ", \"open\": %s, \"stack_samples\": %u, \"stack\": ", h->open ? "true" : "false",
			h->samples);
		json_stack(a, out, h->samples ? h->stack : 0);
		fputs("}", out);
	}
	fputs("]", out);
}

void gs_report_json(const struct gs_analysis *a, FILE *out)
{
	const struct gs_thread **v = sorted_threads(a);

	fputs("{\"schema\": \"gilscope.report/3\"", out);
	json_python(a, out);
	json_run(a, out);
	fputs(", \"processes\": [", out);
	for (size_t i = 0; i < a->nprocs; i++) {
		fputs(i ? ", " : "", out);
		json_process(a, out, &a->procs[i]);
	}
	fputs("], \"threads\": [", out);
	for (size_t i = 0; i < a->nthreads; i++) {
		fputs(i ? ", " : "", out);
		json_thread(a, out, v[i]);
	}
	fputs("]", out);
	json_longest_holds(a, out);
	gs_ctr_json_run(a, out);
	fputs("}\n", out);
	free(v);
}

/* "wait_sites": each wait's time and count by the stack it waited in (stack null: no sample
 * fell in the wait), the longest first, at most 10. */
static void json_wait_sites(const struct gs_analysis *a, FILE *out, const struct gs_thread *t)
{
	const struct gs_stack_count *tops[10];
	uint64_t tot;
	size_t nt = top_stacks_peer(a, GS_WHAT_WAITED_NS, t->tid, 0, tops, 10, &tot);
	fputs(", \"wait_sites\": [", out);
	for (size_t q = 0; q < nt; q++) {
		uint64_t waits = 0;
		for (size_t i = 0; i < a->cap_counts; i++) {
			const struct gs_stack_count *c = &a->counts[i];
			if (c->amount && c->what == GS_WHAT_WAITS && c->tid == t->tid && c->stack == tops[q]->stack)
				waits = c->amount;
		}
		fprintf(out, "%s{\"ns\": %" PRIu64 ", \"waits\": %" PRIu64 ", \"stack\": ", q ? ", " : "",
			tops[q]->amount, waits);
		json_stack(a, out, tops[q]->stack);
		fputc('}', out);
	}
	fputc(']', out);
}

/* A stack as [{"function", "file", "line"}, ...], innermost first; null when none was sampled. */
static void json_stack(const struct gs_analysis *a, FILE *out, uint64_t stack)
{
	int n = 0;
	const uint32_t *f = stack ? gs_analysis_stack(a, stack, &n) : NULL;
	if (!f) {
		fputs("null", out);
		return;
	}
	fputc('[', out);
	for (int i = 0; i < n; i++) {
		const struct gs_frame_def *d = f[i] && f[i] <= a->nframes ? &a->frames[f[i] - 1] : NULL;
		fputs(i ? ", {\"function\": " : "{\"function\": ", out);
		gs_esc_json(out, d && d->qualname ? d->qualname : "?");
		if (d && d->native) {
			fputs(", \"module\": ", out);
			gs_esc_json(out, d->filename ? d->filename : "?");
			fputs(", \"native\": true}", out);
			continue;
		}
		fputs(", \"file\": ", out);
		gs_esc_json(out, d && d->filename ? d->filename : "?");
		fprintf(out, ", \"line\": %d}", d ? d->line : 0);
	}
	fputc(']', out);
}

static int cmp_blame(const void *x, const void *y)
{
	const struct gs_blame *a = x, *b = y;
	return a->ns < b->ns ? 1 : a->ns > b->ns ? -1 : 0;
}

/* The label of thread tid as the terminal may show it, in buf. */
static const char *thread_name(const struct gs_analysis *a, uint32_t tid, char *buf, size_t len)
{
	const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)a, tid);
	return term(buf, len, t ? gs_thread_name(a, t) : "?");
}

static void longest_holds(const struct gs_analysis *a, FILE *out, int n)
{
	char d1[32], d2[32], name[1024];
	if (!a->ntop_holds)
		return;
	fprintf(out, "Longest holds:\n");
	for (int i = 0; i < a->ntop_holds && i < n; i++) {
		const struct gs_hold *h = &a->top_holds[i];
		gs_fmt_dur(d1, sizeof(d1), h->ns);
		gs_fmt_dur(d2, sizeof(d2), h->waited_ns);
		fprintf(out, "  %9s  TID %u (%s) held GIL %d from +%.3fs", d1, h->tid,
			thread_name(a, h->tid, name, sizeof(name)), h->gil, (double)(h->start_ns - a->start_ns) / 1e9);
		if (h->max_waiters)
			fprintf(out, " while %d thread%s waited (%s of waiting)", h->max_waiters,
				h->max_waiters > 1 ? "s" : "", d2);
		else
			fprintf(out, ", nobody waiting");
		fprintf(out, "%s\n", h->open ? ", still held at the end" : "");
		if (h->samples) {
			char line[4096];
			stack_line(a, h->stack, 6, line, sizeof(line));
			fprintf(out, "             in %s\n", line);
		}
	}
}

static int cmp_counts(const void *x, const void *y)
{
	const struct gs_stack_count *a = *(const struct gs_stack_count *const *)x,
				    *b = *(const struct gs_stack_count *const *)y;
	return a->amount < b->amount ? 1 : a->amount > b->amount ? -1 : 0;
}

/* The n most sampled stacks of (what, tid), most first; returns how many, total in *total. */
static size_t top_stacks_peer(const struct gs_analysis *a, uint32_t what, uint32_t tid, uint32_t peer,
			      const struct gs_stack_count **out, size_t n, uint64_t *total);

static size_t top_stacks(const struct gs_analysis *a, uint32_t what, uint32_t tid, const struct gs_stack_count **out,
			 size_t n, uint64_t *total)
{
	return top_stacks_peer(a, what, tid, 0, out, n, total);
}

/* The n most sampled stacks of (what, tid, peer), and the samples of them all. */
static size_t top_stacks_peer(const struct gs_analysis *a, uint32_t what, uint32_t tid, uint32_t peer,
			      const struct gs_stack_count **out, size_t n, uint64_t *total)
{
	const struct gs_stack_count **v;
	size_t k = 0;
	*total = 0;
	if (!a->ncounts)
		return 0;
	v = gs_malloc(a->ncounts * sizeof(*v));
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (c->amount && c->what == what && c->tid == tid && c->peer == peer) {
			v[k++] = c;
			*total += c->amount;
		}
	}
	qsort(v, k, sizeof(*v), cmp_counts);
	if (k > n)
		k = n;
	memcpy(out, v, k * sizeof(*v));
	free(v);
	return k;
}

/* "inner <- caller <- ..." of a stack, at most depth frames. */
static void stack_line(const struct gs_analysis *a, uint64_t stack, int depth, char *buf, size_t len)
{
	int n = 0;
	const uint32_t *f = gs_analysis_stack(a, stack, &n);
	size_t o = 0;
	buf[0] = '\0';
	if (!f) {
		snprintf(buf, len, "(no Python frame: C code or interpreter start-up)");
		return;
	}
	for (int i = 0, shown = 0; i < n && shown < depth && o + 8 < len; i++) {
		char fr[600], vis[4 * sizeof(fr)];
		int w;
		/* native stacks: the leaf, then straight to the Python code that got there */
		if (i > 0 && gs_analysis_frame_native(a, f[i])) {
			int py = i;
			while (py < n && gs_analysis_frame_native(a, f[py]))
				py++;
			if (py < n && py > i) {
				w = snprintf(buf + o, len - o, " <- ..");
				o += w > 0 ? (size_t)w : 0;
				i = py;
			}
		}
		gs_analysis_frame_name(a, f[i], fr, sizeof(fr));
		w = snprintf(buf + o, len - o, "%s%s", i ? " <- " : "", term(vis, sizeof(vis), fr));
		if (w < 0)
			break;
		o += (size_t)w;
		if (++shown == depth && i + 1 < n && o + 8 < len)
			snprintf(buf + o, len - o, " <- ...");
	}
}

size_t gs_report_folded(const struct gs_analysis *a, FILE *out, enum gs_stack_what what)
{
	return gs_report_folded_scaled(a, out, what, 1);
}

size_t gs_report_folded_scaled(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t scale)
{
	return gs_flame_folded(a, out, what, scale);
}

void gs_report_blame(const struct gs_analysis *a, FILE *out, size_t max_holders)
{
	const struct gs_thread **v = sorted_threads(a);
	char d1[32], d2[32], name[1024];
	int any = 0;
	fprintf(out, "Who held the GIL while each thread waited:\n");
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = v[i];
		struct gs_blame *b;
		uint64_t total = 0;
		if (!t->nblame)
			continue;
		b = gs_malloc(t->nblame * sizeof(*b));
		memcpy(b, t->blame, t->nblame * sizeof(*b));
		qsort(b, t->nblame, sizeof(*b), cmp_blame);
		for (size_t k = 0; k < t->nblame; k++)
			total += b[k].ns;
		gs_fmt_dur(d1, sizeof(d1), total);
		fprintf(out, "  TID %u (%s%s) waited %s:\n", t->tid, term(name, sizeof(name), gs_thread_name(a, t)),
			t->is_main ? ", main" : "", d1);
		{
			/* where it waited: each wait's time by the stack sampled first during it (a
			 * parked thread holds still); waits no sample fell in are told apart */
			const struct gs_stack_count *tops[4];
			uint64_t tot, nwaits = 0, unsampled_ns = 0, unsampled = 0;
			size_t nt = top_stacks(a, GS_WHAT_WAITED_NS, t->tid, tops, 4, &tot);
			for (size_t i2 = 0; i2 < a->cap_counts; i2++) {
				const struct gs_stack_count *c = &a->counts[i2];
				if (!c->amount || c->tid != t->tid)
					continue;
				if (c->what == GS_WHAT_WAITS) {
					nwaits += c->amount;
					if (!c->stack)
						unsampled = c->amount;
				} else if (c->what == GS_WHAT_WAITED_NS && !c->stack) {
					unsampled_ns = c->amount;
				}
			}
			for (size_t q = 0, shown = 0; q < nt && shown < 2; q++) {
				char line[2048];
				if (!tops[q]->stack)
					continue;
				stack_line(a, tops[q]->stack, 4, line, sizeof(line));
				fprintf(out, "    waiting %3.0f%% in %s\n", pct(tops[q]->amount, tot), line);
				shown++;
			}
			if (unsampled && a->stack_samples) {
				gs_fmt_dur(d2, sizeof(d2), unsampled_ns);
				fprintf(out,
					"    (%" PRIu64 " of its %" PRIu64 " waits, %s, ended before a stack sample)\n",
					unsampled, nwaits, d2);
			}
		}
		for (size_t k = 0; k < t->nblame && k < max_holders; k++) {
			gs_fmt_dur(d2, sizeof(d2), b[k].ns);
			if (b[k].holder) {
				const struct gs_stack_count *tops[2];
				uint64_t tot;
				/* the holder's stacks sampled while this very thread waited */
				size_t nt = top_stacks_peer(a, GS_WHAT_HELD_FOR, t->tid, b[k].holder, tops, 2, &tot);
				fprintf(out, "    %5.1f%%  %9s  while TID %u (%s) held it\n", pct(b[k].ns, total), d2,
					b[k].holder, thread_name(a, b[k].holder, name, sizeof(name)));
				for (size_t q = 0; q < nt; q++) {
					char line[2048];
					stack_line(a, tops[q]->stack, 4, line, sizeof(line));
					fprintf(out, "              %3.0f%% in %s\n", pct(tops[q]->amount, tot), line);
				}
			} else
				fprintf(out, "    %5.1f%%  %9s  while it was free, being handed over\n",
					pct(b[k].ns, total), d2);
		}
		if (t->nblame > max_holders)
			fprintf(out, "    (%zu more holders)\n", t->nblame - max_holders);
		free(b);
		any = 1;
	}
	if (!any)
		fprintf(out, "  no thread waited for the GIL\n");
	if (a->stack_samples)
		fprintf(out,
			"  (\"in ...\": the holder's stacks sampled while that thread waited, %" PRIu64
			" samples at %" PRIu64 " Hz)\n",
			a->stack_samples, a->stack_rate_hz);
	gs_convoy_text(a, out);
	longest_holds(a, out, GS_TOP_HOLDS);
	lost_note(a, v, out, 1);
	free(v);
}
