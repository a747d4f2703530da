/* counters.c (analysis) - counters by GIL state (see counters.h). */
#define _GNU_SOURCE
#include "analysis/counters.h"
#include "analysis/stacks.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

#define GS_WHAT_COUNTER_BASE 200u /* beyond the flame graph kinds and GS_WHAT_WAITS */
#define TRACK_NS 1000000ull       /* counter tracks: a point a millisecond at most */

const char *const gs_ctr_state_names[GS_CTR_NSTATES] = { "held", "wait", "no_gil", "other" };

/* "counter.N.field": N and field, or -1. */
static int parse_key(const char *key, const char **field)
{
	const char *p = key + 8;
	int n = 0;
	if (strncmp(key, "counter.", 8) != 0 || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9' && n < GS_CTR_MAX; p++)
		n = n * 10 + (*p - '0');
	if (*p != '.' || n >= GS_CTR_MAX)
		return -1;
	*field = p + 1;
	return n;
}

int gs_ctr_on_meta(struct gs_analysis *a, const struct gs_meta *m)
{
	const char *field;
	struct gs_counter_def *d;
	int n = parse_key(m->key, &field);
	if (n < 0)
		return strncmp(m->key, "counter.", 8) == 0; /* a malformed counter fact: ignored */
	if (!a->ctr)
		a->ctr = gs_calloc(1, sizeof(*a->ctr));
	d = &a->ctr->defs[n];
	if (n >= a->ctr->n)
		a->ctr->n = n + 1;
	d->defined = 1;
	if (strcmp(field, "name") == 0) {
		snprintf(d->name, sizeof(d->name), "%s", m->text);
		if (!d->period)
			d->period = 1;
	} else if (strcmp(field, "unavailable") == 0) {
		snprintf(d->unavailable, sizeof(d->unavailable), "%s", m->text);
	} else if (strcmp(field, "period") == 0 && m->is_number) {
		d->period = m->u64 ? m->u64 : 1;
	} else if (strcmp(field, "hardware") == 0 && m->is_number) {
		d->hardware = m->u64 != 0;
	} else if (strcmp(field, "stacks") == 0 && m->is_number) {
		d->stacks = m->u64 != 0;
	}
	return 1;
}

enum gs_ctr_state gs_ctr_state(const struct gs_process *p, const struct gs_thread *t)
{
	if (t->gil == GS_GIL_HELD)
		return GS_CTR_HELD;
	if (t->gil == GS_GIL_WAIT)
		return GS_CTR_WAIT;
	return p && p->is_python ? GS_CTR_NOGIL : GS_CTR_OTHER;
}

uint32_t gs_ctr_what(int n, int s) { return GS_WHAT_COUNTER_BASE + (uint32_t)n * 8u + (s < 0 ? 4u : (uint32_t)s); }

/* The thread's running total of counter n as a counter track (hooks->counter: trace JSON), at
 * most one point a millisecond per thread and counter. */
static void track(struct gs_analysis *a, const struct gs_thread *t, int n, uint64_t now)
{
	uint64_t *last = &t->ctr[GS_CTR_MAX * GS_CTR_NSTATES + n];
	char name[96];
	if (!a->hooks || !a->hooks->counter || (*last && now < *last + TRACK_NS))
		return;
	*last = now;
	snprintf(name, sizeof(name), "%s (TID %u)", a->ctr->defs[n].name, t->tid);
	a->hooks->counter(a->hooks->ctx, t->pid, t->tid, now, name, gs_ctr_count(t, n, GS_CTR_NSTATES));
}

void gs_ctr_on_record(struct gs_analysis *a, const struct gs_process *p, struct gs_thread *t, const struct gs_rec *r)
{
	struct gs_counter_def *d;
	enum gs_ctr_state s;
	int n = r->arg;
	if (n < 0 || n >= GS_CTR_MAX)
		return;
	if (!a->ctr)
		a->ctr = gs_calloc(1, sizeof(*a->ctr));
	d = &a->ctr->defs[n];
	if (!d->defined) { /* a record before (or without) its definition */
		d->defined = 1;
		d->period = 1;
		snprintf(d->name, sizeof(d->name), "counter%d", n);
		if (n >= a->ctr->n)
			a->ctr->n = n + 1;
	}
	if (!t || t->exited) {
		d->unattributed += r->type == GS_REC_CTR_STACK ? d->period : r->arg64;
		return;
	}
	s = gs_ctr_state(p, t);
	if (r->type == GS_REC_CTR_STACK) {
		d->stack_samples++;
		gs_stacks_count(a, gs_ctr_what(n, (int)s), 0, r->arg64, d->period);
		gs_stacks_count(a, gs_ctr_what(n, -1), 0, r->arg64, d->period);
		return;
	}
	if (!t->ctr) /* the counts, then when each counter's track was last drawn */
		t->ctr = gs_calloc((size_t)GS_CTR_MAX * (GS_CTR_NSTATES + 1), sizeof(uint64_t));
	t->ctr[n * GS_CTR_NSTATES + s] += r->arg64;
	track(a, t, n, r->time);
}

uint64_t gs_ctr_count(const struct gs_thread *t, int n, int s)
{
	uint64_t v = 0;
	if (!t->ctr || n < 0 || n >= GS_CTR_MAX)
		return 0;
	if (s < GS_CTR_NSTATES)
		return t->ctr[n * GS_CTR_NSTATES + s];
	for (int k = 0; k < GS_CTR_NSTATES; k++)
		v += t->ctr[n * GS_CTR_NSTATES + k];
	return v;
}

int gs_ctr_find(const struct gs_analysis *a, const char *name, int stacks)
{
	for (int n = 0; a->ctr && n < a->ctr->n; n++) {
		const struct gs_counter_def *d = &a->ctr->defs[n];
		if (d->defined && !d->unavailable[0] && d->stacks == stacks && strcmp(d->name, name) == 0)
			return n;
	}
	return -1;
}

void gs_ctr_free(struct gs_analysis *a)
{
	for (size_t i = 0; i < a->nthreads; i++) {
		free(a->threads[i].ctr);
		a->threads[i].ctr = NULL;
	}
	free(a->ctr);
	a->ctr = NULL;
}
