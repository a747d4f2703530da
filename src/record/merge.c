/* merge.c - the time-ordered merge of event queues (see merge.h). */
#include "record/merge.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct pending {
	struct gs_rec r;
	uint64_t seq;  /* the order added, across queues: the tie-break */
	void *payload; /* owned, NULL when none */
	size_t plen;
};

struct queue {
	struct pending *v;
	size_t head, n, cap; /* v[head..n) waits */
	uint64_t last;       /* the newest time added while the queue was in order */
	int unsorted;
};

struct gs_merge {
	struct queue *q;
	int nq;
	uint64_t seq;
};

struct gs_merge *gs_merge_new(int nqueues)
{
	struct gs_merge *m = gs_calloc(1, sizeof(*m));
	m->nq = nqueues > 0 ? nqueues : 1;
	m->q = gs_calloc((size_t)m->nq, sizeof(*m->q));
	return m;
}

void gs_merge_free(struct gs_merge *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nq; i++) {
		for (size_t j = m->q[i].head; j < m->q[i].n; j++)
			free(m->q[i].v[j].payload);
		free(m->q[i].v);
	}
	free(m->q);
	free(m);
}

/* A new record at the end of queue qi, timed time, numbered in the order added, no payload. */
static struct pending *push(struct gs_merge *m, int qi, uint64_t time)
{
	struct queue *q = &m->q[qi >= 0 && qi < m->nq ? qi : m->nq - 1];
	struct pending *p;
	if (q->n == q->cap) {
		if (q->head) { /* reuse the emitted prefix before growing */
			memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof(*q->v));
			q->n -= q->head;
			q->head = 0;
		}
		if (q->n == q->cap) {
			q->cap = q->cap ? q->cap * 2 : 1024;
			q->v = gs_realloc_array(q->v, q->cap, sizeof(*q->v));
		}
	}
	p = &q->v[q->n++];
	p->seq = m->seq++;
	p->payload = NULL;
	p->plen = 0;
	if (time < q->last)
		q->unsorted = 1;
	else
		q->last = time;
	return p;
}

void gs_merge_add(struct gs_merge *m, int qi, const struct gs_rec *r, const void *payload, size_t plen)
{
	struct pending *p = push(m, qi, r->time);
	p->r = *r;
	if (payload && plen) {
		p->payload = gs_malloc(plen);
		memcpy(p->payload, payload, plen);
		p->plen = plen;
	}
}

struct gs_rec *gs_merge_next(struct gs_merge *m, int qi, uint64_t time)
{
	struct pending *p = push(m, qi, time);
	memset(&p->r, 0, sizeof(p->r));
	p->r.time = time;
	return &p->r;
}

static int pending_cmp(const void *x, const void *y)
{
	const struct pending *a = x, *b = y;
	if (a->r.time != b->r.time)
		return a->r.time < b->r.time ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* a goes out before b: older, or as old and added first */
static inline int before(const struct pending *a, const struct pending *b)
{
	return a->r.time < b->r.time || (a->r.time == b->r.time && a->seq < b->seq);
}

size_t gs_merge_flush(struct gs_merge *m, uint64_t watermark, int final, gs_merge_emit_fn emit, void *arg)
{
	size_t emitted = 0;
	for (int i = 0; i < m->nq; i++) {
		struct queue *q = &m->q[i];
		if (q->unsorted) {
			qsort(q->v + q->head, q->n - q->head, sizeof(*q->v), pending_cmp);
			q->unsorted = 0;
			q->last = q->n > q->head ? q->v[q->n - 1].r.time : 0;
		}
	}
	/* the queue with the oldest head gives records until its head passes the oldest head of the
	 * others (the bound, copied: emit may add): one scan of the queues per run, not per record */
	for (;;) {
		struct queue *best = NULL;
		struct pending bound = { .r.time = UINT64_MAX, .seq = UINT64_MAX };
		for (int i = 0; i < m->nq; i++) {
			struct queue *q = &m->q[i];
			if (q->head == q->n)
				continue;
			if (!best || before(&q->v[q->head], &best->v[best->head])) {
				if (best)
					bound = best->v[best->head];
				best = q;
			} else if (before(&q->v[q->head], &bound)) {
				bound = q->v[q->head];
			}
		}
		if (!best)
			break;
		do {
			struct pending *p = &best->v[best->head];
			void *payload = p->payload;
			if (!final && p->r.time >= watermark)
				goto done;
			best->head++;
			p->payload = NULL;
			emit(&p->r, payload, p->plen, arg);
			if (payload) /* most records have none: no call */
				free(payload);
			emitted++;
		} while (best->head < best->n && before(&best->v[best->head], &bound));
	}
done:
	for (int i = 0; i < m->nq; i++) /* an emptied queue starts over at its beginning */
		if (m->q[i].head == m->q[i].n)
			m->q[i].head = m->q[i].n = 0;
	return emitted;
}

size_t gs_merge_pending(const struct gs_merge *m)
{
	size_t n = 0;
	for (int i = 0; i < m->nq; i++)
		n += m->q[i].n - m->q[i].head;
	return n;
}
