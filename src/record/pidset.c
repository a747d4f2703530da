/* pidset.c - a set of process ids (see pidset.h). */
#include "record/pidset.h"
#include "base/util.h"

#include <stdlib.h>

struct gs_pidset {
	uint32_t *slot; /* 0: empty */
	size_t cap;     /* a power of two */
	size_t n;
};

struct gs_pidset *gs_pidset_new(void)
{
	struct gs_pidset *s = gs_calloc(1, sizeof(*s));
	s->cap = 64;
	s->slot = gs_calloc(s->cap, sizeof(*s->slot));
	return s;
}

void gs_pidset_free(struct gs_pidset *s)
{
	if (!s)
		return;
	free(s->slot);
	free(s);
}

static size_t home(uint32_t pid, size_t cap) { return (size_t)(pid * 2654435761u) & (cap - 1); }

static void put(uint32_t *slot, size_t cap, uint32_t pid)
{
	size_t i = home(pid, cap);
	while (slot[i] && slot[i] != pid)
		i = (i + 1) & (cap - 1);
	slot[i] = pid;
}

void gs_pidset_add(struct gs_pidset *s, uint32_t pid)
{
	if (!s || !pid || gs_pidset_has(s, pid))
		return;
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap * 2;
		uint32_t *slot = gs_calloc(cap, sizeof(*slot));
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				put(slot, cap, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	put(s->slot, s->cap, pid);
	s->n++;
}

int gs_pidset_has(const struct gs_pidset *s, uint32_t pid)
{
	size_t i;
	if (!s || !pid)
		return 0;
	for (i = home(pid, s->cap); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (s->slot[i] == pid)
			return 1;
	return 0;
}

size_t gs_pidset_count(const struct gs_pidset *s) { return s ? s->n : 0; }
