/* fuzz_inline.c - the inline-probe ring reader (inline.c gs_inline_drain). The rings are shared
 * memory the traced program can write, so their headers and slots are hostile: the input is the
 * geometry, the reader's tails, then the rings' bytes as the program left them (x86.h's layout);
 * the reader drains them twice (the second time final, with the clock anchors of the first, to
 * interpolate). Checked: a drain reads at most a ring's worth of each ring, gives its events in
 * time order, across the two drains too. */
#include "fuzz.h"

#include "probe/inline.h"
#include "base/util.h"
#include "probe/x86.h"

struct check {
	uint64_t last;
	unsigned long n;
};

static void on_event(const struct gs_inline_event *e, void *arg)
{
	struct check *c = arg;
	if (e->time < c->last)
		abort(); /* out of time order (a hostile TSC may be before the watermark: it is clamped to the last) */
	c->last = e->time;
	c->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double rates[4] = { 0.3846, 1.0, 2.5, 0.0001 };
	struct gs_inline il;
	struct check c = { 0 };
	uint64_t tail, nslots, start[8];
	uint32_t nrings;
	uint8_t *map;
	size_t len;

	gs_verbose = 0;
	if (size < 10)
		return 0;
	nslots = (uint64_t)1 << (data[0] & 7);      /* 1 to 128 slots */
	nrings = (uint32_t)1 << (data[0] >> 3 & 3); /* 1 to 8 rings */
	memcpy(&tail, data + 1, 8);
	tail &= (data[9] & 1) ? ~0ull : 0xffff;
	data += 10, size -= 10;

	len = (size_t)nrings * X86_RING_STRIDE(nslots);
	map = calloc(1, len);
	if (!map || gs_inline_reader_init(&il, map, nrings, nslots) < 0)
		abort();
	memcpy(map, data, size < len ? size : len); /* the rings, headers and slots */
	for (uint32_t r = 0; r < nrings; r++)
		il.rings[r].tail = start[r] = tail + r;
	il.ns_per_tick = rates[tail & 3];
	il.kernel_rate = (tail >> 2) & 1;
	for (int k = 0; k < 2; k++)
		(void)gs_inline_drain(&il, k, on_event, &c);
	(void)gs_inline_lost(&il);
	for (uint32_t r = 0; r < nrings; r++)
		if (il.rings[r].tail - start[r] > nslots * 2)
			abort(); /* it reads what is there, no more */
	gs_inline_close(&il);
	free(map);
	return 0;
}
