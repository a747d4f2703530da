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
 *
 * Stopping at exec (record -p, following descendants; record --exec-stop, for the processes its
 * guardian does not trace: those forked by a thread that is not a traced process's first, whose
 * exec stop is not a ptrace stop): while stop_exec is set, a followed process that is not ptraced
 * and exec()s a program whose file (device, inode) is not in `plain_exes` is sent SIGSTOP as its
 * exec completes (it stops before the new program's first instruction, the dynamic loader's) and
 * its COMM says so (arg 2, woken at once); gilscope instruments it and sends SIGCONT. Unless its
 * parent would show the stop (a job-control shell's job, parent_sees_stops): it then goes on (arg
 * 3, woken at once) and gilscope attaches it as it runs, once its interpreter has started. The reader
 * adds the programs it found not to be CPython to `plain_exes`, so a shell loop running /bin/true
 * stops once per program, not once per exec. Every process stopped is in `stopped` until the
 * reader lets it go (record/sched_bpf.c: a deadman process continues them if gilscope dies).
 *
 * A switch-in is not always announced: the kernel can put a task on a CPU without a sched_switch
 * naming it (the VM kernels gilscope is tested on fire no tracepoint while the current task is
 * one of their agent's threads, pid 1's: sched_switch runs in the context of the task that leaves,
 * so the switch from such a thread to the next one is not seen, by perf or ftrace either). `oncpu` keeps, per CPU, the task the last switch seen put there; a
 * followed task found running in its stead (at its next sched_stat_runtime, every scheduler tick
 * or preemption check, at the latest as it leaves the CPU) gets the SWITCH_IN that was missed
 * (arg 1), stamped with its arrival on the CPU (sched_info.last_arrival, moved from the run
 * queue's clock to CLOCK_MONOTONIC), never before the last switch seen there and never more than
 * GS_BPF_LATE_MAX_NS before the moment it is written.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/sched_event.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 wakeup_bytes = 0;
__u8 stop_exec = 0; /* set by the reader (.bss) */

struct exe_key {
	__u64 dev; /* the kernel's dev_t: major << 20 | minor */
	__u64 ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GS_BPF_MAX_PLAIN);
	__type(key, struct exe_key);
	__type(value, __u8);
} plain_exes SEC(".maps");

/* the processes stopped at their exec and not let go yet (the reader deletes each as it sends
 * SIGCONT): what gilscope's deadman process continues if gilscope dies first */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GS_BPF_MAX_STOPPED);
	__type(key, __u32);
	__type(value, __u8);
} stopped SEC(".maps");

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

struct oncpu {
	__u64 since; /* when the last switch seen on this CPU happened (0: none seen yet) */
	__u32 tid;   /* the task it put there */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct oncpu);
} oncpu SEC(".maps");

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

/* A COMM record of t reserved (NULL: the ring is full, counted); filled by comm_submit. */
static __always_inline struct gs_bpf_event *comm_reserve(void)
{
	struct gs_bpf_event *e = bpf_ringbuf_reserve(&events, sizeof(struct gs_bpf_event), 0);
	if (!e)
		dropped();
	return e;
}

/* comm: a kernel string (NULL: the task's own name); exec: 0, 1 (exec() set it), 2 (and the task
 * was stopped for gilscope) or 3 (and it was not, its parent would have seen it): the reader is
 * woken at once for 2 and 3 */
static __always_inline void comm_submit(struct gs_bpf_event *e, const struct task_struct *t, const char *comm,
					__s32 exec)
{
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
	bpf_ringbuf_submit(e, exec >= 2 ? BPF_RB_FORCE_WAKEUP : wake_flag());
}

static __always_inline void emit_comm(const struct task_struct *t, const char *comm, __s32 exec)
{
	struct gs_bpf_event *e = comm_reserve();
	if (e)
		comm_submit(e, t, comm, exec);
}

/* How long ago t, the current task, arrived on this CPU: its run queue's clock (updated at the
 * tick or switch that runs the program) less its sched_info.last_arrival; else, when the kernel
 * has neither (no CONFIG_SCHED_INFO or CONFIG_FAIR_GROUP_SCHED), the CPU time charged to it since
 * it was picked. */
static __always_inline __u64 running_for(const struct task_struct *t)
{
	if (bpf_core_field_exists(t->sched_info.last_arrival) && bpf_core_field_exists(struct cfs_rq, rq)) {
		__u64 clock = BPF_CORE_READ(t, se.cfs_rq, rq, clock),
		      arrived = BPF_CORE_READ(t, sched_info.last_arrival);
		if (clock && arrived && clock >= arrived)
			return clock - arrived;
	}
	return BPF_CORE_READ(t, se.sum_exec_runtime) - BPF_CORE_READ(t, se.prev_sum_exec_runtime);
}

