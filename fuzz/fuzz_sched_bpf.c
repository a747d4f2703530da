/* fuzz_sched_bpf.c - the decoder of the BPF scheduler source's ring buffer records
 * (record/sched_bpf.c gs_sched_bpf_decode, gs_sched_bpf_state).
 *
 * Input: a sequence of records, each a length byte then that many bytes (cut short at the end
 * of the input), as the ring buffer hands them over with their sizes. */
#include "fuzz.h"

#include <linux/types.h>

#include "record/sched_bpf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;
	while (i < size) {
		size_t n = data[i++];
		struct gs_rec r;
		char name[16];
		if (n > size - i)
			n = size - i;
		if (gs_sched_bpf_decode(data + i, n, &r, name) > 0) {
			/* a known record type, a terminated name of at most 15 characters */
			if ((r.type < GS_REC_SWITCH_OUT || r.type > GS_REC_COMM) && r.type != GS_REC_PROC_EXIT)
				abort();
			if (strnlen(name, 16) > 15 || (r.type == GS_REC_PROC_EXIT && r.tid != 0))
				abort(); /* a process's end is the process's record */
			if (r.type == GS_REC_SWITCH_OUT && r.arg64 != 0 && (r.arg64 & (r.arg64 - 1)) != 0)
				abort(); /* one state bit, as the tracepoint reports it */
		}
		i += n;
	}
	return 0;
}
