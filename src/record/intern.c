/* intern.c - frame and stack numbering (see intern.h). */
#include "record/intern.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	uint64_t key1, key2; /* frame: the caller's keys; stack: hash of the ids, length */
	uint32_t id;         /* 0: a free slot */
	uint32_t *frames;    /* stacks only */
	int n;
};

struct table {
	struct entry *v;
	size_t cap, count;
	uint32_t last; /* the last id given (ids are never given twice, forgotten ones neither) */
};

struct gs_intern {
	struct table frames, stacks;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static void grow(struct table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	struct entry *nv = gs_calloc(ncap, sizeof(*nv));
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].id) {
			size_t j = (size_t)mix(t->v[i].key1, t->v[i].key2) & (ncap - 1);
			while (nv[j].id)
				j = (j + 1) & (ncap - 1);
			nv[j] = t->v[i];
		}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
}

/* Finds or inserts (k1, k2[, frames]); *fresh set when inserted. */
static struct entry *find(struct table *t, uint64_t k1, uint64_t k2, const uint32_t *frames, int n, int *fresh)
{
	size_t h;
	if ((t->count + 1) * 2 > t->cap)
		grow(t);
	h = (size_t)mix(k1, k2) & (t->cap - 1);
	while (t->v[h].id) {
		struct entry *e = &t->v[h];
		if (e->key1 == k1 && e->key2 == k2 &&
		    (!frames || (e->n == n && !memcmp(e->frames, frames, (size_t)n * sizeof(*frames))))) {
			*fresh = 0;
			return e;
		}
		h = (h + 1) & (t->cap - 1);
	}
	t->v[h].key1 = k1;
	t->v[h].key2 = k2;
	t->v[h].id = ++t->last;
	t->count++;
	if (frames) {
		t->v[h].frames = gs_malloc((size_t)(n > 0 ? n : 1) * sizeof(*frames));
		memcpy(t->v[h].frames, frames, (size_t)n * sizeof(*frames));
		t->v[h].n = n;
	}
	*fresh = 1;
	return &t->v[h];
}

struct gs_intern *gs_intern_new(void) { return gs_calloc(1, sizeof(struct gs_intern)); }

void gs_intern_free(struct gs_intern *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->stacks.cap; i++)
		free(t->stacks.v[i].frames);
	free(t->stacks.v);
	free(t->frames.v);
	free(t);
}

uint32_t gs_intern_frame(struct gs_intern *t, uint64_t key1, uint64_t key2, int *fresh)
{
	return find(&t->frames, key1, key2, NULL, 0, fresh)->id;
}

uint32_t gs_intern_stack(struct gs_intern *t, const uint32_t *ids, int n, int *fresh)
{
	uint64_t h = (uint64_t)n;
	for (int i = 0; i < n; i++)
		h = mix(h, ids[i]);
	return find(&t->stacks, h, (uint64_t)n, ids, n, fresh)->id;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Is any of stack e's frames among the n sorted ids? */
static int uses_any(const struct entry *e, const uint32_t *ids, size_t n)
{
	for (int k = 0; k < e->n; k++)
		if (bsearch(&e->frames[k], ids, n, sizeof(*ids), cmp_id))
			return 1;
	return 0;
}

/* Drops the entries of t that gone says (the frames' ids to gone_ids when not NULL), the others
 * rehashed at the same capacity. */
static void drop_entries(struct table *t, uint64_t key, const uint32_t *ids, size_t nids, uint32_t *gone_ids,
			 size_t *ngone)
{
	struct entry *old = t->v;
	t->v = gs_calloc(t->cap, sizeof(*t->v));
	t->count = 0;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;
		if (!old[i].id)
			continue;
		if (ids ? uses_any(&old[i], ids, nids) : old[i].key1 >> 48 == key >> 48) {
			if (gone_ids)
				gone_ids[(*ngone)++] = old[i].id;
			free(old[i].frames);
			continue;
		}
		j = (size_t)mix(old[i].key1, old[i].key2) & (t->cap - 1);
		while (t->v[j].id)
			j = (j + 1) & (t->cap - 1);
		t->v[j] = old[i];
		t->count++;
	}
	free(old);
}

void gs_intern_forget(struct gs_intern *t, uint64_t key)
{
	uint32_t *gone;
	size_t ngone = 0;
	if (!t || !t->frames.cap)
		return;
	gone = gs_calloc(t->frames.count ? t->frames.count : 1, sizeof(*gone));
	drop_entries(&t->frames, key, NULL, 0, gone, &ngone);
	qsort(gone, ngone, sizeof(*gone), cmp_id);
	if (ngone && t->stacks.cap)
		drop_entries(&t->stacks, 0, gone, ngone, NULL, NULL);
	free(gone);
}

size_t gs_intern_frames(const struct gs_intern *t) { return t->frames.count; }

size_t gs_intern_stacks(const struct gs_intern *t) { return t->stacks.count; }
