/* fuzz_merge.c - the recorder's time-ordered merge (record/merge.c) and frame/stack numbering
 * (record/intern.c), driven by a program in the input. Each 4-byte step: op, queue, and a
 * 16-bit time delta (or stack frames). Checked, with abort() on a violation:
 *   - every flush emits in time order, and nothing at or after its watermark unless final;
 *   - when every record added after a flush is newer than that flush's watermark (what the
 *     recorder's watermark promises), the whole output is in time order;
 *   - every record added is emitted exactly once, with its payload intact;
 *   - interning gives equal keys equal ids and new keys the next id. */
#include "fuzz.h"

#include "record/intern.h"
#include "record/merge.h"

#define NQ 5

struct state {
	uint64_t last_out, watermark, emitted, payload_bad;
	int order_promised, final;
};

static void check(const struct gs_rec *r, const void *payload, size_t plen, void *arg)
{
	struct state *s = arg;
	if (!s->final && r->time >= s->watermark)
		abort(); /* emitted at or after the watermark */
	if (s->order_promised && r->time < s->last_out)
		abort(); /* out of time order although every input kept the promise */
	if (r->time > s->last_out)
		s->last_out = r->time;
	if (plen != (size_t)(r->tid & 7))
		abort();
	for (size_t i = 0; i < plen; i++)
		if (((const uint8_t *)payload)[i] != (uint8_t)(r->tid + i))
			abort();
	s->emitted++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_merge *m = gs_merge_new(NQ);
	struct gs_intern *in = gs_intern_new();
	struct state s = { .order_promised = 1 };
	uint64_t qtime[NQ] = { 0 }, added = 0, frames = 0, stacks = 0;
	uint32_t tag = 0;

	for (size_t i = 0; i + 4 <= size; i += 4) {
		uint8_t op = data[i] & 3;
		int q = data[i + 1] % (NQ + 1); /* NQ: out of range, lands on the last queue */
		uint64_t delta = (uint64_t)data[i + 2] | (uint64_t)data[i + 3] << 8;
		if (op == 0 || op == 1) { /* add: op 1 goes back in time (a kernel reordering) */
			int qi = q < NQ ? q : NQ - 1;
			uint8_t payload[8];
			struct gs_rec r = { .type = GS_REC_META, .tid = ++tag };
			qtime[qi] = op == 0 ? qtime[qi] + delta : (qtime[qi] > delta ? qtime[qi] - delta : 0);
			r.time = qtime[qi];
			if (r.time < s.watermark)
				s.order_promised = 0;
			for (size_t k = 0; k < (tag & 7); k++)
				payload[k] = (uint8_t)(tag + k);
			gs_merge_add(m, q, &r, payload, tag & 7);
			added++;
		} else if (op == 2) { /* flush below a watermark */
			uint64_t wm = delta * 4;
			if (wm < s.watermark)
				s.order_promised = 0; /* the recorder's watermark never goes back */
			s.watermark = wm;
			gs_merge_flush(m, wm, 0, check, &s);
		} else { /* intern */
			int fresh;
			uint32_t ids[3] = { data[i + 1] & 7u, data[i + 2] & 7u, data[i + 3] & 7u };
			uint32_t id = gs_intern_frame(in, ids[0], ids[1], &fresh);
			if (fresh ? id != ++frames : id > frames)
				abort();
			id = gs_intern_stack(in, ids, 1 + (int)(data[i] >> 2 & 1) + (int)(data[i] >> 3 & 1), &fresh);
			if (fresh ? id != ++stacks : id > stacks)
				abort();
		}
	}
	s.final = 1;
	gs_merge_flush(m, 0, 1, check, &s);
	if (s.emitted != added || gs_merge_pending(m) != 0 || gs_intern_frames(in) != frames ||
	    gs_intern_stacks(in) != stacks)
		abort();
	gs_merge_free(m);
	gs_intern_free(in);
	return 0;
}
