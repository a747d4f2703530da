/* counters.c (output) - counters by GIL state in the report (see counters.h). */
#define _GNU_SOURCE
#include "output/counters.h"
#include "analysis/counters.h"
#include "base/escape.h"

#include <inttypes.h>
#include <string.h>

/* Counter n counts events (rather than being unavailable or taking stacks). */
static int counts(const struct gs_analysis *a, int n)
{
	const struct gs_counter_def *d = &a->ctr->defs[n];
	return d->defined && !d->unavailable[0] && !d->stacks;
}

/* The counting counter named name or alias, -1 when none. */
static int counting(const struct gs_analysis *a, const char *name, const char *alias)
{
	int n = gs_ctr_find(a, name, 0);
	return n >= 0 ? n : alias ? gs_ctr_find(a, alias, 0) : -1;
}

/* Counts of counter n by state (and the total in v[GS_CTR_NSTATES]) of thread t, or of every
 * thread of pid when t is NULL. */
static void sum(const struct gs_analysis *a, const struct gs_thread *t, uint32_t pid, int n,
		uint64_t v[GS_CTR_NSTATES + 1])
{
	memset(v, 0, sizeof(uint64_t) * (GS_CTR_NSTATES + 1));
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *x = &a->threads[i];
		if (t ? x != t : x->pid != pid)
			continue;
		for (int s = 0; s < GS_CTR_NSTATES; s++) {
			v[s] += gs_ctr_count(x, n, s);
			v[GS_CTR_NSTATES] += gs_ctr_count(x, n, s);
		}
	}
}

static void json_ratio(FILE *out, uint64_t num, uint64_t den)
{
	if (den)
		fprintf(out, "%.4f", (double)num / (double)den);
	else
		fputs("null", out);
}

/* ", "counters": {...}, "ipc": {...}|null" of thread t or process pid. */
static void json_counts(const struct gs_analysis *a, FILE *out, const struct gs_thread *t, uint32_t pid)
{
	int nc = 0, ins, cyc;
	if (!a->ctr)
		return;
	fputs(", \"counters\": {", out);
	for (int n = 0; n < a->ctr->n; n++) {
		uint64_t v[GS_CTR_NSTATES + 1];
		if (!counts(a, n))
			continue;
		sum(a, t, pid, n, v);
		fputs(nc++ ? ", " : "", out);
		gs_esc_json(out, a->ctr->defs[n].name);
		fprintf(out, ": {\"total\": %" PRIu64, v[GS_CTR_NSTATES]);
		for (int s = 0; s < GS_CTR_NSTATES; s++)
			fprintf(out, ", \"%s\": %" PRIu64, gs_ctr_state_names[s], v[s]);
		fputs("}", out);
	}
	fputs("}, \"ipc\": ", out);
	ins = counting(a, "instructions", NULL);
	cyc = counting(a, "cycles", "cpu-cycles");
	if (ins < 0 || cyc < 0) {
		fputs("null", out);
		return;
	}
	{
		uint64_t vi[GS_CTR_NSTATES + 1], vc[GS_CTR_NSTATES + 1];
		sum(a, t, pid, ins, vi);
		sum(a, t, pid, cyc, vc);
		fputs("{\"held\": ", out);
		json_ratio(out, vi[GS_CTR_HELD], vc[GS_CTR_HELD]);
		fputs(", \"no_gil\": ", out);
		json_ratio(out, vi[GS_CTR_NOGIL], vc[GS_CTR_NOGIL]);
		fputs(", \"all\": ", out);
		json_ratio(out, vi[GS_CTR_NSTATES], vc[GS_CTR_NSTATES]);
		fputs("}", out);
	}
}

void gs_ctr_json_thread(const struct gs_analysis *a, FILE *out, const struct gs_thread *t)
{
	json_counts(a, out, t, t->pid);
}

void gs_ctr_json_process(const struct gs_analysis *a, FILE *out, const struct gs_process *p)
{
	json_counts(a, out, NULL, p->pid);
}

