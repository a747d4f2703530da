/* perf_event.h - perf_event_open(2) and its ring buffers, after libperf.
 *
 * gs_perf_open returns an fd or -errno, and gs_perf_strerror turns that errno into one sentence
 * that names what to change (kernel.perf_event_paranoid and its current value, the
 * capabilities, ulimit -n). A gs_ring is one mmap'd ring; gs_ring_drain reads it with the kernel's
 * protocol documented below (acquire on data_head, release on data_tail), checks each record's
 * header before trusting it and copies records that wrap. No decoding here: the record
 * layouts are record/ring_decode.h's.
 */
#ifndef GS_PERF_EVENT_H
#define GS_PERF_EVENT_H

#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* perf_event_open(2). Returns the fd, or -errno. */
int gs_perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group_fd, unsigned long flags);

/* One sentence explaining why perf_event_open failed with err (negative errno) for what. */
void gs_perf_strerror(int err, const char *what, char *buf, size_t len);

struct gs_ring {
	int fd;
	void *base;       /* the mmap: one metadata page, then the data pages */
	size_t data_size; /* a power of two */
	uint8_t *copy;    /* scratch for records that wrap around the end */
	uint64_t bytes_read;
};

/* Maps a ring of data_pages (a power of two) pages for fd. 0 or -errno. */
int gs_ring_map(struct gs_ring *r, int fd, size_t data_pages);
void gs_ring_unmap(struct gs_ring *r);

/* Reading protocol (after libperf's perf_mmap__read_*):
 *   1. load data_head with acquire semantics (the kernel's writes before it are visible);
 *   2. walk records from data_tail to head; check each header's size before trusting it
 *      (>= sizeof header, <= the data size); copy records that wrap into r->copy;
 *   3. store data_tail with release semantics so the kernel may reuse the space.
 * cb is called for each record; its pointer is valid only during the call. Returns the number
 * of records, or -EIO when a record header is corrupt (the rest of the ring is skipped). */
int gs_ring_drain(struct gs_ring *r, void (*cb)(const struct perf_event_header *h, void *arg), void *arg);

/* Bytes waiting in the ring. */
size_t gs_ring_pending(const struct gs_ring *r);

#endif
