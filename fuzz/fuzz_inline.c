/* fuzz_inline.c - the inline-probe ring reader (inline.c gs_inline_drain). The ring is shared
 * memory the traced program can write, so its header and slots are hostile: the input is the
 * ring's header words and slots; the reader drains it twice (the second time with the clock
 * anchors of the first, to interpolate). */
#include "fuzz.h"

#include "probe/inline.h"
#include "base/util.h"
#include "probe/x86.h"

static void on_event(const struct gs_inline_event *e, void *arg)
{
	unsigned long *n = arg;
	(void)e;
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double rates[4] = { 0.3846, 1.0, 2.5, 0.0001 };
	struct gs_inline il;
	unsigned long n = 0;
	uint64_t tail, lost;
	size_t slots;

	gs_verbose = 0;
	if (size < 10)
		return 0;
	slots = (size_t)1 << (data[0] & 7); /* 1 to 128 slots */
	memcpy(&tail, data + 1, 8);
	tail &= (data[9] & 1) ? ~0ull : 0xffff;
	data += 10, size -= 10;

	memset(&il, 0, sizeof(il));
	il.memfd = -1;
	il.nslots = slots;
	il.size = X86_RING_HDR + slots * X86_SLOT_SIZE;
	il.map = calloc(1, il.size);
	if (!il.map)
		abort();
	/* the header (head, tail, lost), then the slots, as the program left them */
	if (size >= 24) {
		memcpy(il.map, data, 24);
		data += 24, size -= 24;
	}
	memcpy(il.map + X86_RING_HDR, data, size < slots * X86_SLOT_SIZE ? size : slots * X86_SLOT_SIZE);
	il.tail = tail;
	il.ns_per_tick = rates[tail & 3];
	il.kernel_rate = (tail >> 2) & 1;
	il.cal_tsc = x86_rdtsc();
	il.cal_ns = gs_now_ns();
	il.ref_tsc = il.cal_tsc;
	il.ref_ns = il.cal_ns;
	for (int k = 0; k < 2; k++)
		(void)gs_inline_drain(&il, on_event, &n);
	lost = gs_inline_lost(&il);
	(void)lost;
	if (il.tail - tail > slots * 2 + 2)
		abort(); /* it reads what is there, no more */
	free(il.map);
	return 0;
}