void gs_ctr_json_run(const struct gs_analysis *a, FILE *out)
{
	if (!a->ctr)
		return;
	fputs(", \"counter_events\": [", out);
	for (int n = 0, k = 0; n < a->ctr->n; n++) {
		const struct gs_counter_def *d = &a->ctr->defs[n];
		if (!d->defined)
			continue;
		fputs(k++ ? ", {\"name\": " : "{\"name\": ", out);
		gs_esc_json(out, d->name);
		fprintf(out, ", \"recorded\": %s, \"why_not\": ", d->unavailable[0] ? "false" : "true");
		if (d->unavailable[0])
			gs_esc_json(out, d->unavailable);
		else
			fputs("null", out);
		fprintf(out,
			", \"use\": \"%s\", \"period\": %" PRIu64 ", \"hardware\": %s, \"attribution\": \"%s\", "
			"\"stack_samples\": %" PRIu64 ", \"unattributed\": %" PRIu64 "}",
			d->stacks ? "stacks" : "counts", d->period, d->hardware ? "true" : "false",
			d->stacks        ? "stack read from memory right after the event, state at the event"
			: d->period == 1 ? "every occurrence, state at that instant"
					 : "one sample per period, state at the sample's time",
			d->stack_samples, d->unattributed);
	}
	fputs("]", out);
}

/* One line of the counters table: a thread, or a process's total (t NULL). */
static void text_line(const struct gs_analysis *a, FILE *out, const struct gs_thread *t, uint32_t pid, int n)
{
	uint64_t v[GS_CTR_NSTATES + 1];
	char who[32], name[256], ev[64];
	sum(a, t, pid, n, v);
	if (!v[GS_CTR_NSTATES])
		return;
	gs_esc_term_buf(ev, 23, a->ctr->defs[n].name);
	if (t) {
		snprintf(who, sizeof(who), "%u", t->tid);
		gs_esc_term_cell(name, sizeof(name), gs_thread_name(a, t), 20, 20, NULL);
	} else {
		snprintf(who, sizeof(who), "%u", pid);
		gs_esc_term_cell(name, sizeof(name), "(process total)", 20, 20, NULL);
	}
	fprintf(out, "   %-8s %s %-22s %11" PRIu64 " %11" PRIu64 " %11" PRIu64 " %11" PRIu64 " %11" PRIu64 "\n", who,
		name, ev, v[GS_CTR_NSTATES], v[GS_CTR_HELD], v[GS_CTR_WAIT], v[GS_CTR_NOGIL], v[GS_CTR_OTHER]);
}

static void text_ipc(const struct gs_analysis *a, FILE *out)
{
	int ins = counting(a, "instructions", NULL), cyc = counting(a, "cycles", "cpu-cycles");
	if (ins < 0 || cyc < 0)
		return;
	for (size_t i = 0; i < a->nprocs; i++) {
		uint64_t vi[GS_CTR_NSTATES + 1], vc[GS_CTR_NSTATES + 1];
		sum(a, NULL, a->procs[i].pid, ins, vi);
		sum(a, NULL, a->procs[i].pid, cyc, vc);
		if (!vc[GS_CTR_HELD] && !vc[GS_CTR_NOGIL])
			continue;
		fprintf(out, "IPC of process %u: %.2f instructions per cycle holding the GIL, %.2f without it\n",
			a->procs[i].pid, vc[GS_CTR_HELD] ? (double)vi[GS_CTR_HELD] / (double)vc[GS_CTR_HELD] : 0.0,
			vc[GS_CTR_NOGIL] ? (double)vi[GS_CTR_NOGIL] / (double)vc[GS_CTR_NOGIL] : 0.0);
	}
}

void gs_ctr_text(const struct gs_analysis *a, FILE *out)
{
	if (!a->ctr)
		return;
	fprintf(out, "\nCounters by GIL state (software events: every occurrence, in the thread's state at that "
		     "instant;\nhardware events: one sample per period, in the state at the sample's time):\n");
	fprintf(out, "   %-8s %-20s %-22s %11s %11s %11s %11s %11s\n", "TID", "NAME", "EVENT", "TOTAL", "HELD", "WAIT",
		"NO_GIL", "OTHER");
	for (int n = 0; n < a->ctr->n; n++) {
		if (!counts(a, n))
			continue;
		for (size_t i = 0; i < a->nthreads; i++)
			text_line(a, out, &a->threads[i], a->threads[i].pid, n);
		for (size_t i = 0; i < a->nprocs; i++)
			text_line(a, out, NULL, a->procs[i].pid, n);
	}
	text_ipc(a, out);
	for (int n = 0; n < a->ctr->n; n++) {
		const struct gs_counter_def *d = &a->ctr->defs[n];
		char why[sizeof(d->unavailable)], name[sizeof(d->name)];
		gs_esc_term_buf(why, sizeof(why), d->unavailable);
		gs_esc_term_buf(name, sizeof(name), d->name);
		if (d->defined && d->unavailable[0])
			fprintf(out, "not recorded: %s\n", why);
		else if (d->defined && d->stacks)
			fprintf(out,
				"%s: %" PRIu64 " Python stacks, one per %" PRIu64
				" events, read right after the event (export --format folded --what %s)\n",
				name, d->stack_samples, d->period, name);
	}
}
