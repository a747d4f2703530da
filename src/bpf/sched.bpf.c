// SPDX-License-Identifier: GPL-2.0
/* sched.bpf.c - gilscope's BPF scheduler source: the followed processes' context switches,
 * wake-ups, forks, exits and names, as bpf/sched_event.h records in one ring buffer.
 *
 * A process is followed while its tgid is in `followed`: gilscope adds the command it launches
 * or the process it attaches to, and a fork from a followed process adds the child (before the
 * child can run), so descendants are followed as with inherited perf events. The entry goes when
 * the process's leader is freed (after its last thread's last switch). A task's EXIT is recorded
 * in do_exit() (sched_process_exit, where perf records it too, before the parent is told), and
 * nothing of an exiting task (PF_EXITING) is recorded: nothing of a tid comes after its EXIT,
 * which would read as a new thread of the same tid. Records that do not fit
 * in the ring are counted in `drops` (per CPU). The reader is woken once wakeup_bytes wait (0:
 * at every record); it also reads on a timer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/sched_event.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GS_BPF_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} followed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* set by the reader before loading */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline int is_followed(const struct task_struct *t)
{
	__u32 tgid = BPF_CORE_READ(t, tgid);
	return bpf_map_lookup_elem(&followed, &tgid) != 0;
}

/* followed and not exiting (its EXIT is recorded, or about to be) */
static __always_inline int is_live_followed(const struct task_struct *t)
{
	return !(BPF_CORE_READ(t, flags) & GS_BPF_PF_EXITING) && is_followed(t);
}

static __always_inline void dropped(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline __u64 wake_flag(void)
{
	if (!wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(__u32 type, const struct task_struct *t, __s32 arg, __u64 arg64, __u64 now)
{
	struct gs_bpf_event *e = bpf_ringbuf_reserve(&events, GS_BPF_EVENT_SHORT, 0);
	if (!e) {
		dropped();
		return;
	}
	e->time = now;
	e->type = type;
	e->pid = BPF_CORE_READ(t, tgid);
	e->tid = BPF_CORE_READ(t, pid);
	e->arg = arg;
	e->arg64 = arg64;
	bpf_ringbuf_submit(e, wake_flag());
}

/* comm: a kernel string (NULL: the task's own name) */
static __always_inline void emit_comm(const struct task_struct *t, const char *comm, __s32 exec)
{
	struct gs_bpf_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		dropped();
		return;
	}
	e->time = bpf_ktime_get_ns();
	e->type = GS_BPF_COMM;
	e->pid = BPF_CORE_READ(t, tgid);
	e->tid = BPF_CORE_READ(t, pid);
	e->arg = exec;
	e->arg64 = 0;
	if (comm)
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm);
	else
		BPF_CORE_READ_STR_INTO(&e->comm, t, comm);
	bpf_ringbuf_submit(e, wake_flag());
}

SEC("tp_btf/sched_switch")
int BPF_PROG(gs_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	if (is_live_followed(prev))
		emit(GS_BPF_SWITCH_OUT, prev, preempt ? 1 : 0, prev_state, now);
	if (is_live_followed(next))
		emit(GS_BPF_SWITCH_IN, next, 0, 0, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(gs_wakeup, struct task_struct *p)
{
	struct gs_bpf_event *e;
	if (!is_live_followed(p))
		return 0;
	e = bpf_ringbuf_reserve(&events, GS_BPF_EVENT_SHORT, 0);
	if (!e) {
		dropped();
		return 0;
	}
	e->time = bpf_ktime_get_ns();
	e->type = GS_BPF_WAKEUP;
	e->pid = 0;
	e->tid = BPF_CORE_READ(p, pid);
	e->arg = (__s32)(__u32)bpf_get_current_pid_tgid();
	e->arg64 = 0;
	bpf_ringbuf_submit(e, wake_flag());
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(gs_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;
	if (!bpf_map_lookup_elem(&followed, &ptgid))
		return 0;
	if (ctgid != ptgid && bpf_map_update_elem(&followed, &ctgid, &one, BPF_ANY) != 0)
		dropped(); /* the map is full: the new process is not followed */
	emit(GS_BPF_FORK, child, (__s32)ptgid, BPF_CORE_READ(parent, pid), bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(gs_exit, struct task_struct *p)
{
	if (is_followed(p))
		emit(GS_BPF_EXIT, p, 0, 0, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(gs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (is_followed(p))
		emit_comm(p, 0, 1);
	return 0;
}

SEC("tp_btf/task_rename")
int BPF_PROG(gs_rename, struct task_struct *task, const char *comm)
{
	if (is_followed(task))
		emit_comm(task, comm, 0);
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(gs_free, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (BPF_CORE_READ(p, pid) == tgid)
		bpf_map_delete_elem(&followed, &tgid);
	return 0;
}
