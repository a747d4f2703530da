/* convoy.h - the convoy: a thread that gives the GIL up by itself after short holds (I/O, a
 * sleep, a lock) and then waits, each time, until a CPU-bound thread is forced to drop it at
 * the next switch interval.
 *
 * Contract: the state machine (analysis.c) calls gs_convoy_hold_end at every release (forced:
 * a waiter's drop request was pending) and gs_convoy_wait_end when a waiting thread takes the
 * GIL; each GIL remembers who released it last and whether that release was forced, so a wait
 * "ended by a forced drop" is one whose holder before it let go only because it was asked to.
 * Per thread (struct gs_convoy, allocated at its first hold or wait): histograms of its holds,
 * its waits and its waits ended by forced drops (log2 with 8 steps per octave, 1 us to 137 s:
 * medians within 5%), their count and time, and the holders forced (the four most frequent).
 *
 * gs_convoy_find decides, after the run: a thread is in a convoy when its process tells forced
 * drops apart, it waited and released at least GS_CONVOY_MIN_WAITS times, at least 3/4 of its
 * releases were voluntary, its median hold is under a tenth of the switch interval (the
 * process's python.switch_interval_us, 5 ms when it was not read), it waited at least a tenth of
 * its life, at least GS_CONVOY_MIN_FORCED of its waits and at least half its wait time were in
 * waits ended by forced drops. Two CPU-bound threads are not: their releases are forced. Pure:
 * no I/O.
 */
#ifndef GS_ANALYSIS_CONVOY_H
#define GS_ANALYSIS_CONVOY_H

#include "analysis/analysis.h"

#define GS_CONVOY_MIN_WAITS 20
#define GS_CONVOY_MIN_FORCED 10
#define GS_CONVOY_BUCKETS 226
#define GS_CONVOY_FORCERS 4
#define GS_CONVOY_DEFAULT_INTERVAL_US 5000

struct gs_convoy {
	uint32_t holds[GS_CONVOY_BUCKETS], waits[GS_CONVOY_BUCKETS], forced[GS_CONVOY_BUCKETS]; /* forced: the waits
																 * ended by forced drops */
	uint64_t nholds, nwaits;
	uint64_t forced_waits, forced_wait_ns; /* waits (and their time) ended by another thread's forced drop */
	struct {
		uint32_t tid;
		uint64_t waits;
	} forcers[GS_CONVOY_FORCERS]; /* the holders forced, most waits first after gs_convoy_find */
};

/* What gs_convoy_find says of one thread. */
struct gs_convoy_verdict {
	int in_convoy;
	uint64_t interval_us; /* the switch interval used */
	int interval_read;    /* it was read from the target (else the default) */
	uint64_t median_wait_ns, median_hold_ns, median_forced_wait_ns;
	uint64_t waits, forced_waits, forced_wait_ns, wait_ns, lifetime_ns;
	uint64_t releases, voluntary;
	uint32_t forcers[GS_CONVOY_FORCERS]; /* tids, 0-terminated, most waits first */
	uint64_t forcer_waits[GS_CONVOY_FORCERS];
	int nforcers;
};

/* t released the GIL g after holding it hold_ns; forced: a drop request was pending. */
void gs_convoy_hold_end(struct gs_gilstat *g, struct gs_thread *t, uint64_t hold_ns, int forced);
/* t, which waited wait_ns, takes g. */
void gs_convoy_wait_end(const struct gs_gilstat *g, struct gs_thread *t, uint64_t wait_ns);
/* Is t in a convoy (after gs_analysis_finish)? Fills v either way; 1 or 0. */
int gs_convoy_find(const struct gs_analysis *a, const struct gs_thread *t, struct gs_convoy_verdict *v);
void gs_convoy_free(struct gs_thread *t);

/* The bucket of a duration, and a bucket's middle (exposed for tests). */
unsigned gs_convoy_bucket(uint64_t ns);
uint64_t gs_convoy_bucket_mid(unsigned b);

#endif
