/* perfscript.c - `perf script` text reader. Lines are cut with small cursor functions (no
 * sscanf): the timestamp "SSSS.UUUUUU[UUU]:" anchors the header; before it come the comm (which
 * may contain spaces), "pid/tid" or "tid", and an optional "[cpu]"; after it an optional
 * counter period and the event name ending in ':'. A malformed line is skipped and counted. */
#define _GNU_SOURCE
#include "import/perfscript.h"
#include "analysis/analysis.h"
#include "base/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int isdig(char c) { return c >= '0' && c <= '9'; }

/* Finds " DIGITS.DIGITS: " and returns the position of the first digit, or NULL. */
static const char *find_time(const char *line, uint64_t *ns)
{
	for (const char *p = line; (p = strchr(p, '.')); p++) {
		const char *s = p, *e = p + 1;
		uint64_t sec = 0, frac = 0;
		int fd = 0;
		while (s > line && isdig(s[-1]))
			s--;
		if (s == p || (s > line && s[-1] != ' '))
			continue;
		while (isdig(*e) && fd < 9) {
			frac = frac * 10 + (uint64_t)(*e - '0');
			e++;
			fd++;
		}
		if (fd < 6 || *e != ':' || (e[1] != ' ' && e[1] != '\0'))
			continue;
		for (const char *q = s; q < p; q++) {
			if (sec > 1000000000000ull)
				return NULL;
			sec = sec * 10 + (uint64_t)(*q - '0');
		}
		while (fd++ < 9)
			frac *= 10;
		*ns = sec * 1000000000ull + frac;
		return s;
	}
	return NULL;
}

int gs_perfline_parse(const char *line, struct gs_perfline *o)
{
	const char *t, *p, *end;
	uint64_t v;

	memset(o, 0, sizeof(*o));
	o->cpu = -1;
	if (line[0] == '\t' || line[0] == '#')
		return -1;
	t = find_time(line, &o->time_ns);
	if (!t)
		return -1;
	/* backwards from the timestamp: [cpu] then pid/tid or tid, then comm */
	end = t;
	while (end > line && end[-1] == ' ')
		end--;
	if (end > line && end[-1] == ']') {
		const char *b = end - 1;
		while (b > line && b[-1] != '[')
			b--;
		if (b == line)
			return -1;
		v = 0;
		for (const char *q = b; q < end - 1; q++) {
			if (!isdig(*q))
				return -1;
			v = v * 10 + (uint64_t)(*q - '0');
		}
		o->cpu = (int)v;
		end = b - 1;
		while (end > line && end[-1] == ' ')
			end--;
	}
	p = end;
	while (p > line && (isdig(p[-1]) || p[-1] == '/'))
		p--;
	if (p == end || (p > line && p[-1] != ' '))
		return -1;
	{
		uint64_t a = 0, b = 0;
		int slash = 0;
		for (const char *q = p; q < end; q++) {
			if (*q == '/') {
				if (slash++)
					return -1;
				continue;
			}
			if (slash)
				b = b * 10 + (uint64_t)(*q - '0');
			else
				a = a * 10 + (uint64_t)(*q - '0');
			if (a > 0x7fffffff || b > 0x7fffffff)
				return -1;
		}
		if (slash) {
			o->pid = (uint32_t)a;
			o->tid = (uint32_t)b;
		} else {
			o->tid = (uint32_t)a;
		}
	}
	while (p > line && p[-1] == ' ')
		p--;
	o->comm = line;
	while (*o->comm == ' ')
		o->comm++;
	o->comm_len = p > o->comm ? (size_t)(p - o->comm) : 0;
	/* forwards from the timestamp: "TIME:" [period] "event:" rest */
	p = strchr(t, ':') + 1;
	while (*p == ' ')
		p++;
	if (isdig(*p)) {
		const char *q = p;
		v = 0;
		while (isdig(*q))
			v = v * 10 + (uint64_t)(*q++ - '0');
		if (*q == ' ') {
			o->period = v;
			p = q;
			while (*p == ' ')
				p++;
		}
	}
	o->event = p;
	while (*p && *p != ' ' && *p != '\n')
		p++;
	if (p == o->event || p[-1] != ':')
		return -1;
	o->event_len = (size_t)(p - o->event) - 1;
	while (*p == ' ')
		p++;
	o->rest = p;
	return 0;
}

static int event_is(const struct gs_perfline *l, const char *name)
{
	size_t n = strlen(name);
	return l->event_len == n && memcmp(l->event, name, n) == 0;
}

