/* convoy.c - the convoy diagnosis (see convoy.h). */
#include "analysis/convoy.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* Bucket 0: under 1 us (2^10 ns); then 8 per octave from 2^10 to 2^37 ns; the last: above. */
unsigned gs_convoy_bucket(uint64_t ns)
{
	unsigned e;
	if (ns < 1024)
		return 0;
	e = 63u - (unsigned)__builtin_clzll(ns);
	if (e >= 38)
		return GS_CONVOY_BUCKETS - 1;
	return 1 + (e - 10) * 8 + (unsigned)((ns >> (e - 3)) & 7);
}

uint64_t gs_convoy_bucket_mid(unsigned b)
{
	unsigned e, s;
	if (b == 0)
		return 512;
	if (b >= GS_CONVOY_BUCKETS - 1)
		return 1ull << 38;
	e = (b - 1) / 8 + 10;
	s = (b - 1) % 8;
	return (1ull << e) + ((2ull * s + 1) << (e - 4)); /* low end + (s + 1/2) steps of 2^(e-3) */
}

static struct gs_convoy *stats(struct gs_thread *t)
{
	if (!t->convoy)
		t->convoy = gs_calloc(1, sizeof(*t->convoy));
	return t->convoy;
}

void gs_convoy_hold_end(struct gs_gilstat *g, struct gs_thread *t, uint64_t hold_ns, int forced)
{
	struct gs_convoy *c = stats(t);
	c->holds[gs_convoy_bucket(hold_ns)]++;
	c->nholds++;
	g->convoy_forced_by = forced ? t->tid : 0;
}

void gs_convoy_wait_end(const struct gs_gilstat *g, struct gs_thread *t, uint64_t wait_ns)
{
	struct gs_convoy *c = stats(t);
	uint32_t by = g->convoy_forced_by;
	c->waits[gs_convoy_bucket(wait_ns)]++;
	c->nwaits++;
	if (!by || by == t->tid)
		return;
	c->forced_waits++;
	c->forced_wait_ns += wait_ns;
	c->forced[gs_convoy_bucket(wait_ns)]++;
	for (int i = 0; i < GS_CONVOY_FORCERS; i++) {
		if (c->forcers[i].tid == by || !c->forcers[i].tid) {
			c->forcers[i].tid = by;
			c->forcers[i].waits++;
			return;
		}
	}
	/* more holders than slots: the one with fewest waits makes room */
	{
		int low = 0;
		for (int i = 1; i < GS_CONVOY_FORCERS; i++)
			if (c->forcers[i].waits < c->forcers[low].waits)
				low = i;
		c->forcers[low].tid = by;
		c->forcers[low].waits = 1;
	}
}

static uint64_t median(const uint32_t *h, uint64_t n)
{
	uint64_t seen = 0;
	for (unsigned b = 0; b < GS_CONVOY_BUCKETS && n; b++) {
		seen += h[b];
		if (2 * seen >= n)
			return gs_convoy_bucket_mid(b);
	}
	return 0;
}

int gs_convoy_find(const struct gs_analysis *a, const struct gs_thread *t, struct gs_convoy_verdict *v)
{
	const struct gs_convoy *c = t->convoy;
	const struct gs_process *p = gs_analysis_process((struct gs_analysis *)a, t->pid);

	memset(v, 0, sizeof(*v));
	v->interval_read = p && p->switch_interval_us;
	v->interval_us = v->interval_read ? p->switch_interval_us : GS_CONVOY_DEFAULT_INTERVAL_US;
	v->wait_ns = t->wait_ns;
	v->lifetime_ns = t->end_ns > t->first_ns ? t->end_ns - t->first_ns : 0;
	v->releases = t->releases;
	v->voluntary = t->releases - t->forced_drops;
	if (!c)
		return 0;
	v->median_wait_ns = median(c->waits, c->nwaits);
	v->median_hold_ns = median(c->holds, c->nholds);
	v->median_forced_wait_ns = median(c->forced, c->forced_waits);
	v->waits = c->nwaits;
	v->forced_waits = c->forced_waits;
	v->forced_wait_ns = c->forced_wait_ns;
	for (int i = 0; i < GS_CONVOY_FORCERS && c->forcers[i].tid; i++) {
		int j = v->nforcers++;
		/* insertion by waits, most first */
		while (j > 0 && v->forcer_waits[j - 1] < c->forcers[i].waits) {
			v->forcers[j] = v->forcers[j - 1];
			v->forcer_waits[j] = v->forcer_waits[j - 1];
			j--;
		}
		v->forcers[j] = c->forcers[i].tid;
		v->forcer_waits[j] = c->forcers[i].waits;
	}
	v->in_convoy = p && gs_process_tells_forced_drops(p) && c->nwaits >= GS_CONVOY_MIN_WAITS &&
		       t->releases >= GS_CONVOY_MIN_WAITS && 4 * v->voluntary >= 3 * t->releases &&
		       v->median_hold_ns * 10 < v->interval_us * 1000 && t->wait_ns &&
		       10 * t->wait_ns >= v->lifetime_ns && c->forced_waits >= GS_CONVOY_MIN_FORCED &&
		       2 * c->forced_wait_ns >= t->wait_ns;
	return v->in_convoy;
}

void gs_convoy_free(struct gs_thread *t)
{
	free(t->convoy);
	t->convoy = NULL;
}
