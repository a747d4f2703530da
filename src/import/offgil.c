/* offgil.c - off-GIL folded stacks from perf script text. A thread's off-CPU interval runs from
 * its sched_switch (prev_state S or D) to its wakeup or next switch-in; the switch-out call chain
 * (innermost first in perf's output) says where it slept: in take_gil, it waited for the GIL. */
#define _GNU_SOURCE
#include "import/offgil.h"
#include "import/perfscript.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

struct stackcount {
	char *key;
	uint64_t us;
};

struct table {
	struct stackcount *v;
	size_t cap, n;
};

static void add(struct table *t, const char *key, uint64_t us)
{
	size_t i;
	if ((t->n + 1) * 2 > t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct stackcount *nv = gs_calloc(ncap, sizeof(*nv));
		for (size_t k = 0; k < t->cap; k++)
			if (t->v[k].key) {
				size_t j = gs_fnv1a(GS_FNV1A_INIT, t->v[k].key) & (ncap - 1);
				while (nv[j].key)
					j = (j + 1) & (ncap - 1);
				nv[j] = t->v[k];
			}
		free(t->v);
		t->v = nv;
		t->cap = ncap;
	}
	i = gs_fnv1a(GS_FNV1A_INIT, key) & (t->cap - 1);
	while (t->v[i].key && strcmp(t->v[i].key, key) != 0)
		i = (i + 1) & (t->cap - 1);
	if (!t->v[i].key) {
		t->v[i].key = gs_strdup(key);
		t->n++;
	}
	t->v[i].us += us;
}

struct pending_sleep {
	uint64_t time;
	char *stack; /* folded, root first */
};

struct sleepers {
	uint32_t *tid;
	struct pending_sleep *s;
	size_t n, cap;
};

static struct pending_sleep *sleeper(struct sleepers *z, uint32_t tid, int create)
{
	for (size_t i = 0; i < z->n; i++)
		if (z->tid[i] == tid)
			return &z->s[i];
	if (!create)
		return NULL;
	if (z->n == z->cap) {
		z->cap = z->cap ? z->cap * 2 : 64;
		z->tid = gs_realloc_array(z->tid, z->cap, sizeof(uint32_t));
		z->s = gs_realloc_array(z->s, z->cap, sizeof(*z->s));
	}
	z->tid[z->n] = tid;
	memset(&z->s[z->n], 0, sizeof(z->s[0]));
	return &z->s[z->n++];
}

/* "\t  addr symbol+0xoff (dso)" -> "symbol" */
static size_t frame_symbol(const char *line, char *out, size_t len)
{
	const char *p = line, *e;
	size_t n;
	while (*p == '\t' || *p == ' ')
		p++;
	while (*p && *p != ' ')
		p++; /* the address */
	while (*p == ' ')
		p++;
	e = p;
	while (*e && *e != ' ' && *e != '\n')
		e++;
	n = (size_t)(e - p);
	for (size_t k = 0; k + 1 < n; k++)
		if (p[k] == '+' && p[k + 1] == '0') {
			n = k;
			break;
		}
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	for (char *q = out; *q; q++)
		if (*q == ';')
			*q = ',';
	return n;
}

