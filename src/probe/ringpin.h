/* ringpin.h - the slots of an inline ring (inline.h) that the reader skipped uncommitted, kept
 * from the writers while their own writer may still write them.
 *
 * A writer stalled between its reservation and its commit (preempted for long, SIGSTOPped, a
 * forked child frozen) is skipped by the reader after 200 ms. Were its slot given back, the
 * writer of the next lap would get the same memory, and the stalled writer's late stores (TSC,
 * thread id, event, then its commit) would land on that newer event, committed or not: the reader
 * would give the stalled writer's fields under the newer slot number. So the tail the writers see
 * (the ring's published tail) stays at the oldest pinned slot: at worst the writers find the ring
 * full a lap later and count their events lost. A pin goes when its writer commits (late: its
 * event is not given, it was counted as skipped) or after GS_RINGPIN_NS (a killed writer never
 * commits), or when GS_INLINE_PINS newer ones are taken (the oldest first); both counted in
 * *expired. Pure: the ring is only read.
 */
#ifndef GS_RINGPIN_H
#define GS_RINGPIN_H

#include <stdint.h>

#include "probe/inline.h"

#define GS_RINGPIN_NS 10000000000ull /* a pin is kept this long at most */

/* Slot number `slot` of st's ring was skipped uncommitted at time now: pinned. */
void gs_ringpin_add(struct gs_inline_ring *st, uint64_t slot, uint64_t now, uint64_t *expired);

/* Lets go the pins whose writer has committed, or that are too old; returns the tail the writers
 * may see: the oldest slot still pinned, else st->tail. ring: the ring's memory (its nslots slots
 * after its X86_RING_RHDR header). */
uint64_t gs_ringpin_release(struct gs_inline_ring *st, const uint8_t *ring, uint64_t nslots, uint64_t now,
			    uint64_t *expired);

#endif
