/* recfile.h - the recording file.
 *
 * Layout (little-endian): a 64-byte header, then the records.
 *   header: magic "GILSCOPE", u32 format version, u32 header size, u32 flags, u32 reserved, u64
 *           CLOCK_REALTIME ns at creation, u64 CLOCK_MONOTONIC ns at start, then zeros.
 * Whatever the version, readers get records as struct gs_rec (below) + payload; a complete
 * recording ends with an END record. Unknown record types are skipped by readers (forward
 * compatibility within a format version).
 *
 * Versions 1 and 2: each record is struct gs_rec as it is in memory (32 bytes), `size` the whole
 * record's size, a multiple of 8, >= 32; the payload follows (zero-padded to 8). A file cut by
 * SIGKILL or a full disk is readable up to its last complete record.
 *
 * Version 3: blocks. A flush (the recorder flushes at least every 50 ms), a full 256 KiB buffer or a
 * full thread table ends a block; a block is written out whole at its end, and a failed write
 * cuts the file back to the end of the previous block, so a file cut by SIGKILL or a full disk is
 * readable up to its last complete block (a cut block is the end: gs_recreader_truncated).
 *   block header, 32 bytes: u32 magic "GSB3", u32 body length (<= 16 MiB), u32 record count,
 *     u32 CRC32 (zlib's) of the header with this field as 0 then the body, u64 time of the first
 *     record, u64 time of the last. The headers chain (next = here + 32 + length), so a reader
 *     skips blocks by their times without reading bodies (gs_recreader_seek). No index: a block
 *     is one flush (every 10 to 50 ms; io_pingpong: 67 blocks a second of 37,000 records), so an
 *     hour is some 10^5 headers to step over, and an index written at close would be lost by the
 *     SIGKILLed runs.
 *   body: the records, each:
 *     tag byte: bits 0-4 type code (1-30: the type; 31: a varint type follows; 0 is invalid),
 *       bits 5-6 arg (0: 0, 1: 1, 2: -1, 3: a zig-zag varint follows), bit 7: a flags byte follows
 *       (else all its flags are 0). Flags: 1 thread, 2 arg64, 4 payload, 8 time backwards.
 *     [flags] [type varint] [thread] time [arg] [arg64] [payload], varints LEB128 (<= 64 bits):
 *     thread (flag 1; else the previous record's thread, and the first record must have it): a
 *       varint index into the block's (pid, tid) table; the index one past its end adds a pair,
 *       pid and tid varints after it (at most 1024 pairs a block);
 *     time: varint delta from the previous record's time (the block's first time for the first
 *       record), subtracted when flag 8 says so (records come in time order, readers do not
 *       rely on it);
 *     arg64 (flag 2): zig-zag varint of arg64 - the prediction (wrapping); without it arg64 is the
 *       prediction: the arg64 of the previous record with the same type code in the block, 0 for
 *       the first (so a GIL event's instruction pointer costs nothing while it repeats);
 *     payload (flag 4): varint length (1 to 0xffd8) then the bytes; readers hand it out as v2
 *       did (size = 32 + length rounded up to 8, zero-padded, the last byte a NUL).
 *   A block must decode to exactly its count of records, use up its body and end at its last
 *   time; else, as for a bad magic, length or checksum, the reader gives -EIO and says why
 *   (gs_recreader_error). A GIL event of bench/io_pingpong.py takes 2.4 to 2.8 bytes (v2: 32).
 *
 * Metadata (META) is typed from format version 2: arg says how the value after "key\0" is
 * written (enum gs_meta_type): text "value\0", or an unsigned 64-bit number (8 bytes). Readers
 * keep every fact by its key whatever it is (gs_meta_decode), so a later gilscope may add facts
 * without a new format version; a reader that does not know a key ignores it. Version 1 wrote
 * text only (arg 0): its facts read the same, and those v2 writes as named numbers were then
 * a space-separated "native.stats" text and a sentence in "mechanism" (readers keep both ways).
 */
#ifndef GS_RECFILE_H
#define GS_RECFILE_H

#include <stdint.h>
#include <stdio.h>

#define GS_REC_MAGIC "GILSCOPE"
#define GS_REC_VERSION 3u
#define GS_REC_VERSION_MIN 1u /* the oldest format this gilscope reads */
#define GS_REC_HEADER_SIZE 64u
#define GS_VALUE_UNKNOWN INT32_MIN

enum gs_rec_type {
	GS_REC_META = 1,       /* a fact: arg = enum gs_meta_type, payload "key\0" + value; pid = the process it
				    describes (0: the run); arg64: 0, or when the fact became true, earlier
				    than the record (an exec's argv the recorder learned late) */
	GS_REC_GIL_WAIT = 2,   /* tid entered take_gil (starts waiting unless the GIL is free) */
	GS_REC_GIL_WRITE = 3,  /* tid wrote gil->locked: arg = value (1 take, 0 release, -1 destroy), arg64 = ip */
	GS_REC_DROPREQ = 4,    /* tid wrote gil_drop_request: arg = value (1 request, 0 reset), arg64 = ip */
	GS_REC_SWITCH_OUT = 5, /* tid left the CPU: arg = sched_switch prev_state */
	GS_REC_SWITCH_IN = 6,  /* tid got a CPU */
	GS_REC_WAKEUP = 7,     /* tid was woken (made runnable): arg = waker tid */
	GS_REC_FORK = 8,       /* new task pid/tid: arg = parent pid, arg64 = parent tid */
	GS_REC_EXIT = 9,       /* task pid/tid exited */
	GS_REC_COMM = 10,      /* task name: payload NUL-terminated name; arg = 1 when set by exec */
	GS_REC_LOST = 11,      /* the kernel dropped arg64 events on cpu arg */
	GS_REC_THREAD = 12,    /* state of a thread at the start (attach): arg = state letter, arg64 = flags */
	GS_REC_END = 13,       /* clean end: arg64 = total lost events, arg = exit status of the command */
	GS_REC_PROC_EXIT = 14, /* a process of the command's tree exited: pid, arg = wait status (the command's is
			        * the last record before END) */
	GS_REC_PYFRAME = 15,   /* frame definition: arg64 = id, arg = line, payload "qualname\0filename\0" */
	GS_REC_STACK = 16, /* stack definition: arg64 = id, arg = frame count, payload u32 frame ids, innermost first */
	GS_REC_SAMPLE = 17,   /* tid's Python stack at time: arg64 = stack id (0: no Python frame) */
	GS_REC_COUNTER = 18,  /* a counter sample (perf script input): arg64 = value, payload = event name */
	GS_REC_NATFRAME = 19, /* native frame definition (same ids as PYFRAME): arg64 = id, arg = GS_NATFRAME_*
				    flags, payload "function\0module\0"; PYSTACKs mix both kinds */
	GS_REC_PYNAME = 20,   /* tid's Python thread name (threading.Thread.name) from time on: payload
				    "name\0", UTF-8, under 128 bytes; again when the thread is renamed */

