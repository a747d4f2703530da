/* ring_decode.c - decoding perf ring records (see ring_decode.h). */
#include "record/ring_decode.h"

#include <string.h>

struct sid {
	uint32_t pid, tid;
	uint64_t time;
	uint32_t cpu;
};

/* The sample_id_all trailer (TID, TIME, CPU, IDENTIFIER) at the end of a non-sample record. */
static int trailer(const struct perf_event_header *h, struct sid *s)
{
	const uint8_t *end = (const uint8_t *)h + h->size;
	if (h->size < sizeof(*h) + 32)
		return -1;
	memcpy(&s->pid, end - 32, 4);
	memcpy(&s->tid, end - 28, 4);
	memcpy(&s->time, end - 24, 8);
	memcpy(&s->cpu, end - 16, 4);
	return 0;
}

static uint64_t raw_field(const uint8_t *raw, uint32_t rawsize, unsigned off, unsigned size)
{
	uint64_t v = 0;
	if (off + size > rawsize || size > 8)
		return 0;
	memcpy(&v, raw + off, size); /* little-endian */
	return v;
}

enum gs_ringdec_result gs_ringdec_decode(const struct perf_event_header *h, const struct gs_ringdec_layout *l,
					 struct gs_ringdec *out)
{
	const uint8_t *p = (const uint8_t *)(h + 1), *end = (const uint8_t *)h + h->size;
	struct gs_rec *r = &out->r;
	struct sid s;

	memset(out, 0, sizeof(*out));
	if (h->size < sizeof(*h))
		return GS_RINGDEC_CORRUPT;
	switch (h->type) {
	case PERF_RECORD_SAMPLE: {
		uint64_t id;
		int kind;
		if (end - p < 8)
			return GS_RINGDEC_CORRUPT;
		memcpy(&id, p, 8);
		p += 8;
		kind = l->kind_of(l->ctx, id);
		if (kind == GS_PK_TAKE_GIL || kind == GS_PK_BP_LOCKED || kind == GS_PK_BP_DROPREQ ||
		    kind == GS_PK_ACQUIRE || kind == GS_PK_RELEASE || kind == GS_PK_REQ_SET ||
		    kind == GS_PK_REQ_RESET) {
			if (end - p < 32)
				return GS_RINGDEC_CORRUPT;
			memcpy(&out->ip, p, 8);
			p += 8;
		} else if (end - p < 24) {
			return GS_RINGDEC_CORRUPT;
		}
		memcpy(&r->pid, p, 4);
		memcpy(&r->tid, p + 4, 4);
		memcpy(&r->time, p + 8, 8);
		p += 24;
		out->is_sample = 1;
		if (kind >= GS_PK_COUNTER && kind < GS_PK_COUNTER_MAX) {
			r->type = GS_REC_CTR_SAMPLE;
			r->arg = kind - GS_PK_COUNTER;
			r->arg64 = 1; /* one sample: the recorder knows the counter's period */
			return GS_RINGDEC_EVENT;
		}
		switch (kind) {
		case GS_PK_SWITCH:
		case GS_PK_WAKEUP: {
			uint32_t rawsize;
			if (end - p < 4)
				return GS_RINGDEC_CORRUPT;
			memcpy(&rawsize, p, 4);
			p += 4;
			if (rawsize > (size_t)(end - p))
				return GS_RINGDEC_CORRUPT;
			if (kind == GS_PK_SWITCH) {
				r->type = GS_REC_SWITCH_OUT;
				r->arg64 = raw_field(p, rawsize, l->prev_state_off, l->prev_state_size);
			} else {
				uint32_t woken = (uint32_t)raw_field(p, rawsize, l->wake_pid_off, l->wake_pid_size);
				r->type = GS_REC_WAKEUP;
				r->arg = (int32_t)r->tid;
				r->tid = woken;
				r->pid = 0;
			}
			break;
		}
		/* arg64 names the GIL (the address of its `locked`); 0: the process's main GIL, which
		 * is all uprobes and watchpoints see */
		case GS_PK_TAKE_GIL:
			r->type = GS_REC_GIL_WAIT;
			break;
		case GS_PK_ACQUIRE:
		case GS_PK_RELEASE:
			r->type = GS_REC_GIL_WRITE;
			r->arg = kind == GS_PK_ACQUIRE ? 1 : 0;
			break;
		case GS_PK_REQ_SET:
		case GS_PK_REQ_RESET:
			r->type = GS_REC_DROPREQ;
			r->arg = kind == GS_PK_REQ_SET ? 1 : 0;
			r->arg64 = out->ip; /* the instruction after the write */
			break;
		case GS_PK_BP_LOCKED:
		case GS_PK_BP_DROPREQ:
			r->type = kind == GS_PK_BP_LOCKED ? GS_REC_GIL_WRITE : GS_REC_DROPREQ;
			r->arg = GS_VALUE_UNKNOWN;
			out->needs_value = 1;
			break;
		default:
			return GS_RINGDEC_CORRUPT;
		}
		return GS_RINGDEC_EVENT;
	}
	case PERF_RECORD_SWITCH:
		if (h->misc & PERF_RECORD_MISC_SWITCH_OUT)
			return GS_RINGDEC_SKIP; /* the sched_switch sample carries the state */
		if (trailer(h, &s) < 0)
			return GS_RINGDEC_CORRUPT;
		r->type = GS_REC_SWITCH_IN;
		r->pid = s.pid;
		r->tid = s.tid;
		r->time = s.time;
		return GS_RINGDEC_EVENT;
	case PERF_RECORD_COMM: {
		size_t n;
		if (trailer(h, &s) < 0 || end - p < 8 + 32)
			return GS_RINGDEC_CORRUPT;
		memcpy(&r->pid, p, 4);
		memcpy(&r->tid, p + 4, 4);
		n = strnlen((const char *)p + 8, (size_t)(end - p) - 8 - 32);
		if (n > 15)
			n = 15;
		memcpy(out->name, p + 8, n);
		out->name[n] = '\0';
		r->type = GS_REC_COMM;
		r->time = s.time;
		r->arg = (h->misc & PERF_RECORD_MISC_COMM_EXEC) ? 1 : 0;
		return GS_RINGDEC_EVENT;
	}
	case PERF_RECORD_FORK:
	case PERF_RECORD_EXIT: {
		uint32_t pid, ppid, tid, ptid;
		uint64_t t;
		if (end - p < 24)
			return GS_RINGDEC_CORRUPT;
		memcpy(&pid, p, 4);
		memcpy(&ppid, p + 4, 4);
		memcpy(&tid, p + 8, 4);
		memcpy(&ptid, p + 12, 4);
		memcpy(&t, p + 16, 8);
		r->type = h->type == PERF_RECORD_FORK ? GS_REC_FORK : GS_REC_EXIT;
		r->pid = pid;
		r->tid = tid;
		r->time = t;
		r->arg = (int32_t)ppid;
		r->arg64 = ptid;
		return GS_RINGDEC_EVENT;
	}
	case PERF_RECORD_LOST: {
		uint64_t lost;
		if (end - p < 16 || trailer(h, &s) < 0)
			return GS_RINGDEC_CORRUPT;
		memcpy(&lost, p + 8, 8);
		r->type = GS_REC_LOST;
		r->time = s.time;
		r->arg64 = lost;
		return GS_RINGDEC_EVENT;
	}
	case PERF_RECORD_THROTTLE:
		return GS_RINGDEC_THROTTLE;
	default:
		return GS_RINGDEC_SKIP;
	}
}
