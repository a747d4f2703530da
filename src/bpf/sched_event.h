/* sched_event.h - the records the BPF scheduler source (bpf/sched.bpf.c) writes into its ring
 * buffer and record/sched_bpf.c reads: one layout shared by the kernel and the user side, fixed-size
 * types only (the BPF side takes them from vmlinux.h, the user side from linux/types.h).
 *
 * Every record starts with the GS_BPF_EVENT_SHORT bytes below; a COMM record carries the name too
 * (sizeof(struct gs_bpf_event)). Times are bpf_ktime_get_ns(): CLOCK_MONOTONIC, the clock of the
 * whole recording. pid is the thread group id, tid the thread id, as the kernel numbers them in
 * its initial pid namespace.
 */
#ifndef GS_BPF_SCHED_EVENT_H
#define GS_BPF_SCHED_EVENT_H

enum gs_bpf_ev_type {
	GS_BPF_SWITCH_OUT = 1, /* tid left its CPU: arg = 1 when preempted, arg64 = its raw __state */
	GS_BPF_SWITCH_IN = 2,  /* tid got a CPU: arg = 1 when no switch was seen and its arrival is told */
	GS_BPF_WAKEUP = 3,     /* tid was woken by the current task, tid arg (pid: 0, unknown) */
	GS_BPF_FORK = 4,       /* new task pid/tid: arg = the parent's pid, arg64 = the parent's tid */
	GS_BPF_EXIT = 5,       /* tid exits (do_exit); nothing of it follows */
	GS_BPF_COMM = 6,       /* tid is named comm: arg = 1 when exec() set it, 2 when it also stopped it,
				* 3 when it was not stopped because its parent would see it stop */
	GS_BPF_PROC_EXIT = 7,  /* the last thread of process pid exits: arg = its wait status */
};

#define GS_BPF_MAX_PROCS 16384  /* followed processes at once (the map of followed tgids) */
#define GS_BPF_MAX_PLAIN 4096   /* programs known not to be CPython (not stopped at their exec) */
#define GS_BPF_MAX_STOPPED 1024 /* processes stopped at their exec at once (more: not stopped) */
#define GS_BPF_SIGSTOP 19
#define GS_BPF_PF_EXITING 0x4 /* task_struct.flags: in do_exit() */
/* A SWITCH_IN told after the fact is stamped at most this long before it is written: the reader
 * takes the ring as delivering nothing older than 10 ms before the moment of a read (collect.c). */
#define GS_BPF_LATE_MAX_NS 8000000ull

struct gs_bpf_event {
	__u64 time;
	__u32 type, pid, tid;
	__s32 arg;
	__u64 arg64;
	char comm[16]; /* GS_BPF_COMM only */
};

#define GS_BPF_EVENT_SHORT 32 /* the bytes of a record without comm */

#endif
