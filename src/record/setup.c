/* setup.c - the GIL probes and the stack sampler for a CPython the recorder found (see
 * session.h): launch.c calls it at the command's entry point, proctree.c at the entry point of
 * every CPython the command's tree execs; attach.c does the same steps itself with every thread
 * stopped. */
#define _GNU_SOURCE
#include "base/util.h"
#include "record/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gs_session_sample_python(struct gs_session *S, const struct gs_python *py)
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
	if (S->stacks)
		gs_stacks_add(S->stacks, py);
	else
		S->stacks = gs_stacks_start(py, &so, &S->emit);
}

/* A later CPython: probes of its own, inline only (the uprobes' names are the first one's). */
static int set_up_more(struct gs_session *S, pid_t pid, char *why, size_t whylen)
{
	struct gs_pyprobes *p = gs_calloc(1, sizeof(*p));
	int err;
	gs_pyprobes_init(p, S->tracefs, 0, 1);
	p->inline_only = 1;
	p->cache = S->images;
	if (S->o->no_inline || S->o->gil_watchpoint) {
		snprintf(why, whylen,
			 "the GIL of a CPython other than the first is recorded with inline probes only, "
			 "which --uprobes and --gil-watchpoint turn off");
		err = -ENOTSUP;
	} else {
		err = gs_pyprobes_locate(p, pid, 1, S->ev, &S->pending_sig, why, whylen);
	}
	if (err == 0)
		err = gs_pyprobes_open(p, S->ev, pid, why, whylen);
	if (err < 0) {
		gs_inline_close(&p->il);
		free(p);
		return err;
	}
	S->more = gs_realloc_array(S->more, S->nmore + 1, sizeof(*S->more));
	S->more[S->nmore++] = p;
	S->have_python = 1;
	gs_pidset_add(S->pypids, (uint32_t)pid);
	gs_evlist_index(S->ev);
	gs_pyprobes_meta(p, &S->emit);
	gs_session_sample_python(S, &p->py);
	gs_debug("CPython %s in %s (process %d): inline probes", p->py.img.version, p->py.img.path, (int)pid);
	return 0;
}

void gs_session_set_up_python(struct gs_session *S, pid_t pid, int may_inline)
{
	char why[1024] = "";
	int err;
	if (S->o->no_gil) {
		gs_emit_meta(&S->emit, (uint32_t)pid, "python.error", "GIL detection turned off (--no-gil-detect)");
		return;
	}
	gs_tidmap_add_process(S->tidmap, pid);
	if (S->probes_used) {
		if ((err = set_up_more(S, pid, why, sizeof(why))) < 0) {
			gs_warn("process %d: %s; recording its thread states only (no GIL events)", (int)pid, why);
			gs_emit_meta(&S->emit, (uint32_t)pid, "python.error", why);
		}
		return;
	}
	S->probes_used = 1;
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
	gs_pidset_add(S->pypids, (uint32_t)pid);
	gs_evlist_index(S->ev);
	gs_pyprobes_meta(&S->probes, &S->emit);
	gs_session_sample_python(S, &S->probes.py);
	gs_debug("CPython %s in %s: take_gil at file offset %#lx, _PyRuntime at %#lx", S->probes.py.img.version,
		 S->probes.py.img.path, (unsigned long)S->probes.py.img.take_gil_offset,
		 (unsigned long)S->probes.py.runtime);
}

void gs_session_free_more(struct gs_session *S)
{
	for (size_t i = 0; i < S->nmore; i++) {
		gs_inline_close(&S->more[i]->il);
		free(S->more[i]);
	}
	free(S->more);
	S->more = NULL;
	S->nmore = 0;
}

/* Does pid run (not gone, not a zombie waiting for its parent)? */
static int running(pid_t pid)
{
	char path[64], buf[512];
	long n;
	char *rp;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	n = gs_read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

void gs_session_detach_probes(struct gs_session *S)
{
	for (size_t i = 0; i <= S->nmore; i++) {
		struct gs_pyprobes *p = i == 0 ? &S->probes : S->more[i - 1];
		if (p->use_inline && p->il.trampolines)
			gs_pyprobes_detach(p, !running(p->py.pid));
	}
}
