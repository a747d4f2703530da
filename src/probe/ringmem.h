/* ringmem.h - the memory of an inline ring (inline.h) allocated by the reader ahead of its writers.
 *
 * A ring's pages are allocated when first touched. Touched first by a writer, the program pays for
 * it: a page fault that allocates, zeroes and charges a shared memory page (2.8 to 3.3 us a page
 * in this VM; a 32 MiB ring's first lap is 8,192 of them, about 8 ns on every event of the I/O
 * ping-pong's 2.4 million). gilscope allocates them first instead, in its own mapping of the ring
 * (MADV_POPULATE_WRITE), a few MiB ahead of the writers' head at each drain: the program's first
 * touch then only maps pages that exist, and the allocation runs on gilscope's time. That touch is
 * a read (x86_emit_record), so one fault maps the 16 pages around it (the kernel's fault-around,
 * 64 KiB by default): 512 faults for a ring's lap instead of 8,192 of about 1 us each. Once the
 * first lap is allocated nothing more is done. The pages are charged to gilscope's
 * memory cgroup, not the program's. Best effort: a kernel without MADV_POPULATE_WRITE (before
 * 5.14) leaves the writers to allocate, as before.
 */
#ifndef GS_RINGMEM_H
#define GS_RINGMEM_H

#include <stdint.h>

/* Ring slots at slots (bytes long, in gilscope's mapping; *ready bytes of them allocated so far)
 * whose writers have reserved head slots of slot_size bytes: allocates up to a few MiB past the
 * head (all of them once a lap is done), advancing *ready. */
void gs_ringmem_ahead(uint8_t *slots, uint64_t bytes, uint64_t *ready, uint64_t head, unsigned slot_size);

#endif
