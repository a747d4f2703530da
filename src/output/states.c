/* states.c - the table of thread states shared by the timeline exporters. */
#include "output/states.h"

static const struct gs_state_style styles[GS_SLICE_N] = {
	[GS_SLICE_HELD] = { "holds GIL", "holds GIL", "#2ca02c", "good", 9, 1 },
	[GS_SLICE_HELD_OFFCPU] = { "holds GIL (off CPU)", "holds GIL (off CPU)", "#98df8a", "terrible", 8, 1 },
	[GS_SLICE_WAIT_SLEEP] = { "S(GIL)", "S(GIL): asleep waiting for the GIL", "#d62728", "bad", 7, 1 },
	[GS_SLICE_WAIT_RUNNABLE] = { "R(GIL)", "R(GIL): runnable, waiting for the GIL", "#ff9896", "bad", 6, 1 },
	[GS_SLICE_WAIT_ONCPU] = { "waits GIL (on CPU)", "waiting for the GIL (on CPU)", "#e377c2", "bad", 5, 1 },
	[GS_SLICE_NOGIL] = { "running (no GIL)", "running without the GIL", "#1f77b4", "thread_state_running", 4, 0 },
	[GS_SLICE_SLEEP] = { "S", "S: sleeping", "#dddddd", "thread_state_sleeping", 1, 0 },
	[GS_SLICE_DISK] = { "D", "D: uninterruptible", "#8c564b", "thread_state_uninterruptible", 2, 0 },
	[GS_SLICE_RUNNABLE] = { "R", "R: runnable (not for the GIL)", "#ffbb78", "thread_state_runnable", 3, 0 },
	[GS_SLICE_UNKNOWN] = { 0 },
};

const struct gs_state_style *gs_state_style(enum gs_slice kind)
{
	return (unsigned)kind < GS_SLICE_N ? &styles[kind] : &styles[GS_SLICE_UNKNOWN];
}