long gs_offgil_perf(FILE *in, FILE *out, const struct gs_offgil_opts *o, char *why, size_t whylen)
{
	struct table tab = { 0 };
	struct sleepers z = { 0 };
	char *line = NULL, **frames = NULL;
	size_t cap = 0, nf = 0, capf = 0;
	ssize_t len;
	struct gs_perfline hdr;
	char *hdrline = NULL;
	int have = 0;
	long written = 0;
	uint64_t events = 0;

	for (;;) {
		len = getline(&line, &cap, in);
		if (len > 0 && (line[0] == '\t' || (line[0] == ' ' && have && line[strspn(line, " ")] != '\0' &&
						    strchr("0123456789abcdef", line[strspn(line, " ")]) &&
						    gs_perfline_parse(line, &hdr) < 0))) {
			char sym[512];
			if (!have)
				continue;
			frame_symbol(line, sym, sizeof(sym));
			if (nf == capf) {
				capf = capf ? capf * 2 : 64;
				frames = gs_realloc_array(frames, capf, sizeof(char *));
			}
			frames[nf++] = gs_strdup(sym);
			continue;
		}
		/* a header or the end: the previous event is complete */
		if (have) {
			struct gs_perfline l;
			if (gs_perfline_parse(hdrline, &l) == 0) {
				size_t evlen = l.event_len;
				int is_switch = evlen == 18 && !memcmp(l.event, "sched:sched_switch", 18);
				int is_wake = (evlen == 18 && !memcmp(l.event, "sched:sched_wakeup", 18)) ||
					      (evlen == 18 && !memcmp(l.event, "sched:sched_waking", 18));
				events++;
				if (is_switch) {
					const char *ps = strstr(l.rest, "prev_state="),
						   *pp = strstr(l.rest, "prev_pid=");
					const char *np = strstr(l.rest, "next_pid=");
					uint32_t prev = pp ? (uint32_t)strtoul(pp + 9, NULL, 10) : 0;
					uint32_t next = np ? (uint32_t)strtoul(np + 9, NULL, 10) : 0;
					struct pending_sleep *s;
					if (next && (s = sleeper(&z, next, 0)) && s->stack) {
						add(&tab, s->stack, (l.time_ns - s->time) / 1000);
						free(s->stack);
						s->stack = NULL;
					}
					if (prev && ps && (ps[11] == 'S' || ps[11] == 'D')) {
						/* where it sleeps: in take_gil? */
						size_t at = nf, k, o2 = 0, total = 0;
						char *st;
						for (k = 0; k < nf; k++)
							if (strstr(frames[k], "take_gil")) {
								at = k;
								break;
							}
						if (o->all_sleep || at < nf) {
							size_t from = (o->strip_take_gil && at < nf) ? at : 0;
							for (k = from; k < nf; k++)
								total += strlen(frames[k]) + 1;
							st = gs_malloc(total + 16);
							for (k = nf; k-- > from;) {
								size_t fl;
								if (!o->keep_evals &&
								    strstr(frames[k], "_PyEval_EvalFrame"))
									continue;
								fl = strlen(frames[k]);
								memcpy(st + o2, frames[k], fl);
								o2 += fl;
								st[o2++] = ';';
							}
							if (o2)
								o2--;
							st[o2] = '\0';
							s = sleeper(&z, prev, 1);
							free(s->stack);
							s->stack = st;
							s->time = l.time_ns;
						}
					}
				} else if (is_wake) {
					const char *pp = strstr(l.rest, " pid=");
					uint32_t pid = pp ? (uint32_t)strtoul(pp + 5, NULL, 10) : 0;
					struct pending_sleep *s = pid ? sleeper(&z, pid, 0) : NULL;
					if (s && s->stack) {
						add(&tab, s->stack, (l.time_ns - s->time) / 1000);
						free(s->stack);
						s->stack = NULL;
					}
				}
			}
			for (size_t k = 0; k < nf; k++)
				free(frames[k]);
			nf = 0;
			have = 0;
		}
		if (len <= 0)
			break;
		if (line[0] == '\n')
			continue;
		free(hdrline);
		hdrline = gs_strdup(line);
		have = 1;
	}
	for (size_t i = 0; i < tab.cap; i++)
		if (tab.v[i].key) {
			if (tab.v[i].us)
				fprintf(out, "%s %llu\n", tab.v[i].key, (unsigned long long)tab.v[i].us);
			written++;
			free(tab.v[i].key);
		}
	for (size_t i = 0; i < z.n; i++)
		free(z.s[i].stack);
	free(tab.v);
	free(z.tid);
	free(z.s);
	free(frames);
	free(line);
	free(hdrline);
	if (!events) {
		snprintf(why, whylen,
			 "no events in the input: give `perf script` text of sched tracepoints recorded with "
			 "--call-graph");
		return -1;
	}
	return written;
}
