/* evlist.h - a list of perf events opened per CPU for some tasks, and their rings (after
 * libperf's evlist).
 *
 * Every event is opened once per online CPU for one task (inherit, as the attr says); the first
 * event opened on a CPU owns that CPU's ring (mapped with the list's page count) and every later
 * event on that CPU writes into it (PERF_EVENT_IOC_SET_OUTPUT), so one ring per CPU carries all
 * of the list's events in the order the kernel wrote them. Each opened event's sample id is
 * remembered with a caller-chosen kind, which gs_evlist_kind() gives back for a record's id.
 * The list owns its descriptors and rings: gs_evlist_free() closes and unmaps them, and
 * gs_evlist_free(NULL) does nothing. Errors are -errno with a sentence in why that names the
 * event and the setting to change.
 */
#ifndef GS_EVLIST_H
#define GS_EVLIST_H

#include <linux/perf_event.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct gs_evlist;

/* An empty list for ncpu CPUs whose rings take data_pages pages (a power of two). A failed
 * mapping's sentence says what the rings are for (ring_use) and what to change (ring_fix). */
struct gs_evlist *gs_evlist_new(int ncpu, unsigned data_pages, const char *ring_use, const char *ring_fix);
void gs_evlist_free(struct gs_evlist *el);

/* Opens attr for task tid on every CPU (offline CPUs skipped), into the CPUs' rings. `what`
 * names the event in an error sentence. 0, or -errno with why. */
int gs_evlist_open(struct gs_evlist *el, struct perf_event_attr *attr, pid_t tid, int kind, const char *what, char *why,
		   size_t whylen);

/* The attr of an event that samples every occurrence (period 1) with sample_type, inherited by
 * tasks created later, timestamped with CLOCK_MONOTONIC (the clock of the whole recording),
 * waking a poller by watermark. */
void gs_evlist_attr(struct perf_event_attr *a, unsigned type, uint64_t config, uint64_t sample_type);

/* Keeps fd open until the list is freed (and disables it with the others). */
void gs_evlist_keep(struct gs_evlist *el, int fd);

/* The kind given to the event whose sample id is id, 0 when unknown. Fast once the ids are
 * indexed (gs_evlist_index, after the opening is done); correct either way. */
int gs_evlist_kind(const struct gs_evlist *el, uint64_t id);
void gs_evlist_index(struct gs_evlist *el);

/* Is there a ring for cpu? */
int gs_evlist_has_ring(const struct gs_evlist *el, int cpu);
/* The metadata page of the first ring (its time conversion fields), NULL when none. */
const void *gs_evlist_meta_page(const struct gs_evlist *el);

/* Adds every ring's fd to pfd from index n (POLLIN); returns the new count. pfd has room for
 * n + ncpu entries. */
int gs_evlist_pollfds(const struct gs_evlist *el, struct pollfd *pfd, int n);

/* Reads cpu's ring (perf_event.h's protocol), cb for each record. The number of records, or
 * -EIO when a header was corrupt. 0 when the CPU has no ring. */
int gs_evlist_drain(struct gs_evlist *el, int cpu, void (*cb)(const struct perf_event_header *h, void *arg), void *arg);

/* Stops every event (the rings keep what they hold). */
void gs_evlist_disable(struct gs_evlist *el);
/* Closes every event's descriptor now, keeping the rings mapped (uprobes in use cannot be
 * removed). */
void gs_evlist_close_events(struct gs_evlist *el);

#endif
