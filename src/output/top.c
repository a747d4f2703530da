/* top.c - one screen of `gilscope top` (top.h). */
#define _GNU_SOURCE
#include "output/top.h"
#include "base/escape.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

const char *const gs_top_sort_names[GS_TOP_NSORT] = {
	"HELD%", "WAIT%", "NOGIL", "SLEEP", "RUNQ%", "ACQ/s", "FRC/s", "MAXWT", "TID", "NAME",
};

struct row {
	const struct gs_live_thread *t;
	double v[GS_TOP_NSORT - 2]; /* the shares (0..100), per second rates, longest wait (ns) */
};

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct row *a = pa, *b = pb;
	enum gs_top_sort sort_key = *(const enum gs_top_sort *)arg;
	int c = 0;
	if (sort_key == GS_TOP_NAME)
		c = strcmp(a->t->name, b->t->name);
	else if (sort_key != GS_TOP_TID)
		c = (a->v[sort_key] < b->v[sort_key]) - (a->v[sort_key] > b->v[sort_key]);
	if (!c)
		c = (a->t->pid > b->t->pid) - (a->t->pid < b->t->pid);
	if (!c)
		c = (a->t->tid > b->t->tid) - (a->t->tid < b->t->tid);
	return c;
}

/* Writes line as at most cols columns (one per code point; the names are escaped) and a newline. */
static void put_line(FILE *out, const char *line, int cols)
{
	size_t i = 0, len = strlen(line);
	int n = 0;
	while (i < len && n < cols) {
		uint32_t cp;
		size_t k = gs_utf8_next((const unsigned char *)line + i, len - i, &cp);
		i += k ? k : 1;
		n++;
	}
	fprintf(out, "%.*s\n", (int)i, line);
}

/* At most 6 columns: 999us, 99.9ms, 999ms, 9.99s, 99.9s, 9999s. */
static void duration(char *buf, size_t len, uint64_t ns)
{
	if (!ns)
		snprintf(buf, len, "-");
	else if (ns < 999500)
		snprintf(buf, len, "%.0fus", (double)ns / 1e3);
	else if (ns < 99950000)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else if (ns < 999500000)
		snprintf(buf, len, "%.0fms", (double)ns / 1e6);
	else if (ns < 9995000000ull)
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
	else if (ns < 99950000000ull)
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	else
		snprintf(buf, len, "%.0fs", (double)ns / 1e9);
}

static const struct gs_live_thread *prev_thread(const struct gs_live_snap *prev, const struct gs_live_thread *t)
{
	for (size_t i = 0; prev && i < prev->nthreads; i++)
		if (prev->threads[i].tid == t->tid && prev->threads[i].pid == t->pid &&
		    prev->threads[i].first_ns == t->first_ns)
			return &prev->threads[i];
	return NULL;
}

static double share(uint64_t now, uint64_t before, uint64_t dt)
{
	double s = now > before ? 100.0 * (double)(now - before) / (double)dt : 0;
	return s > 100 ? 100 : s;
}

static void fill_row(struct row *r, const struct gs_live_thread *t, const struct gs_live_thread *p, uint64_t dt)
{
	static const struct gs_live_thread zero;
	if (!p)
		p = &zero;
	r->t = t;
	r->v[GS_TOP_HELD] = share(t->held_ns, p->held_ns, dt);
	r->v[GS_TOP_WAIT] = share(t->wait_ns, p->wait_ns, dt);
	r->v[GS_TOP_NOGIL] = share(t->nogil_ns, p->nogil_ns, dt);
	r->v[GS_TOP_SLEEP] = share(t->sleep_ns, p->sleep_ns, dt);
	r->v[GS_TOP_RUNQ] = share(t->runnable_ns, p->runnable_ns, dt);
	r->v[GS_TOP_ACQ] = (double)(t->acquisitions - p->acquisitions) * 1e9 / (double)dt;
	r->v[GS_TOP_FORCED] = (double)(t->forced_drops - p->forced_drops) * 1e9 / (double)dt;
	r->v[GS_TOP_MAXWAIT] =
		(double)(t->waiting_ns > t->interval_wait_max_ns ? t->waiting_ns : t->interval_wait_max_ns);
}

