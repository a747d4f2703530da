/* ringpin.c - skipped slots kept from the writers (see ringpin.h). */
#include "probe/ringpin.h"
#include "probe/x86.h"

#include <string.h>

void gs_ringpin_add(struct gs_inline_ring *st, uint64_t slot, uint64_t now, uint64_t *expired)
{
	if (st->npins == GS_INLINE_PINS) {
		memmove(st->pin, st->pin + 1, (GS_INLINE_PINS - 1) * sizeof(st->pin[0]));
		memmove(st->pin_since, st->pin_since + 1, (GS_INLINE_PINS - 1) * sizeof(st->pin_since[0]));
		st->npins--;
		(*expired)++;
	}
	st->pin[st->npins] = slot;
	st->pin_since[st->npins++] = now;
}

uint64_t gs_ringpin_release(struct gs_inline_ring *st, const uint8_t *ring, uint64_t nslots, uint64_t now,
			    uint64_t *expired)
{
	uint64_t published = st->tail;
	unsigned k = 0;
	for (unsigned i = 0; i < st->npins; i++) {
		const uint8_t *slot = ring + X86_RING_RHDR + (st->pin[i] & (nslots - 1)) * X86_SLOT_SIZE;
		uint64_t seq = __atomic_load_n((const uint64_t *)slot, __ATOMIC_ACQUIRE);
		if (seq == st->pin[i] + 1)
			continue; /* committed: its writer will not touch it again */
		if (now - st->pin_since[i] >= GS_RINGPIN_NS) {
			(*expired)++;
			continue;
		}
		st->pin[k] = st->pin[i];
		st->pin_since[k++] = st->pin_since[i];
		if (st->pin[i] < published)
			published = st->pin[i];
	}
	st->npins = k;
	return published;
}