/* "key=value" in the tracepoint text: returns the value's start, NULL if absent. */
static const char *field(const char *rest, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = rest; (p = strstr(p, key)); p += n)
		if ((p == rest || p[-1] == ' ') && p[n] == '=')
			return p + n + 1;
	return NULL;
}

static int64_t num(const char *v)
{
	int64_t x = 0;
	int neg = 0;
	if (!v)
		return -1;
	if (*v == '-') {
		neg = 1;
		v++;
	}
	if (!isdig(*v))
		return -1;
	while (isdig(*v) && x < 0x7fffffff)
		x = x * 10 + (*v++ - '0');
	return neg ? -x : x;
}

/* sched_switch prev_state letters as the kernel prints them -> the numeric form gilscope keeps */
static uint64_t state_code(const char *v)
{
	if (!v)
		return 1;
	if (*v == 'R')
		return 0x100; /* still runnable: preempted */
	if (*v == 'D')
		return 2;
	if (*v == 'S' || *v == 'I')
		return 1;
	if (*v == 'T' || *v == 't')
		return 4;
	return 1;
}

/* "comm:pid [prio]" -> pid (the comm may itself contain ':'), -1 if absent */
static int64_t old_pid(const char *s)
{
	const char *b = strstr(s, " ["), *c;
	if (!b)
		return -1;
	for (c = b; c > s && c[-1] != ':'; c--)
		if (!isdig(c[-1]))
			return -1;
	if (c == b || c == s)
		return -1;
	return num(c);
}

/* "prev_comm:prev_pid [prio] S ==> next_comm:next_pid [prio]" */
static int old_switch(const char *rest, int64_t *prev, int64_t *next, char state[4])
{
	const char *arrow = strstr(rest, " ==> "), *p;
	size_t n = 0;
	if (!arrow)
		return -1;
	p = arrow;
	while (p > rest && p[-1] != ' ')
		p--;
	while (p + n < arrow && n < 3) {
		state[n] = p[n];
		n++;
	}
	state[n] = '\0';
	*prev = old_pid(rest);
	*next = old_pid(arrow + 5);
	return *prev >= 0 && *next >= 0 ? 0 : -1;
}

struct conv {
	const struct gs_recsink *s;
	uint8_t *named; /* tid -> its name was recorded */
	uint32_t *tgid; /* tid -> pid, learnt from pid/tid columns and fork events */
	size_t cap;
	uint32_t default_pid;
	int python_declared;
	int err; /* the first error of the sink: the conversion stops */
};

static void put(struct conv *c, const struct gs_rec *r, const void *payload, size_t plen)
{
	int err = c->err ? 0 : c->s->add(c->s->ctx, r, payload, plen);
	if (err < 0)
		c->err = err;
}

int gs_recsink_meta(const struct gs_recsink *sink, uint32_t pid, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value);
	struct gs_rec r = { .type = GS_REC_META, .pid = pid };
	char *p;
	int err;
	if (kl + vl + 2 > 0xf000)
		vl = 0xf000 - kl - 2;
	p = gs_malloc(kl + vl + 2);
	memcpy(p, key, kl + 1);
	memcpy(p + kl + 1, value, vl);
	p[kl + 1 + vl] = '\0';
	err = sink->add(sink->ctx, &r, p, kl + vl + 2);
	free(p);
	return err;
}

static void meta(struct conv *c, uint32_t pid, const char *key, const char *value)
{
	int err = c->err ? 0 : gs_recsink_meta(c->s, pid, key, value);
	if (err < 0)
		c->err = err;
}

void gs_perf2trace_feed(struct gs_analysis *a, const struct gs_rec *r, const void *payload, size_t plen)
{
	uint64_t buf[64]; /* names of events and tasks, the facts perf2trace writes: under 512 bytes */
	size_t padded = (plen + 7) & ~(size_t)7;
	struct gs_rec h = *r;
	void *p = NULL;

	if (sizeof(h) + padded > 0xfff8)
		return;
	h.size = (uint16_t)(sizeof(h) + padded);
	if (padded) {
		p = padded <= sizeof(buf) ? (void *)buf : gs_malloc(padded);
		memcpy(p, payload, plen);
		memset((char *)p + plen, 0, padded - plen);
		((char *)p)[padded - 1] = '\0';
	}
	gs_analysis_feed(a, &h, p, padded);
	if (p != (void *)buf)
		free(p);
}

static uint32_t pid_of(struct conv *c, uint32_t tid)
{
	if (tid < c->cap && c->tgid[tid])
		return c->tgid[tid];
	return c->default_pid ? c->default_pid : tid;
}

