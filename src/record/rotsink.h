/* rotsink.h - the recording file as a sink (record/sink.h) that rotates: `serve -o FILE
 * --max-size SIZE --max-files N`.
 *
 * Contract: the records go to path as the plain file sink writes them (recfile.h). Once the file
 * holds max_bytes or more, half of them new records (not the preamble below; checked before each
 * record), it is completed with an END record (arg64: the events lost while it was written; its
 * time the next file's start) and closed; path.(N-1) is removed, path.K renamed path.(K+1) down to
 * path renamed path.1, and a new path is started at the time of the record that did not fit. So a
 * file ends within one record and the definitions it first uses past max_bytes (a few KiB at
 * usual stack depths), or past its preamble plus max_bytes/2 when the preamble is longer than max_bytes/2. Each
 * file is a complete recording that `report` reads alone: a new one starts with the META records
 * (run facts, those of the processes alive, the interpreter's, with the rotation's time), then for
 * each thread alive a THREAD record (its scheduler state as the last switch or wakeup left it, who
 * holds each process's main GIL as the GIL events left it, the main thread), its COMM and Python
 * name, and a GIL_WAIT for each thread waiting for a GIL then. A frame or stack definition is
 * written into a file only when a record there first uses it (a SAMPLE or CTR_STACK its stack, a
 * STACK its frames), just before that record. What the new file cannot know: a hold's or wait's
 * earlier part (counted in the previous file) and a drop request in progress (the release it
 * forces counts as voluntary). max_bytes 0: never rotated (the plain file sink, nothing kept).
 * max_files: the files kept besides path (at least 1). The memory kept grows with the threads
 * alive, the META records of the processes alive (a process's go when its main thread exits) and
 * the distinct frames and stacks (hashed by id), not with time.
 * Rotation renames path, so with max_bytes it must be a regular file (or not exist): start refuses
 * a device node, FIFO or socket in one sentence, before anything is recorded.
 * Errors as the plain file sink: one sentence, then nothing more is written.
 */
#ifndef GS_RECORD_ROTSINK_H
#define GS_RECORD_ROTSINK_H

#include <stdint.h>

#include "record/sink.h"

struct gs_sink *gs_rotating_sink_new(const char *path, uint64_t max_bytes, unsigned max_files);
void gs_rotating_sink_free(struct gs_sink *s);

#endif
