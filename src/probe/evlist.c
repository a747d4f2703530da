/* evlist.c - perf events per CPU into one ring per CPU (see evlist.h). */
#define _GNU_SOURCE
#include "probe/evlist.h"
#include "base/util.h"
#include "probe/perf_event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct idkind {
	uint64_t id;
	int kind;
};

struct gs_evlist {
	int ncpu;
	unsigned data_pages;
	const char *ring_use, *ring_fix;
	struct gs_ring *rings;
	int *ring_fd; /* per CPU: the fd that owns the ring, -1 until opened */
	int *fds;
	size_t nfds, cap_fds;
	struct idkind *ids;
	size_t nids, cap_ids;
	int indexed; /* ids sorted since the last addition */
};

struct gs_evlist *gs_evlist_new(int ncpu, unsigned data_pages, const char *ring_use, const char *ring_fix)
{
	struct gs_evlist *el = gs_calloc(1, sizeof(*el));
	el->ncpu = ncpu < 1 ? 1 : ncpu;
	el->data_pages = data_pages;
	el->ring_use = ring_use;
	el->ring_fix = ring_fix;
	el->rings = gs_calloc((size_t)el->ncpu, sizeof(*el->rings));
	el->ring_fd = gs_calloc((size_t)el->ncpu, sizeof(int));
	for (int c = 0; c < el->ncpu; c++)
		el->ring_fd[c] = -1;
	return el;
}

void gs_evlist_close_events(struct gs_evlist *el)
{
	for (size_t i = 0; i < el->nfds; i++)
		close(el->fds[i]);
	el->nfds = 0;
}

void gs_evlist_free(struct gs_evlist *el)
{
	if (!el)
		return;
	gs_evlist_close_events(el);
	for (int c = 0; c < el->ncpu; c++)
		if (el->ring_fd[c] >= 0)
			gs_ring_unmap(&el->rings[c]);
	free(el->rings);
	free(el->ring_fd);
	free(el->fds);
	free(el->ids);
	free(el);
}

void gs_evlist_attr(struct perf_event_attr *a, unsigned type, uint64_t config, uint64_t sample_type)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = type;
	a->config = config;
	a->sample_period = 1;
	a->sample_type = sample_type;
	a->sample_id_all = 1;
	a->inherit = 1;
	a->use_clockid = 1;
	a->clockid = CLOCK_MONOTONIC;
	a->watermark = 1;
}

void gs_evlist_keep(struct gs_evlist *el, int fd)
{
	if (el->nfds == el->cap_fds) {
		el->cap_fds = el->cap_fds ? el->cap_fds * 2 : 64;
		el->fds = gs_realloc_array(el->fds, el->cap_fds, sizeof(int));
	}
	el->fds[el->nfds++] = fd;
}

static void add_id(struct gs_evlist *el, int fd, int kind)
{
	uint64_t id;
	if (ioctl(fd, PERF_EVENT_IOC_ID, &id) < 0)
		return;
	if (el->nids == el->cap_ids) {
		el->cap_ids = el->cap_ids ? el->cap_ids * 2 : 64;
		el->ids = gs_realloc_array(el->ids, el->cap_ids, sizeof(*el->ids));
	}
	el->ids[el->nids].id = id;
	el->ids[el->nids].kind = kind;
	el->nids++;
	el->indexed = 0;
}

/* The CPU's ring for fd: mapped by the first event on the CPU, shared by the others. */
static int attach_ring(struct gs_evlist *el, int cpu, int fd, char *why, size_t whylen)
{
	int err;
	if (el->ring_fd[cpu] < 0) {
		err = gs_ring_map(&el->rings[cpu], fd, el->data_pages);
		if (err < 0) {
			snprintf(why, whylen, "cannot map a %u-page ring buffer for %s (%s): %s", el->data_pages,
				 el->ring_use, strerror(-err), el->ring_fix);
			return err;
		}
		el->ring_fd[cpu] = fd;
		return 0;
	}
	if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, el->ring_fd[cpu]) < 0) {
		err = -errno;
		snprintf(why, whylen, "cannot share the ring buffer between events for %s: %s", el->ring_use,
			 strerror(-err));
		return err;
	}
	return 0;
}

int gs_evlist_open(struct gs_evlist *el, struct perf_event_attr *attr, pid_t tid, int kind, const char *what, char *why,
		   size_t whylen)
{
	for (int c = 0; c < el->ncpu; c++) {
		int fd = gs_perf_open(attr, tid, c, -1, 0), err;
		if (fd == -ENODEV)
			continue; /* an offline CPU */
		if (fd < 0) {
			gs_perf_strerror(fd, what, why, whylen);
			return fd;
		}
		gs_evlist_keep(el, fd);
		if ((err = attach_ring(el, c, fd, why, whylen)) < 0)
			return err;
		add_id(el, fd, kind);
	}
	return 0;
}

static int id_cmp(const void *x, const void *y)
{
	const struct idkind *a = x, *b = y;
	return a->id < b->id ? -1 : a->id > b->id;
}

void gs_evlist_index(struct gs_evlist *el)
{
	if (el->nids) /* none when every event comes from elsewhere (the BPF scheduler source) */
		qsort(el->ids, el->nids, sizeof(*el->ids), id_cmp);
	el->indexed = 1;
}

int gs_evlist_kind(const struct gs_evlist *el, uint64_t id)
{
	size_t lo = 0, hi = el->nids;
	while (el->indexed && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (el->ids[mid].id == id)
			return el->ids[mid].kind;
		if (el->ids[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* ids are allocated in increasing order, so the list is nearly always sorted; when an
	 * event was added since the last index (or ids were not increasing), search it all */
	for (size_t i = 0; i < el->nids; i++)
		if (el->ids[i].id == id)
			return el->ids[i].kind;
	return 0;
}

int gs_evlist_has_ring(const struct gs_evlist *el, int cpu)
{
	return cpu >= 0 && cpu < el->ncpu && el->ring_fd[cpu] >= 0;
}

const void *gs_evlist_meta_page(const struct gs_evlist *el)
{
	for (int c = 0; c < el->ncpu; c++)
		if (el->ring_fd[c] >= 0)
			return el->rings[c].base;
	return NULL;
}

int gs_evlist_pollfds(const struct gs_evlist *el, struct pollfd *pfd, int n)
{
	for (int c = 0; c < el->ncpu; c++)
		if (el->ring_fd[c] >= 0) {
			pfd[n].fd = el->ring_fd[c];
			pfd[n].events = POLLIN;
			pfd[n++].revents = 0;
		}
	return n;
}

int gs_evlist_drain(struct gs_evlist *el, int cpu, void (*cb)(const struct perf_event_header *h, void *arg), void *arg)
{
	if (!gs_evlist_has_ring(el, cpu))
		return 0;
	return gs_ring_drain(&el->rings[cpu], cb, arg);
}

void gs_evlist_disable(struct gs_evlist *el)
{
	for (size_t i = 0; i < el->nfds; i++)
		ioctl(el->fds[i], PERF_EVENT_IOC_DISABLE, 0);
}