static void learn(struct conv *c, uint32_t tid, uint32_t pid)
{
	if (!tid || !pid || tid > 0x3fffff)
		return;
	if (tid >= c->cap) {
		size_t ncap = c->cap ? c->cap : 4096;
		while (ncap <= tid)
			ncap *= 2;
		c->tgid = gs_realloc_array(c->tgid, ncap, sizeof(uint32_t));
		memset(c->tgid + c->cap, 0, (ncap - c->cap) * sizeof(uint32_t));
		c->named = gs_realloc_array(c->named, ncap, 1);
		memset(c->named + c->cap, 0, ncap - c->cap);
		c->cap = ncap;
	}
	c->tgid[tid] = pid;
}

static void rec(struct conv *c, uint16_t type, uint32_t tid, uint64_t time, int32_t arg, uint64_t arg64,
		const char *name)
{
	struct gs_rec r = { .type = type, .pid = pid_of(c, tid), .tid = tid, .time = time, .arg = arg, .arg64 = arg64 };
	if (!c->python_declared && (type == GS_REC_GIL_WAIT || type == GS_REC_GIL_WRITE)) {
		/* perf text says nothing about the interpreter: declare the process CPython */
		meta(c, r.pid, "python.version", "?");
		meta(c, r.pid, "python.path", "(from perf script text)");
		meta(c, r.pid, "mechanism", "perf-probed take_gil/drop_gil (per4m's probes)");
		c->python_declared = 1;
	}
	put(c, &r, name, name ? strlen(name) + 1 : 0);
}

/* Lines from a big buffer (getline costs a sixth of the conversion). The returned line is NUL
 * terminated, keeps its '\n', and lives until the next call. */
struct linereader {
	FILE *in;
	char *buf;
	size_t cap, start, end;
	int eof;
};

static ssize_t next_line(struct linereader *r, char **line)
{
	for (;;) {
		char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;
		if (nl) {
			size_t len = (size_t)(nl - (r->buf + r->start)) + 1;
			char *l = r->buf + r->start;
			r->start += len;
			*nl = '\0'; /* the line ends there: no copy */
			*line = l;
			return (ssize_t)len;
		}
		if (r->eof) {
			if (r->end > r->start) {
				size_t len = r->end - r->start;
				*line = r->buf + r->start;
				r->buf[r->end] = '\0';
				r->start = r->end;
				return (ssize_t)len;
			}
			return -1;
		}
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end + 65536 + 2 > r->cap) {
			r->cap = r->cap ? r->cap * 2 : (1u << 20);
			r->buf = gs_realloc_array(r->buf, r->cap, 1);
		}
		{
			size_t n = fread(r->buf + r->end, 1, r->cap - r->end - 2, r->in);
			if (n == 0)
				r->eof = 1;
			r->end += n;
		}
	}
}

