/* sched_bpf.h - the BPF scheduler source (see sched.h) and the decoding of its records.
 *
 * gs_sched_bpf_new() loads bpf/sched.bpf.c (a libbpf skeleton built into gilscope, CO-RE against
 * the kernel's BTF) and attaches it to the tp_btf scheduler tracepoints: sched_switch,
 * sched_stat_runtime (a switch-in the kernel did not announce, told when the thread is found
 * running, at most GS_BPF_LATE_MAX_NS late), sched_wakeup, sched_process_fork, sched_process_exit,
 * sched_process_exec, task_rename and sched_process_free. It follows processes by tgid (follow()
 * adds the tid's process; fork children are added in the kernel) and drains one ring buffer, in
 * the order the records were reserved: nearly in time order across CPUs, so the merge treats it
 * as a stream that may deliver a record up to its slack older than the moment of the read. Drops (a full ring) are counted per CPU in the kernel and
 * delivered as LOST records. It needs root (or CAP_BPF + CAP_PERFMON), kernel BTF and a kernel
 * whose sched_switch tracepoint passes prev_state (5.18 and later); NULL with one sentence why
 * otherwise, or when gilscope was built without BPF (no clang, bpftool or libbpf-dev).
 *
 * gs_sched_bpf_decode() and gs_sched_bpf_state() are pure (unit-tested and fuzzable).
 */
#ifndef GS_SCHED_BPF_H
#define GS_SCHED_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "base/recfile.h"
#include "record/sched.h"

/* ring_bytes: the ring buffer's size (rounded to a power of two, at least 64 KiB); the reader is
 * woken once wakeup_bytes wait. */
struct gs_sched_source *gs_sched_bpf_new(const char *tracefs, size_t ring_bytes, unsigned wakeup_bytes, char *why,
					 size_t whylen);

/* sched_switch's prev_state as the sched:sched_switch tracepoint reports it (what the analysis
 * reads): 0x100 when preempted, else one bit for the state the task left in (0: runnable). */
uint64_t gs_sched_bpf_state(int preempt, uint32_t state);

/* One ring buffer record (size bytes) into r, and name for COMM (NUL-terminated, 16 bytes). 1: an
 * event, -1: malformed (too short, an unknown type). */
int gs_sched_bpf_decode(const void *data, size_t size, struct gs_rec *r, char name[16]);

#endif
