/* setup.c - the GIL probes and the stack sampler for a CPython the recorder found (see
 * session.h): launch.c calls it at the command's entry point; attach.c does the same steps
 * itself with every thread stopped. */
#define _GNU_SOURCE
#include "base/util.h"
#include "record/session.h"

void gs_session_set_up_python(struct gs_session *S, pid_t pid, int may_inline)
{
	char why[1024] = "";
	int err;
	if (S->o->no_gil) {
		gs_emit_meta(&S->emit, (uint32_t)pid, "python.error", "GIL detection turned off (--no-gil-detect)");
		return;
	}
	gs_tidmap_add_process(S->tidmap, pid);
	err = gs_pyprobes_locate(&S->probes, pid, may_inline, S->ev, &S->pending_sig, why, sizeof(why));
	if (err == 0)
		err = gs_pyprobes_open(&S->probes, S->ev, pid, why, sizeof(why));
	if (err < 0) {
		gs_warn("%s", why);
		gs_warn("recording thread states only (no GIL events)");
		gs_emit_meta(&S->emit, (uint32_t)pid, "python.error", why);
		return;
	}
	S->have_python = 1;
	gs_evlist_index(S->ev);
	gs_pyprobes_meta(&S->probes, &S->emit);
	{
		const struct gs_record_opts *o = S->o;
		struct gs_stacks_opts so = {
			.sample_hz = o->sample_hz,
			.native = o->native,
			.native_stack = o->native_stack,
			.ncpu = S->ncpu,
			.tp_switch = S->sched->tp_switch,
			.tidmap = S->tidmap,
			.event_stacks = gs_counters_have_stacks(S->counters),
		};
		S->stacks = gs_stacks_start(&S->probes.py, &so, &S->emit);
	}
	gs_debug("CPython %s in %s: take_gil at file offset %#lx, _PyRuntime at %#lx", S->probes.py.img.version,
		 S->probes.py.img.path, (unsigned long)S->probes.py.img.take_gil_offset,
		 (unsigned long)S->probes.py.runtime);
}
