/* intern.h - numbering frames and stacks once each, for the recording's definitions.
 *
 * A stack sample is one 32-byte record naming a stack defined once in the recording; a stack
 * is a list of frame ids, each frame defined once. gs_intern_frame() gives a frame its id from
 * two 64-bit keys (a Python frame: its code object and line with the code's generation; a native
 * frame: a hash of its symbol and module), gs_intern_stack() a stack its id from its frame ids.
 * Ids count from 1 in the order of first sight, separately for frames and stacks; *fresh says
 * the caller must write the definition now. Open addressing, grown at half full.
 * gs_intern_forget() drops the frames whose key1 has key's top 16 bits (the Python frames of a
 * process that ended: stacks.c puts a key per process there) and the stacks using any of them,
 * so the tables hold the frames of the processes alive, not of every one ever seen; an id is
 * never given twice (what is seen again after it was forgotten gets a new id, defined anew).
 * gs_intern_frames() and gs_intern_stacks() count the entries held.
 * Pure: no I/O. gs_intern_free(NULL) does nothing.
 */
#ifndef GS_INTERN_H
#define GS_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct gs_intern;

struct gs_intern *gs_intern_new(void);
void gs_intern_free(struct gs_intern *t);

uint32_t gs_intern_frame(struct gs_intern *t, uint64_t key1, uint64_t key2, int *fresh);
/* ids: n frame ids, innermost first (n >= 1). */
uint32_t gs_intern_stack(struct gs_intern *t, const uint32_t *ids, int n, int *fresh);

void gs_intern_forget(struct gs_intern *t, uint64_t key);

size_t gs_intern_frames(const struct gs_intern *t);
size_t gs_intern_stacks(const struct gs_intern *t);

#endif
