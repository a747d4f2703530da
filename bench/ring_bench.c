/* ring_bench.c - the inline probes' cost per GIL event, measured on the real generated code.
 *
 * Generates one recording sequence with x86_emit_record (the code the trampolines run) into an
 * RWX page, writing into a ring of its own, and calls it in a loop: from 1 thread, then from 2
 * threads pinned to 2 CPUs at once (the I/O ping-pong case: two threads taking turns with the
 * GIL on two CPUs). Prints ns of thread CPU time per event (minus the cost of calling a bare
 * `ret`), the minimum and the median of RUNS runs (the 2-thread figure is the slower thread's),
 * and the cost of the instructions the sequence is made of, to tell where the nanoseconds go.
 * Usage: ring_bench [EVENTS_PER_THREAD] (default 400000; the ring holds them all, nothing drops).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "probe/x86.h"

#define RUNS 11
#define TURN_RUNS 41

/* The thread's CPU time: the machine is shared, a preemption must not count. */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t tid_offset(void)
{
	uint64_t fs;
	uint32_t tid = (uint32_t)gettid();
	__asm__ volatile("mov %%fs:0, %0" : "=r"(fs));
	for (uint32_t off = 0x200; off < 0x400; off += 4)
		if (*(uint32_t *)(uintptr_t)(fs + off) == tid)
			return off;
	return 0;
}

struct worker {
	void (*fn)(void);
	int cpu;
	long n;
	pthread_barrier_t *go;
	double ns;
	int turns; /* take turns with the other thread (the GIL's ping-pong): each call follows one on the other CPU */
};

static volatile int turn __attribute__((aligned(64)));

static void *work(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	uint64_t t0;
	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	pthread_barrier_wait(w->go);
	t0 = now_ns();
	if (w->turns) {
		for (long i = 0; i < w->n; i++) {
			while (turn != w->cpu)
				__asm__ volatile("pause");
			w->fn();
			__atomic_store_n(&turn, !w->cpu, __ATOMIC_RELEASE);
		}
	} else {
		for (long i = 0; i < w->n; i++)
			w->fn();
	}
	w->ns = (double)(now_ns() - t0) / (double)w->n;
	return NULL;
}

/* ns per call of fn from nthreads threads (on CPUs 0, 1, ...) at once: the slowest thread's. */
static double run_turns(void (*fn)(void), int nthreads, long n, int turns)
{
	pthread_t th[2];
	struct worker w[2];
	pthread_barrier_t go;
	double worst = 0;
	pthread_barrier_init(&go, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .fn = fn, .cpu = i, .n = n, .go = &go, .turns = turns };
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		if (w[i].ns > worst)
			worst = w[i].ns;
	}
	pthread_barrier_destroy(&go);
	return worst;
}

static double run(void (*fn)(void), int nthreads, long n) { return run_turns(fn, nthreads, n, 0); }

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---- the instructions, alone: ns per instruction over a loop of 1000 ------------------------- */

static uint64_t shared_word __attribute__((aligned(64)));

static void prim_rdtsc(void)
{
	for (int i = 0; i < 1000; i++)
		__asm__ volatile("rdtsc" ::: "rax", "rdx");
}
static void prim_rdtscp(void)
{
	for (int i = 0; i < 1000; i++)
		__asm__ volatile("rdtscp" ::: "rax", "rdx", "rcx");
}
static void prim_rdpid(void)
{
	for (int i = 0; i < 1000; i++)
		__asm__ volatile(".byte 0xf3, 0x0f, 0xc7, 0xf8" /* rdpid %rax */ ::: "rax");
}
static void prim_pushf_popf(void)
{
	for (int i = 0; i < 1000; i++)
		__asm__ volatile("pushfq\n\tpopfq" ::: "cc", "memory");
}
static void prim_lahf_sahf(void)
{
	for (int i = 0; i < 1000; i++)
		__asm__ volatile("seto %%al\n\tlahf\n\tadd $0x7f,%%al\n\tsahf" ::: "rax", "cc");
}
static void prim_xadd(void)
{
	for (int i = 0; i < 1000; i++)
		__atomic_fetch_add(&shared_word, 1, __ATOMIC_SEQ_CST);
}
static void prim_cmpxchg(void)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t v = __atomic_load_n(&shared_word, __ATOMIC_RELAXED);
		__atomic_compare_exchange_n(&shared_word, &v, v + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	}
}

static double median_of(void (*fn)(void), int nthreads, long n)
{
	double r[RUNS];
	for (int k = 0; k < RUNS; k++)
		r[k] = run(fn, nthreads, n);
	qsort(r, RUNS, sizeof(r[0]), cmp_double);
	return r[RUNS / 2];
}