/* One line per Python process: its GILs' use over the interval. Returns the lines written. */
static int process_lines(FILE *out, const struct gs_live_snap *prev, const struct gs_live_snap *cur, uint64_t dt,
			 int cols)
{
	int n = 0;
	for (size_t i = 0; i < cur->nprocs; i++) {
		const struct gs_live_proc *p = &cur->procs[i];
		uint64_t held = 0, cont = 0;
		int waiters = 0, gils = 0;
		char name[256], line[512];
		if (!p->is_python)
			continue;
		for (size_t g = 0; g < cur->ngils; g++) {
			const struct gs_live_gil *c = &cur->gils[g];
			if (c->pid != p->pid)
				continue;
			gils++;
			held += c->held_ns;
			cont += c->contended_ns;
			waiters += c->waiters;
			for (size_t k = 0; prev && k < prev->ngils; k++)
				if (prev->gils[k].pid == c->pid && prev->gils[k].number == c->number) {
					held -= prev->gils[k].held_ns < c->held_ns ? prev->gils[k].held_ns : c->held_ns;
					cont -= prev->gils[k].contended_ns < c->contended_ns
							? prev->gils[k].contended_ns
							: c->contended_ns;
				}
		}
		gs_esc_term_cell(name, sizeof(name), p->name, 0, 40, NULL);
		snprintf(line, sizeof(line), "PID %u %s%s: GIL %.1f%% used, %.1f%% contended, %d waiting%s", p->pid,
			 name, p->exited ? " (exited)" : "", share(held, 0, dt) / (gils > 1 ? gils : 1),
			 share(cont, 0, dt), waiters, gils > 1 ? " (all its GILs)" : "");
		put_line(out, line, cols);
		n++;
	}
	return n;
}

static struct row *rows_of(const struct gs_live_snap *prev, const struct gs_live_snap *cur, uint64_t dt, int *n)
{
	struct row *rows = gs_calloc(cur->nthreads ? cur->nthreads : 1, sizeof(*rows));
	*n = 0;
	for (size_t i = 0; i < cur->nthreads; i++) {
		const struct gs_live_thread *t = &cur->threads[i];
		int python = 0;
		for (size_t k = 0; k < cur->nprocs; k++)
			if (cur->procs[k].pid == t->pid)
				python = cur->procs[k].is_python;
		if (t->tid && python)
			fill_row(&rows[(*n)++], t, prev_thread(prev, t), dt);
	}
	return rows;
}

int gs_top_render(FILE *out, const struct gs_live_snap *prev, const struct gs_live_snap *cur, struct gs_top_view *v)
{
	uint64_t from = prev && prev->last_ns ? prev->last_ns : cur->start_ns;
	uint64_t dt = cur->last_ns > from ? cur->last_ns - from : 1;
	char line[1024], lost[64] = "";
	int n, used, avail;
	struct row *rows;

	if (cur->lost_events)
		snprintf(lost, sizeof(lost), ", %llu events lost", (unsigned long long)cur->lost_events);
	snprintf(line, sizeof(line), "gilscope top: every %.1fs, sorted by %s%s%s%s", v->interval_s,
		 gs_top_sort_names[v->sort], v->paused ? ", PAUSED" : "", cur->closed ? ", recording ended" : "", lost);
	put_line(out, line, v->cols);
	used = 1 + process_lines(out, prev, cur, dt, v->cols);
	snprintf(line, sizeof(line), "%7s %-12s %5s %5s %5s %5s %5s %5s %5s %6s %s", "TID", "NAME", "HELD%", "WAIT%",
		 "NOGIL", "SLEEP", "RUNQ%", "ACQ/s", "FRC/s", "MAXWT", "WAIT SITE");
	put_line(out, line, v->cols);
	used++;
	rows = rows_of(prev, cur, dt, &n);
	qsort_r(rows, (size_t)n, sizeof(*rows), cmp_rows, &v->sort);
	avail = v->rows > 0 ? v->rows - used : n;
	if (avail < 0)
		avail = 0;
	if (v->scroll > n - avail)
		v->scroll = n - avail;
	if (v->scroll < 0)
		v->scroll = 0;
	for (int i = v->scroll; i < n && i < v->scroll + avail; i++) {
		const struct row *r = &rows[i];
		char name[128], wait[32], site[4 * GS_LIVE_SITE_MAX + 8];
		int w;
		gs_esc_term_cell(name, sizeof(name), r->t->name, 12, 12, NULL);
		duration(wait, sizeof(wait), (uint64_t)r->v[GS_TOP_MAXWAIT]);
		w = snprintf(line, sizeof(line), "%7u %s %5.1f %5.1f %5.1f %5.1f %5.1f %5.0f %5.0f %6s ", r->t->tid,
			     name, r->v[GS_TOP_HELD], r->v[GS_TOP_WAIT], r->v[GS_TOP_NOGIL], r->v[GS_TOP_SLEEP],
			     r->v[GS_TOP_RUNQ], r->v[GS_TOP_ACQ], r->v[GS_TOP_FORCED], wait);
		/* the wait site takes what is left of the line (cut in the middle), at least 8 columns */
		gs_esc_term_cell(site, sizeof(site), r->t->wait_site[0] ? r->t->wait_site : "-", 0,
				 v->cols - w > 8 ? (size_t)(v->cols - w) : 8, NULL);
		snprintf(line + w, sizeof(line) - (size_t)w, "%s%s", r->t->exited ? "exited " : "", site);
		put_line(out, line, v->cols);
	}
	free(rows);
	return n;
}
