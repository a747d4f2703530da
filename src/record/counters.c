/* counters.c - perf's counters per followed task (see counters.h). */
#define _GNU_SOURCE
#include "record/counters.h"
#include "base/util.h"
#include "probe/perf_event.h"
#include "record/ring_decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No PERF_SAMPLE_PERIOD: with it the kernel writes a software event's every occurrence whatever
 * the period. A sample stands for the counter's period. */
#define CTR_SAMPLE (PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CPU)
#define MAX_PERIOD (1ull << 40)

#define HW_CACHE(c, op, res) ((c) | (op) << 8 | (res) << 16)

/* perf's names (and its aliases) for the events gilscope knows, with a sample period for the
 * hardware ones: a few thousand samples a second of a busy thread at 3 GHz. */
static const struct event_def {
	const char *name, *alias;
	unsigned type;
	uint64_t config, period;
} events[] = {
	{ "cycles", "cpu-cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, 1000003 },
	{ "instructions", NULL, PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, 1000003 },
	{ "cache-misses", NULL, PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, 10007 },
	{ "cache-references", NULL, PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES, 100003 },
	{ "branch-misses", NULL, PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES, 10007 },
	{ "branches", "branch-instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS, 100003 },
	{ "L1-dcache-load-misses", NULL, PERF_TYPE_HW_CACHE,
	  HW_CACHE(PERF_COUNT_HW_CACHE_L1D, PERF_COUNT_HW_CACHE_OP_READ, PERF_COUNT_HW_CACHE_RESULT_MISS), 10007 },
	{ "page-faults", "faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, 1 },
	{ "minor-faults", NULL, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN, 1 },
	{ "major-faults", NULL, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ, 1 },
	{ "context-switches", "cs", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, 1 },
	{ "cpu-migrations", "migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, 1 },
};

struct counter {
	struct gs_counter_spec spec;
	const struct event_def *def; /* NULL: unknown name */
	uint64_t period;
	int available, follow_failed;
	int rides;     /* a stacks counter whose samples are every `every`-th of counter `rides`, -1: its own */
	int stacks_by; /* the stacks counter riding on this one, -1: none */
	uint64_t every, seen;
};

struct gs_counters {
	struct gs_evlist *el;
	struct counter c[GS_COUNTERS_MAX];
	int n;
};

int gs_counters_parse(const char *list, int stacks, struct gs_counter_spec *specs, int n, char *why, size_t whylen)
{
	const char *p = list;
	for (;;) {
		size_t len = strcspn(p, ","), nl = strcspn(p, ",/");
		struct gs_counter_spec *s;
		if (nl == 0 || nl >= sizeof(s->name)) {
			snprintf(why, whylen, "invalid event list '%s': an event name is empty or too long", list);
			return -EINVAL;
		}
		if (n == GS_COUNTERS_MAX) {
			snprintf(why, whylen, "invalid event list '%s': more than %d events", list, GS_COUNTERS_MAX);
			return -EINVAL;
		}
		s = &specs[n];
		memset(s, 0, sizeof(*s));
		memcpy(s->name, p, nl);
		s->stacks = stacks;
		if (nl < len) {
			char num[24];
			uint64_t v;
			size_t dl = len - nl - 1;
			if (dl == 0 || dl >= sizeof(num)) {
				snprintf(why, whylen, "invalid period in '%s' (EVENT/PERIOD, a number of events)",
					 list);
				return -EINVAL;
			}
			memcpy(num, p + nl + 1, dl);
			num[dl] = '\0';
			if (gs_parse_u64(num, &v) < 0 || v == 0 || v > MAX_PERIOD) {
				snprintf(why, whylen, "invalid period '%s' in '%s' (a number of events, 1 to 2^40)",
					 num, list);
				return -EINVAL;
			}
			s->period = v;
		}
		n++;
		if (!p[len])
			return n;
		p += len + 1;
	}
}

static const struct event_def *find_event(const char *name)
{
	for (size_t i = 0; i < GS_ARRAY_SIZE(events); i++)
		if (strcmp(events[i].name, name) == 0 || (events[i].alias && strcmp(events[i].alias, name) == 0))
			return &events[i];
	return NULL;
}

static int is_hardware(const struct event_def *d)
{
	return d->type == PERF_TYPE_HARDWARE || d->type == PERF_TYPE_HW_CACHE;
}

/* Does the machine expose a CPU PMU at all? (Virtual machines without a virtual PMU do not.) */
static int have_pmu(void)
{
	return access("/sys/bus/event_source/devices/cpu", F_OK) == 0 ||
	       access("/sys/bus/event_source/devices/cpu_core", F_OK) == 0 ||
	       access("/sys/bus/event_source/devices/armv8_pmuv3_0", F_OK) == 0;
}

static void attr_of(const struct counter *c, struct perf_event_attr *a)
{
	gs_evlist_attr(a, c->def->type, c->def->config, CTR_SAMPLE);
	a->sample_period = c->period;
	if (c->spec.stacks || c->stacks_by >= 0) {
		/* wake the recorder at every sample taken for a stack: it is read right after */
		a->watermark = 0;
		a->wakeup_events = (uint32_t)(c->every > UINT32_MAX ? UINT32_MAX : c->every);
	}
}

/* Why counter c cannot be counted here (one sentence into why), or 0 when it can. */
static int probe(const struct counter *c, struct gs_evlist *el, char *why, size_t whylen)
{
	struct perf_event_attr a;
	char what[96];
	int fd;
	if (!c->def) {
		snprintf(why, whylen,
			 "event %s is unknown (known: cycles, instructions, cache-misses, cache-references, "
			 "branch-misses, branches, L1-dcache-load-misses, page-faults, minor-faults, major-faults, "
			 "context-switches, cpu-migrations)",
			 c->spec.name);
		return -ENOENT;
	}
	attr_of(c, &a);
	a.inherit = 0;
	a.disabled = 1;
	fd = gs_perf_open(&a, 0, -1, -1, 0);
	if (fd >= 0) {
		/* kept (disabled) until the end: closing an event can wait for an RCU grace period */
		gs_evlist_keep(el, fd);
		return 0;
	}
	if (is_hardware(c->def) && (fd == -ENOENT || fd == -EOPNOTSUPP || fd == -ENODEV) && !have_pmu()) {
		snprintf(why, whylen,
			 "event %s cannot be counted: this machine exposes no hardware performance counters (no CPU "
			 "PMU under /sys/bus/event_source/devices, as in most virtual machines)",
			 c->spec.name);
		return fd;
	}
	snprintf(what, sizeof(what), "event %s", c->spec.name);
	gs_perf_strerror(fd, what, why, whylen);
	return fd;
}

static void describe(const struct gs_emit *emit, int i, const struct counter *c, const char *unavailable)
{
	char key[64];
	snprintf(key, sizeof(key), "counter.%d.name", i);
	gs_emit_meta(emit, 0, key, c->spec.name);
	if (c->def) {
		snprintf(key, sizeof(key), "counter.%d.hardware", i);
		gs_emit_meta_u64(emit, 0, key, (uint64_t)is_hardware(c->def));
	}
	if (unavailable) {
		snprintf(key, sizeof(key), "counter.%d.unavailable", i);
		gs_emit_meta(emit, 0, key, unavailable);
		return;
	}
	snprintf(key, sizeof(key), "counter.%d.period", i);
	gs_emit_meta_u64(emit, 0, key, c->period);
	snprintf(key, sizeof(key), "counter.%d.stacks", i);
	gs_emit_meta_u64(emit, 0, key, (uint64_t)c->spec.stacks);
}

/* Two software events of the same kind on one task make the kernel write the second one's
 * samples with the first one's id (the sample data is shared between them: seen on 6.18, a
 * page-faults/64 event beside page-faults made 1 in 64 page faults look like the other's). So an
 * event is opened once: an event asked twice is refused, and --sample-event on a software event
 * that -e also counts rides on it (every `every`-th of its samples, one event in the kernel). */
static const char *pair_up(struct gs_counters *cs, int i)
{
	struct counter *c = &cs->c[i];
	for (int k = 0; k < i; k++) {
		struct counter *o = &cs->c[k];
		if (!o->available || o->def != c->def)
			continue;
		if (o->spec.stacks == c->spec.stacks || o->rides >= 0 || o->stacks_by >= 0)
			return "it is given twice";
		if (!is_hardware(c->def)) {
			struct counter *cnt = c->spec.stacks ? o : c, *stk = c->spec.stacks ? c : o;
			cnt->stacks_by = (int)(stk - cs->c);
			stk->rides = (int)(cnt - cs->c);
			cnt->every = stk->period / cnt->period ? stk->period / cnt->period : 1;
		}
	}
	return NULL;
}

struct gs_counters *gs_counters_new(const struct gs_counter_spec *specs, int n, struct gs_evlist *el,
				    const struct gs_emit *emit)
{
	struct gs_counters *cs;
	if (n <= 0)
		return NULL;
	cs = gs_calloc(1, sizeof(*cs));
	cs->el = el;
	cs->n = n > GS_COUNTERS_MAX ? GS_COUNTERS_MAX : n;
	for (int i = 0; i < cs->n; i++) {
		struct counter *c = &cs->c[i];
		char why[512];
		const char *twice;
		c->spec = specs[i];
		c->def = find_event(c->spec.name);
		c->period = c->spec.period ? c->spec.period : c->def ? c->def->period : 1;
		c->rides = c->stacks_by = -1;
		c->every = 1;
		if (c->def && (twice = pair_up(cs, i)) != NULL) {
			snprintf(why, sizeof(why), "event %s: %s", c->spec.name, twice);
			gs_warn("%s; the second is not recorded", why);
			describe(emit, i, c, why);
			continue;
		}
		if (probe(c, el, why, sizeof(why)) < 0) {
			gs_warn("%s; %s not recorded (the other events are)", why,
				c->spec.stacks ? "its stacks are" : "it is");
			describe(emit, i, c, why);
			continue;
		}
		c->available = 1;
		describe(emit, i, c, NULL);
	}
	return cs;
}

int gs_counters_follow(struct gs_counters *cs, pid_t tid)
{
	int failed = 0;
	for (int i = 0; cs && i < cs->n; i++) {
		struct counter *c = &cs->c[i];
		struct perf_event_attr a;
		char why[512], what[96];
		if (!c->available || c->rides >= 0)
			continue;
		attr_of(c, &a);
		snprintf(what, sizeof(what), "event %s", c->spec.name);
		if (gs_evlist_open(cs->el, &a, tid, GS_PK_COUNTER + i, what, why, sizeof(why)) < 0) {
			if (!c->follow_failed)
				gs_warn("%s: not counted for task %d (nor for later ones it fails for)", why, (int)tid);
			c->follow_failed = 1;
			failed++;
		}
	}
	return failed;
}

uint64_t gs_counters_period(const struct gs_counters *cs, int n)
{
	return cs && n >= 0 && n < cs->n ? cs->c[n].period : 1;
}

int gs_counters_stack_for(struct gs_counters *cs, int n)
{
	struct counter *c;
	if (!cs || n < 0 || n >= cs->n)
		return -1;
	c = &cs->c[n];
	if (c->spec.stacks)
		return n;
	if (c->stacks_by >= 0 && ++c->seen % c->every == 0)
		return c->stacks_by;
	return -1;
}

int gs_counters_have_stacks(const struct gs_counters *cs)
{
	for (int i = 0; cs && i < cs->n; i++)
		if (cs->c[i].available && cs->c[i].spec.stacks)
			return 1;
	return 0;
}

int gs_counters_takes_stacks(const struct gs_counters *cs, int n)
{
	return cs && n >= 0 && n < cs->n && cs->c[n].spec.stacks;
}

void gs_counters_free(struct gs_counters *cs) { free(cs); }
