/* perf_event.c - perf_event_open wrapper, error sentences, ring buffer reader. */
#define _GNU_SOURCE
#include "probe/perf_event.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int gs_perf_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group_fd, unsigned long flags)
{
	long fd = syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags | PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

void gs_perf_strerror(int err, const char *what, char *buf, size_t len)
{
	char par[32] = "unknown";
	long n = gs_read_file("/proc/sys/kernel/perf_event_paranoid", par, sizeof(par));
	if (n > 0 && par[n - 1] == '\n')
		par[n - 1] = '\0';
	switch (-err) {
	case EACCES:
	case EPERM:
		snprintf(buf, len,
			 "no permission to open %s (kernel.perf_event_paranoid = %s): run gilscope as root, or give it "
			 "CAP_PERFMON and CAP_SYS_PTRACE (`setcap cap_perfmon,cap_sys_ptrace,cap_sys_admin+ep "
			 "gilscope`), "
			 "or lower the setting with `sysctl kernel.perf_event_paranoid=-1`",
			 what, par);
		break;
	case ENOENT:
	case EOPNOTSUPP:
		snprintf(buf, len, "%s is not supported by this kernel or machine (%s)", what, strerror(-err));
		break;
	case ENOSPC:
		snprintf(buf, len,
			 "no free hardware debug register for %s: another debugger or profiler is using them (%s)",
			 what, strerror(-err));
		break;
	case EMFILE:
		snprintf(buf, len, "too many open files while opening %s: raise `ulimit -n`", what);
		break;
	case ESRCH:
		snprintf(buf, len, "the process exited before %s could be opened", what);
		break;
	default:
		snprintf(buf, len, "cannot open %s: %s", what, strerror(-err));
	}
}

int gs_ring_map(struct gs_ring *r, int fd, size_t data_pages)
{
	long page = sysconf(_SC_PAGESIZE);
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->data_size = data_pages * (size_t)page;
	r->base = mmap(NULL, r->data_size + (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->base == MAP_FAILED) {
		int e = errno;
		r->base = NULL;
		return -e;
	}
	r->copy = gs_malloc(65536);
	return 0;
}

void gs_ring_unmap(struct gs_ring *r)
{
	if (r->base)
		munmap(r->base, r->data_size + (size_t)sysconf(_SC_PAGESIZE));
	free(r->copy);
	r->base = NULL;
	r->copy = NULL;
}

size_t gs_ring_pending(const struct gs_ring *r)
{
	struct perf_event_mmap_page *meta = r->base;
	uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	return (size_t)(head - meta->data_tail);
}

int gs_ring_drain(struct gs_ring *r, void (*cb)(const struct perf_event_header *h, void *arg), void *arg)
{
	struct perf_event_mmap_page *meta = r->base;
	uint8_t *data = (uint8_t *)r->base + meta->data_offset;
	uint64_t head, tail, mask = r->data_size - 1;
	int n = 0, err = 0;

	if (!meta->data_offset)
		data = (uint8_t *)r->base + sysconf(_SC_PAGESIZE);
	head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	tail = meta->data_tail;
	while (tail < head) {
		struct perf_event_header hdr;
		const struct perf_event_header *h;
		uint64_t off = tail & mask;
		if (head - tail < sizeof(hdr)) {
			err = -EIO;
			break;
		}
		if (off + sizeof(hdr) <= r->data_size) {
			memcpy(&hdr, data + off, sizeof(hdr));
		} else {
			size_t first = r->data_size - off;
			memcpy(&hdr, data + off, first);
			memcpy((uint8_t *)&hdr + first, data, sizeof(hdr) - first);
		}
		/* the kernel writes 8-byte aligned records no bigger than the ring: anything else is
		 * corruption (a head beyond tail + data_size would make the wrap copy read past the
		 * data area; an unaligned size would leave the next header misaligned) */
		if (hdr.size < sizeof(hdr) || hdr.size > head - tail || hdr.size > r->data_size || (hdr.size & 7)) {
			err = -EIO;
			break;
		}
		if (off + hdr.size <= r->data_size) {
			h = (const void *)(data + off);
		} else {
			size_t first = r->data_size - off;
			memcpy(r->copy, data + off, first);
			memcpy(r->copy + first, data, hdr.size - first);
			h = (const void *)r->copy;
		}
		cb(h, arg);
		n++;
		tail += hdr.size;
	}
	if (err)
		tail = head;
	r->bytes_read += tail - meta->data_tail;
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
	return err ? err : n;
}