/* When t, the current task, arrived on this CPU (c: what the switches seen say of the CPU). */
static __always_inline __u64 arrival(const struct task_struct *t, const struct oncpu *c, __u64 now)
{
	__u64 ago = running_for(t), lo = now > GS_BPF_LATE_MAX_NS ? now - GS_BPF_LATE_MAX_NS : 0;
	__u64 at = ago < now ? now - ago : 0;
	if (c->since > lo)
		lo = c->since;
	return at < lo ? lo : at > now ? now : at;
}

/* t (the current task) runs on this CPU, though the last switch seen there put another task on
 * it: its SWITCH_IN, when followed. 1 when written. */
static __always_inline int unseen_switch_in(const struct task_struct *t, const struct oncpu *c, __u64 now)
{
	if (!c->since || c->tid == (__u32)BPF_CORE_READ(t, pid) || !is_live_followed(t))
		return 0;
	emit(GS_BPF_SWITCH_IN, t, 1, 0, arrival(t, c, now));
	return 1;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(gs_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct oncpu *c = bpf_map_lookup_elem(&oncpu, &zero);
	if (c)
		unseen_switch_in(prev, c, now);
	if (is_live_followed(prev))
		emit(GS_BPF_SWITCH_OUT, prev, preempt ? 1 : 0, prev_state, now);
	if (is_live_followed(next))
		emit(GS_BPF_SWITCH_IN, next, 0, 0, now);
	if (c) {
		c->since = now;
		c->tid = BPF_CORE_READ(next, pid);
	}
	return 0;
}

/* The scheduler charges the running task (every tick, and before it leaves the CPU): the first
 * sign of a task that was switched in unseen. Only the current task's charge says what runs here. */
SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(gs_runtime, struct task_struct *p)
{
	__u32 zero = 0, tid = BPF_CORE_READ(p, pid);
	struct oncpu *c;
	if (tid != (__u32)bpf_get_current_pid_tgid())
		return 0;
	c = bpf_map_lookup_elem(&oncpu, &zero);
	if (!c || !c->since || c->tid == tid)
		return 0;
	unseen_switch_in(p, c, bpf_ktime_get_ns());
	c->tid = tid; /* since: still the last switch seen */
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
	__u64 now;
	if (!is_followed(p))
		return 0;
	now = bpf_ktime_get_ns();
	emit(GS_BPF_EXIT, p, 0, 0, now);
	/* the last thread of its process (do_exit decremented signal->live): the process's wait
	 * status, which do_exit stored in exit_code before this tracepoint */
	if (BPF_CORE_READ(p, signal, live.counter) == 0) {
		__u32 tgid = BPF_CORE_READ(p, tgid);
		emit(GS_BPF_PROC_EXIT, p, BPF_CORE_READ(p, exit_code), 0, now);
		/* a process stopped at its exec and killed: nothing to let go, its pid may be reused */
		bpf_map_delete_elem(&stopped, &tgid);
	}
	return 0;
}

/* Would p's parent see p stop? A job-control shell puts each job in a process group of its own in
 * its session (setpgid), waits for it with WUNTRACED and shows a stop as the job's ("Stopped"):
 * p in a process group that is not its parent's, in its parent's session. Not a new session's
 * (setsid: a daemon, start_new_session), and not a SIGCHLD handler's parent: shells (dash, bash -c)
 * catch SIGCHLD and only wait for ends; a program that waits with WUNTRACED in its own process
 * group is not seen here. */
static __always_inline int parent_sees_stops(const struct task_struct *p)
{
	const struct task_struct *parent = BPF_CORE_READ(p, group_leader, real_parent);
	if (!parent)
		return 0;
	return BPF_CORE_READ(p, signal, pids[PIDTYPE_PGID]) != BPF_CORE_READ(parent, signal, pids[PIDTYPE_PGID]) &&
	       BPF_CORE_READ(p, signal, pids[PIDTYPE_SID]) == BPF_CORE_READ(parent, signal, pids[PIDTYPE_SID]);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(gs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct gs_bpf_event *e;
	struct exe_key k;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	__u8 one = 1;
	int held = 0;
	if (!is_followed(p))
		return 0;
	/* the record first: a process is stopped only when gilscope will be told */
	if (!(e = comm_reserve()))
		return 0;
	if (stop_exec && !BPF_CORE_READ(p, ptrace)) { /* a debugger's tracee: left to its debugger */
		k.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
		k.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
		/* p is the current task: the stop takes effect as it returns to user space. Noted
		 * first, so that no stopped process is unknown to the deadman; not when it is noted
		 * already (gilscope is letting it go: its entry goes first, then the SIGCONT) */
		if (bpf_map_lookup_elem(&plain_exes, &k)) {
			/* not CPython: goes on */
		} else if (parent_sees_stops(p)) {
			held = 2; /* not stopped: gilscope takes it as it runs */
		} else if (bpf_map_update_elem(&stopped, &tgid, &one, BPF_NOEXIST) == 0) {
			if (bpf_send_signal_thread(GS_BPF_SIGSTOP) == 0)
				held = 1;
			else
				bpf_map_delete_elem(&stopped, &tgid);
		}
	}
	comm_submit(e, p, 0, held == 1 ? 2 : held == 2 ? 3 : 1);
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