	/* record -e and --sample-event (record/counters.h): counter N is described by META counter.N.name,
	 * .period (events one record stands for), .hardware, .stacks, or .unavailable (why not recorded) */
	GS_REC_CTR_SAMPLE = 21, /* tid's counter arg advanced by arg64 events at time: software events one record
				    per occurrence (arg64 1), hardware ones one per sample period (arg64 the period) */
	GS_REC_CTR_STACK = 22,  /* tid's Python stack read just after an occurrence of counter arg at time
				    (the counter's period events each): arg64 = stack id (0: none read) */
};

#define GS_RECFILE_MAX_STACK_FRAMES 1024 /* frames of one PYSTACK record */

#define GS_THREAD_HOLDS_GIL 1u
#define GS_THREAD_MAIN 2u

struct gs_rec {
	uint16_t type;
	uint16_t size;
	uint32_t pid;
	uint32_t tid;
	int32_t arg;
	uint64_t time;
	uint64_t arg64;
};

_Static_assert(sizeof(struct gs_rec) == 32, "record header is 32 bytes");

enum gs_meta_type {
	GS_META_TEXT = 0, /* "value\0" */
	GS_META_U64 = 1,  /* 8 bytes, little-endian */
};

/* One META record's fact. text is the value as text whatever the type (a number printed in
 * decimal into buf), valid as long as payload and buf are. */
struct gs_meta {
	const char *key;
	enum gs_meta_type type;
	const char *text;
	uint64_t u64; /* GS_META_U64; for text, its value when it is a decimal number */
	int is_number;
	char buf[24];
};

/* Decodes a META record's payload. 0, or -EINVAL when it is malformed (no key, no terminator,
 * a number of the wrong size, an unknown type). */
int gs_meta_decode(const struct gs_rec *r, const void *payload, size_t plen, struct gs_meta *out);
/* Builds a META payload into buf ("key\0" + value) for a number; returns its length, or 0 when
 * buf is too small. */
size_t gs_meta_u64_payload(char *buf, size_t len, const char *key, uint64_t value);

struct gs_recwriter;

/* Creates (truncates) path as gs_open_output() does (no symlink followed). 0 or -errno. */
int gs_recwriter_open(const char *path, uint64_t start_mono, struct gs_recwriter **out);
/* The same on an fd opened for writing (owned by the writer from then on, closed on failure too). */
int gs_recwriter_open_fd(int fd, uint64_t start_mono, struct gs_recwriter **out);
/* Buffers one record; payload may be NULL. 0, -EINVAL (plen over 0xffd8), or -errno of the last
 * failed write (sticky). */
int gs_recwriter_add(struct gs_recwriter *w, const struct gs_rec *r, const void *payload, size_t plen);
int gs_recwriter_meta(struct gs_recwriter *w, uint32_t pid, const char *key, const char *value);
/* Sets the start time in the header (when it is known only after the events). 0 or -errno. */
int gs_recwriter_set_start(struct gs_recwriter *w, uint64_t start_mono);
/* Ends the current block and writes it out. 0 or -errno. */
int gs_recwriter_flush(struct gs_recwriter *w);
uint64_t gs_recwriter_bytes(const struct gs_recwriter *w);
/* Flushes, closes, frees. 0 or the first -errno. */
int gs_recwriter_close(struct gs_recwriter *w);

struct gs_recreader;

/* Opens and validates the header. 0, or -errno / -EINVAL (not a recording: why says so). */
int gs_recreader_open(const char *path, struct gs_recreader **out, char *why, size_t whylen);
/* Next record: 1 and *r (+ *payload, *plen, valid until the next call), 0 at the end, or -EIO
 * when the file is corrupt at this point (gs_recreader_error says why; later calls give -EIO
 * too). A truncated last record (v1, v2) or block (v3) is the end. */
int gs_recreader_next(struct gs_recreader *rd, struct gs_rec *r, const void **payload, size_t *plen);
/* v3: goes to the first block whose last time is >= time, reading only block headers; the
 * next record is that block's first. 0, -ENOTSUP (versions 1 and 2), -EIO (a corrupt header) or
 * -errno. */
int gs_recreader_seek(struct gs_recreader *rd, uint64_t time);
/* Why the last -EIO (a sentence); "" before any. */
const char *gs_recreader_error(const struct gs_recreader *rd);
uint64_t gs_recreader_start(const struct gs_recreader *rd);
int gs_recreader_truncated(const struct gs_recreader *rd); /* ended inside a record */
void gs_recreader_close(struct gs_recreader *rd);

#endif