int gs_perf2trace(FILE *in, const char *mode, const struct gs_recsink *sink, struct gs_perf2trace_stats *st)
{
	struct conv c = { .s = sink };
	struct linereader lr = { .in = in };
	char *line, *raw;
	ssize_t n;
	int gil = strcmp(mode, "gil") == 0;
	uint64_t first = 0, last = 0;
	char comm[16];

	memset(st, 0, sizeof(*st));
	while (!c.err && (n = next_line(&lr, &raw)) > 0) {
		struct gs_perfline l;
		st->lines++;
		st->bytes += (uint64_t)n;
		if (raw[0] == '\t' || raw[0] == '\0')
			continue; /* call-chain lines and blank separators: the bulk of dwarf recordings */
		line = raw;
		if (gs_perfline_parse(line, &l) < 0) {
			/* indented call-chain lines ("  7f12 sym (dso)") are not headers; anything else is garbage */
			size_t sp = strspn(line, " ");
			if (!(sp >= 2 && line[sp] && strchr("0123456789abcdef", line[sp])))
				st->skipped++;
			continue;
		}
		if (!first && l.time_ns) {
			first = l.time_ns;
			if (sink->start)
				sink->start(sink->ctx, first);
		}
		last = l.time_ns;
		if (l.pid)
			learn(&c, l.tid, l.pid);
		else if (!c.default_pid)
			c.default_pid = l.tid; /* no tgid column: the first thread's id stands for the process */
		{
			size_t cl = l.comm_len < 15 ? l.comm_len : 15;
			memcpy(comm, l.comm, cl);
			comm[cl] = '\0';
		}
		if (l.period && !(l.event_len > 6 && !memcmp(l.event, "sched:", 6)) &&
		    !(l.event_len > 7 && !memcmp(l.event, "python:", 7))) {
			/* a counter sample: "  1000000 cycles:u:" */
			char ev[128];
			size_t el = l.event_len < sizeof(ev) - 1 ? l.event_len : sizeof(ev) - 1;
			memcpy(ev, l.event, el);
			ev[el] = '\0';
			rec(&c, GS_REC_COUNTER, l.tid, l.time_ns, 0, l.period, ev);
			st->events++;
			continue;
		}
		if (gil) {
			if (event_is(&l, "python:take_gil"))
				rec(&c, GS_REC_GIL_WAIT, l.tid, l.time_ns, 0, 0, NULL);
			else if (event_is(&l, "python:take_gil__return"))
				rec(&c, GS_REC_GIL_WRITE, l.tid, l.time_ns, 1, 0, NULL);
			else if (event_is(&l, "python:drop_gil"))
				rec(&c, GS_REC_GIL_WRITE, l.tid, l.time_ns, 0, 0, NULL);
			else if (event_is(&l, "python:drop_gil__return"))
				; /* a hold ends at drop_gil's entry: a forced drop waits inside drop_gil */
			else {
				st->skipped++;
				continue;
			}
		} else {
			if (event_is(&l, "sched:sched_switch")) {
				const char *ps = field(l.rest, "prev_state"), *np = field(l.rest, "next_pid");
				int64_t prev = num(field(l.rest, "prev_pid")), next = num(np);
				char oldstate[4];
				if (prev < 0 && old_switch(l.rest, &prev, &next, oldstate) == 0)
					ps = oldstate; /* the older "comm:pid [prio] S ==> comm:pid [prio]" format */
				if (prev < 0 || next < 0) {
					st->skipped++;
					continue;
				}
				if (prev)
					rec(&c, GS_REC_SWITCH_OUT, (uint32_t)prev, l.time_ns, 0, state_code(ps), NULL);
				if (next)
					rec(&c, GS_REC_SWITCH_IN, (uint32_t)next, l.time_ns, 0, 0, NULL);
			} else if (event_is(&l, "sched:sched_wakeup") || event_is(&l, "sched:sched_waking") ||
				   event_is(&l, "sched:sched_wakeup_new")) {
				int64_t pid = num(field(l.rest, "pid"));
				if (pid <= 0)
					pid = old_pid(l.rest); /* "comm:pid [prio] CPU:001" */
				if (pid <= 0) {
					st->skipped++;
					continue;
				}
				rec(&c, GS_REC_WAKEUP, (uint32_t)pid, l.time_ns, (int32_t)l.tid, 0, NULL);
			} else if (event_is(&l, "sched:sched_process_fork")) {
				int64_t parent = num(field(l.rest, "pid")), child = num(field(l.rest, "child_pid"));
				if (parent <= 0 || child <= 0) {
					st->skipped++;
					continue;
				}
				/* threads and processes look alike here: a child belongs to its parent's process */
				learn(&c, (uint32_t)child, pid_of(&c, (uint32_t)parent));
				{
					struct gs_rec r = { .type = GS_REC_FORK,
							    .pid = pid_of(&c, (uint32_t)child),
							    .tid = (uint32_t)child,
							    .time = l.time_ns,
							    .arg = (int32_t)pid_of(&c, (uint32_t)parent),
							    .arg64 = (uint64_t)parent };
					put(&c, &r, NULL, 0);
				}
			} else if (event_is(&l, "sched:sched_process_exit")) {
				int64_t pid = num(field(l.rest, "pid"));
				if (pid > 0)
					rec(&c, GS_REC_EXIT, (uint32_t)pid, l.time_ns, 0, 0, NULL);
			} else {
				st->skipped++;
				continue;
			}
		}
		learn(&c, l.tid, pid_of(&c, l.tid));
		if (comm[0] && l.tid && l.tid < c.cap && !c.named[l.tid]) {
			c.named[l.tid] = 1;
			rec(&c, GS_REC_COMM, l.tid, l.time_ns, 0, 0, comm);
		}
		st->events++;
	}
	free(lr.buf);
	free(c.tgid);
	free(c.named);
	st->first_ns = first;
	if (c.default_pid) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%u", c.default_pid);
		meta(&c, 0, "target_pid", buf);
	}
	{
		struct gs_rec r = { .type = GS_REC_END, .time = last };
		put(&c, &r, NULL, 0);
	}
	return c.err ? c.err : ferror(in) ? -EIO : 0;
}
