/* fuzz_ring_decode.c - the kernel perf ring reader (perf_event.c gs_ring_drain) and the decoder of its
 * records (ring_decode.c gs_ringdec_decode: samples of sched_switch/sched_wakeup/probes/watchpoints,
 * counters, switch, comm, fork, exit, lost, throttle records) and of the native-stack rings (natsample.c
 * gs_natrec_decode: samples with user registers and stack copies), on a ring laid out in
 * ordinary memory.
 *
 * Input: bytes 0-9 set the ring and the tracepoint layout (data pages, tail, head - tail, field
 * offsets and sizes); the rest is written into the data area from the tail on, wrapping. */
#include "fuzz.h"

#include "probe/perf_event.h"
#include "record/ring_decode.h"
#include "record/natsample.h"
#include "base/util.h"

#define PAGE 4096u

static int kind_of(const void *ctx, uint64_t id)
{
	(void)ctx;
	if (id >= GS_PK_COUNTER && id < GS_PK_COUNTER_MAX)
		return (int)id; /* record -e's counters */
	return (int)(id % 9);   /* 0 and 8: unknown ids */
}

struct ctx {
	const struct gs_ring *ring;
	const struct gs_ringdec_layout *l;
	unsigned long events;
};

static void on_record(const struct perf_event_header *h, void *arg)
{
	struct ctx *c = arg;
	const uint8_t *data = (const uint8_t *)c->ring->base + PAGE, *p = (const uint8_t *)h;
	struct gs_ringdec d;

	/* the record lies inside the data area, or whole in the copy buffer */
	if (h->size < sizeof(*h) || !((p >= data && p + h->size <= data + c->ring->data_size) || p == c->ring->copy))
		abort();
	{
		/* the native-stack rings' decoder (natsample.c) on the same records: whatever it
		 * points at lies inside the record */
		struct gs_natrec nr;
		if (gs_natrec_decode(h, &nr) == 0) {
			if (nr.regs && ((const uint8_t *)nr.regs < p ||
					(const uint8_t *)(nr.regs + GS_NATIVE_NREGS) > p + h->size))
				abort();
			if (nr.stack && (nr.stack < p || nr.stack + nr.stack_len > p + h->size))
				abort();
		}
	}
	switch (gs_ringdec_decode(h, c->l, &d)) {
	case GS_RINGDEC_EVENT:
		if (d.r.type == 0 || d.r.type > GS_REC_CTR_SAMPLE || strnlen(d.name, sizeof(d.name)) >= sizeof(d.name))
			abort();
		c->events++;
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_ring r;
	struct perf_event_mmap_page *meta;
	struct gs_ringdec_layout l;
	struct ctx c;
	uint16_t tail16, len16;
	uint64_t tail, mask;
	size_t pages;
	uint8_t flags;

	gs_verbose = 0;
	if (size < 10)
		return 0;
	flags = data[0];
	pages = (flags & 1) ? 2 : 1;
	memcpy(&tail16, data + 1, 2);
	memcpy(&len16, data + 3, 2);
	l.prev_state_off = data[5];
	l.prev_state_size = data[6] & 15;
	l.wake_pid_off = data[7];
	l.wake_pid_size = data[8] & 15;
	l.kind_of = kind_of;
	l.ctx = NULL;
	data += 10, size -= 10;

	memset(&r, 0, sizeof(r));
	r.fd = -1;
	r.data_size = pages * PAGE;
	r.base = aligned_alloc(PAGE, PAGE + r.data_size);
	r.copy = malloc(65536);
	if (!r.base || !r.copy)
		abort();
	memset(r.base, 0xa5, PAGE + r.data_size);
	meta = r.base;
	memset(meta, 0, sizeof(*meta));
	meta->data_offset = PAGE;
	meta->data_size = r.data_size;
	/* a tail anywhere (wrapping included), and a head the kernel would never publish: at most
	 * twice the data size ahead */
	tail = ((uint64_t)tail16 & ~7ull) + ((flags & 2) ? (1ull << 40) : 0); /* the kernel's tail is 8-aligned */
	mask = r.data_size - 1;
	for (size_t i = 0; i < size && i < r.data_size; i++)
		((uint8_t *)r.base + PAGE)[(tail + i) & mask] = data[i];
	meta->data_tail = tail;
	meta->data_head = tail + (len16 % (2 * r.data_size + 1));

	c.ring = &r;
	c.l = &l;
	c.events = 0;
	(void)gs_ring_drain(&r, on_record, &c);
	if (meta->data_tail != meta->data_head)
		abort(); /* consumed, or skipped when corrupt */
	(void)gs_ring_pending(&r);
	free(r.base);
	free(r.copy);
	return 0;
}
