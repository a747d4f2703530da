/* Unit tests: the BPF scheduler source's record decoding (record/sched_bpf.c): each kind of ring
 * buffer record into the gs_rec the perf source gives for the same event, prev_state reported as
 * the sched:sched_switch tracepoint reports it, short and unknown records refused. */
#define _GNU_SOURCE
#include <linux/types.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "bpf/sched_event.h"
#include "record/sched_bpf.h"

static void test_state_as_the_tracepoint_reports_it(void **state)
{
	(void)state;
	assert_int_equal(gs_sched_bpf_state(0, 0), 0);         /* R */
	assert_int_equal(gs_sched_bpf_state(1, 0), 0x100);     /* preempted: R+ */
	assert_int_equal(gs_sched_bpf_state(1, 1), 0x100);     /* preempted while going to sleep: R+ */
	assert_int_equal(gs_sched_bpf_state(0, 1), 1);         /* S */
	assert_int_equal(gs_sched_bpf_state(0, 2), 2);         /* D */
	assert_int_equal(gs_sched_bpf_state(0, 0x402), 0x80);  /* TASK_IDLE: I */
	assert_int_equal(gs_sched_bpf_state(0, 0x1000), 2);    /* TASK_RTLOCK_WAIT: D */
	assert_int_equal(gs_sched_bpf_state(0, 0x2001), 1);    /* S | TASK_FREEZABLE: S */
	assert_int_equal(gs_sched_bpf_state(0, 0x8), 8);       /* t */
	assert_int_equal(gs_sched_bpf_state(0, 0x100 | 1), 1); /* S | TASK_WAKEKILL: S */
}

static void test_decode_each_kind(void **state)
{
	struct gs_bpf_event e = {
		.time = 123456789, .type = GS_BPF_SWITCH_OUT, .pid = 10, .tid = 11, .arg = 0, .arg64 = 1
	};
	struct gs_rec r;
	char name[16];
	(void)state;

	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_SWITCH_OUT);
	assert_int_equal(r.pid, 10);
	assert_int_equal(r.tid, 11);
	assert_int_equal(r.time, 123456789);
	assert_int_equal(r.arg64, 1);

	e.type = GS_BPF_SWITCH_IN;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_SWITCH_IN);
	assert_int_equal(r.tid, 11);

	/* a switch-in the kernel did not announce, told when the thread was found running: the same
	 * record as any other, at its own time (the merge orders it) */
	e.arg = 1;
	e.time = 123456000;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_SWITCH_IN);
	assert_int_equal(r.tid, 11);
	assert_int_equal(r.time, 123456000);
	assert_int_equal(r.arg, 0);
	e.arg = 0;

	e.type = GS_BPF_WAKEUP;
	e.pid = 0;
	e.arg = 42;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_WAKEUP);
	assert_int_equal(r.pid, 0);
	assert_int_equal(r.tid, 11); /* the woken */
	assert_int_equal(r.arg, 42); /* the waker */

	e.type = GS_BPF_FORK;
	e.pid = 10;
	e.arg = 10;
	e.arg64 = 10;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_FORK);
	assert_int_equal(r.arg, 10);
	assert_int_equal(r.arg64, 10);

	e.type = GS_BPF_EXIT;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_EXIT);
	assert_int_equal(r.tid, 11);

	/* the process's end: its wait status (exit(3)), the process's record (tid 0) */
	e.type = GS_BPF_PROC_EXIT;
	e.arg = 3 << 8;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), 1);
	assert_int_equal(r.type, GS_REC_PROC_EXIT);
	assert_int_equal(r.pid, 10);
	assert_int_equal(r.tid, 0);
	assert_int_equal(r.arg, 3 << 8);
}

static void test_decode_comm(void **state)
{
	struct gs_bpf_event e = { .time = 5, .type = GS_BPF_COMM, .pid = 10, .tid = 10, .arg = 1 };
	struct gs_rec r;
	char name[16];
	(void)state;
	memset(e.comm, 'x', sizeof(e.comm)); /* not terminated: cut at 15 */
	assert_int_equal(gs_sched_bpf_decode(&e, sizeof(e), &r, name), 1);
	assert_int_equal(r.type, GS_REC_COMM);
	assert_int_equal(r.arg, 1);
	assert_int_equal(r.arg64, 0);
	assert_string_equal(name, "xxxxxxxxxxxxxxx");
	/* exec() set it and stopped the task for gilscope: a COMM of exec, marked */
	e.arg = 2;
	assert_int_equal(gs_sched_bpf_decode(&e, sizeof(e), &r, name), 1);
	assert_int_equal(r.arg, 1);
	assert_int_equal(r.arg64, GS_SCHED_EXEC_STOPPED);
	memcpy(e.comm, "worker-1", 9);
	e.arg = 0;
	assert_int_equal(gs_sched_bpf_decode(&e, sizeof(e), &r, name), 1);
	assert_int_equal(r.arg, 0);
	assert_string_equal(name, "worker-1");
	/* a COMM without its name is malformed */
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), -1);
}

static void test_decode_refuses_short_and_unknown(void **state)
{
	struct gs_bpf_event e = { .time = 5, .type = GS_BPF_SWITCH_IN, .pid = 1, .tid = 1 };
	struct gs_rec r;
	char name[16];
	(void)state;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT - 1, &r, name), -1);
	assert_int_equal(gs_sched_bpf_decode(&e, 0, &r, name), -1);
	e.type = 0;
	assert_int_equal(gs_sched_bpf_decode(&e, GS_BPF_EVENT_SHORT, &r, name), -1);
	e.type = 99;
	assert_int_equal(gs_sched_bpf_decode(&e, sizeof(e), &r, name), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_as_the_tracepoint_reports_it),
		cmocka_unit_test(test_decode_each_kind),
		cmocka_unit_test(test_decode_comm),
		cmocka_unit_test(test_decode_refuses_short_and_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
