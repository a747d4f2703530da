/* pyprobes.h - the GIL probes of one CPython process: where they go, which kind, their events.
 *
 * gs_pyprobes_locate() finds the CPython in a process (cpython/python.h) and prepares the
 * probes: inline probes (probe/inline.h) when gilscope holds a freshly exec'd command at its
 * entry point and they are allowed, else uprobes defined through tracefs on take_gil and after
 * every store to gil->locked (a hardware write watchpoint on gil->locked with --gil-watchpoint,
 * or where the stores were not all found). gs_pyprobes_open() opens the probes' perf events for
 * one task into the event list; forced drops are told apart by probes on the drop request's writes
 * (cpython/dropreq.h), else by an optional watchpoint on gil_drop_request (3.11, 3.12). gs_pyprobes_meta() describes the interpreter and the mechanism in the
 * recording. gs_pyprobes_remove() removes the uprobe definitions (their events must be closed).
 * Attaching (every thread held, inject.h): gs_pyprobes_attach() sets inline probes up through
 * injected system calls, or uprobes when they cannot be (said in one sentence);
 * gs_pyprobes_unpatch() puts a process's code back as its file has it and unmaps the trampolines
 * and the ring once no thread is inside them: at detach, in the children that inherited them,
 * and in a process a gone gilscope left patched. Errors are -errno with a sentence in why.
 */
#ifndef GS_PYPROBES_H
#define GS_PYPROBES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpython/python.h"
#include "probe/evlist.h"
#include "probe/inject.h"
#include "probe/inline.h"
#include "record/emit.h"

struct gs_store_site {
	uint32_t pid;
	uint64_t ip;
	int32_t value;
};

struct gs_pyprobes {
	const char *tracefs;
	int use_watchpoint;             /* gil->locked through a hardware watchpoint instead of store-site uprobes */
	int use_inline;                 /* inline probes */
	int inline_only;                /* no uprobes when the inline probes cannot be had: an error */
	struct gs_pyimage_cache *cache; /* the recording's analyses (not owned; NULL: none) */
	struct gs_inline il;
	struct gs_inline_target tg; /* what the inline probes patch (tg.sites: isites), once CPython is found */
	struct gs_inline_site isites[GS_INLINE_MAX_SITES];
	struct gs_python py;
	char group[64]; /* the uprobes' tracefs group: gilscope_PID */
	int uprobe_defined;
	long tp_take_gil, tp_acquire, tp_release;
	long tp_dropreq_set, tp_dropreq_reset; /* the drop request's uprobes, 0: none */
	int drop_warned;
	struct gs_store_site sites[64]; /* watchpoint hits: the value stored, per code site */
	size_t nsites;
};

/* Before use: the tracefs mount, and the user's choices. */
void gs_pyprobes_init(struct gs_pyprobes *p, const char *tracefs, int watchpoint, int allow_inline);
/* Locates CPython in pid; may_inline: pid is held at its entry point (launch). pending_sig
 * receives a signal that arrived while the inline set-up held the command. */
int gs_pyprobes_locate(struct gs_pyprobes *p, pid_t pid, int may_inline, const struct gs_evlist *el, int *pending_sig,
		       char *why, size_t whylen);
/* Attach: locates CPython in pid (nothing is stopped or changed). */
int gs_pyprobes_find(struct gs_pyprobes *p, pid_t pid, char *why, size_t whylen);
/* Attach, every thread of the located process held in ts: inline probes (unless --uprobes), else
 * uprobes. */
int gs_pyprobes_attach(struct gs_pyprobes *p, struct gs_threads *ts, const struct gs_evlist *el, char *why,
		       size_t whylen);
/* Process ts->pid (held, with the located CPython's code at the same addresses) carries inline
 * probes with trampolines at tramp: the original bytes back, then the trampolines and every
 * gilscope ring mapping unmapped once no thread is inside. 0 or -errno with why. */
int gs_pyprobes_unpatch(const struct gs_pyprobes *p, struct gs_threads *ts, uint64_t tramp, char *why, size_t whylen);
/* With ts->pid held and no live gilscope's probes in it: removes what a gilscope killed in the
 * middle of attaching or detaching may have left that no mark names (a ring mapping, a descriptor
 * on one, a blank trampoline page, the injector's scratch bytes). 0 or -errno with why. */
int gs_pyprobes_scrub(const struct gs_pyprobes *p, struct gs_threads *ts, char *why, size_t whylen);
/* Detach: unpatches the attached process (unless it is gone: target_gone) and every process that
 * maps this recording's ring (its children forked meanwhile); warnings say what could not be done. */
void gs_pyprobes_detach(struct gs_pyprobes *p, int target_gone);
/* Of the n probes ps (their targets ended), which rings a process still maps (a child forked from
 * the target, which writes into it): shared[i] = 1 for those, 0 for the others, whose ring only
 * gilscope holds. One look at every process's maps for all n. */
void gs_pyprobes_rings_shared(struct gs_pyprobes *const *ps, size_t n, int *shared);
/* Opens the probe events of task tid (and of the tasks it creates later). */
int gs_pyprobes_open(struct gs_pyprobes *p, struct gs_evlist *el, pid_t tid, char *why, size_t whylen);
/* Are uprobe events defined (there is something to open per task)? */
int gs_pyprobes_have_uprobes(const struct gs_pyprobes *p);
void gs_pyprobes_meta(const struct gs_pyprobes *p, const struct gs_emit *e);
/* The value a watchpoint hit stored, decoded from the instruction before ip in process pid,
 * once per code site. GS_VALUE_UNKNOWN when it cannot be decoded. */
int32_t gs_pyprobes_stored_value(struct gs_pyprobes *p, uint32_t pid, uint64_t ip);
/* The address of the instruction an inline probe's site number names (its events' `site`), 0 if none. */
uint64_t gs_pyprobes_site_ip(const struct gs_pyprobes *p, unsigned site);
/* Are forced drops told apart: the drop request's writes probed (inline or uprobes), or watched? */
int gs_pyprobes_tells_forced_drops(const struct gs_pyprobes *p);
void gs_pyprobes_remove(struct gs_pyprobes *p);

#endif