static void primitives(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
		int threads;
	} p[] = {
		{ "rdtsc", prim_rdtsc, 1 },
		{ "rdtscp", prim_rdtscp, 1 },
		{ "rdpid", prim_rdpid, 1 },
		{ "pushf+popf", prim_pushf_popf, 1 },
		{ "seto+lahf+add+sahf", prim_lahf_sahf, 1 },
		{ "lock xadd, one CPU's line", prim_xadd, 1 },
		{ "lock xadd, line shared by 2 CPUs", prim_xadd, 2 },
		{ "load+lock cmpxchg, one CPU's line", prim_cmpxchg, 1 },
	};
	printf("instructions (ns each, median of %d):\n", RUNS);
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		printf("  %-36s %6.2f\n", p[i].name, median_of(p[i].fn, p[i].threads, 2000) / 1000.0);
}

/* ---- the generated recording sequence -------------------------------------------------------- */

static void measure(uint8_t *code, uint8_t *ring, size_t size, long n, double base, const double *tbase)
{
	double one[RUNS], two[RUNS], turns[TURN_RUNS];
	for (int k = 0; k < RUNS; k++) {
		memset(ring, 0, size); /* every page touched before, no event dropped */
		one[k] = run((void (*)(void))(uintptr_t)code, 1, n) - base;
		memset(ring, 0, size);
		two[k] = run((void (*)(void))(uintptr_t)code, 2, n) - base;
	}
	for (int k = 0; k < TURN_RUNS; k++) {
		memset(ring, 0, size);
		turns[k] = run_turns((void (*)(void))(uintptr_t)code, 2, n / 40, 1);
	}
	qsort(turns, TURN_RUNS, sizeof(turns[0]), cmp_double);
	qsort(one, RUNS, sizeof(one[0]), cmp_double);
	qsort(two, RUNS, sizeof(two[0]), cmp_double);
	printf("  1 thread:           %6.2f ns/event (min), %6.2f (median)\n", one[0], one[RUNS / 2]);
	printf("  2 threads, 2 CPUs:  %6.2f ns/event (min), %6.2f (median)\n", two[0], two[RUNS / 2]);
	/* a partner preempted makes a turn last a time slice: only the minimum means something */
	printf("  2 threads in turns: %6.2f ns/event (min; a turn takes %.2f ns without the call)\n",
	       (turns[0] - tbase[0]) / 2, tbase[0] / 2);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 400000;
	struct x86_ring_geom g;
	struct x86_ref ref = { .kind = X86_REF_ABS, .abs = 0x1234 };
	uint8_t *code, *ring;
	size_t size, len;
	double base, tbase[TURN_RUNS];
	uint32_t off = tid_offset();

	if (!off) {
		fprintf(stderr, "ring_bench: the thread id is not in glibc's thread control block here\n");
		return 1;
	}
	if (n < 1000 || n > 4000000)
		n = 400000;
	g = x86_ring_geom_for(2, 2 * (uint64_t)n);
	size = x86_ring_size(&g);
	code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ring = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED || ring == MAP_FAILED) {
		perror("ring_bench: mmap");
		return 1;
	}
	code[0] = 0xc3; /* a bare ret: the loop and the call */
	base = median_of((void (*)(void))(uintptr_t)code, 1, n);
	for (int k = 0; k < TURN_RUNS; k++)
		tbase[k] = run_turns((void (*)(void))(uintptr_t)code, 2, n / 40, 1);
	qsort(tbase, TURN_RUNS, sizeof(tbase[0]), cmp_double);
	g.base = (uint64_t)(uintptr_t)ring;
	printf("inline probe recording sequence: %u ring(s) of %llu slots, CPU number from %s\n", g.nrings,
	       (unsigned long long)g.nslots,
	       g.cpu == X86_CPU_RDPID ? "rdpid" : g.cpu == X86_CPU_RDTSCP ? "rdtscp" : "nowhere (one ring)");
	for (int ordered = 0; ordered < 2; ordered++) {
		len = x86_emit_record(code, &g, off, 7, &ref, ordered);
		code[len] = 0xc3;
		printf("%s (%zu bytes):\n", ordered ? "an acquisition's, lfence first" : "a release's or a wait's", len);
		measure(code, ring, size, n, base, tbase);
	}
	printf("empty call: %.2f ns\n", base);
	primitives();
	munmap(ring, size);
	munmap(code, 4096);
	return 0;
}
