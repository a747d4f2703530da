/* tidmap.c - namespace thread ids to host ones (see tidmap.h). */
#define _GNU_SOURCE
#include "record/tidmap.h"
#include "base/procfs.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

#define ALIVE UINT64_MAX
#define SLACK_NS 1000000ull /* clock conversions may put an event this much before a birth */
#define MAX_LEVELS 32       /* PID namespaces nest at most 32 deep */
#define HASH_BITS 12

struct pair {
	uint32_t own, host;
	uint64_t birth, death;
	int next_own, next_host; /* hash chains, -1 ends */
};

struct proc {
	uint32_t pid;
	int foreign;
};

struct gs_tidmap {
	uint64_t self_ns;
	int active;
	struct pair *pairs;
	size_t npairs, cap_pairs;
	int by_own[1u << HASH_BITS], by_host[1u << HASH_BITS];
	struct proc *procs;
	size_t nprocs, cap_procs;
	uint64_t last_refresh, translated, unattributed;
};

static unsigned bucket(uint32_t id) { return (id * 2654435761u) >> (32 - HASH_BITS); }

struct gs_tidmap *gs_tidmap_new(void)
{
	struct gs_tidmap *m = gs_calloc(1, sizeof(*m));
	memset(m->by_own, 0xff, sizeof(m->by_own));
	memset(m->by_host, 0xff, sizeof(m->by_host));
	if (gs_proc_pidns(0, &m->self_ns) < 0)
		m->self_ns = 0; /* unknown: every process compares as foreign only if its own is known */
	return m;
}

void gs_tidmap_free(struct gs_tidmap *m)
{
	if (!m)
		return;
	free(m->pairs);
	free(m->procs);
	free(m);
}

void gs_tidmap_learn(struct gs_tidmap *m, uint32_t host, uint32_t own, uint64_t birth)
{
	struct pair *p;
	m->active = 1;
	for (int i = m->by_host[bucket(host)]; i >= 0; i = m->pairs[i].next_host) {
		p = &m->pairs[i];
		if (p->host != host || p->death != ALIVE)
			continue;
		if (p->own == own)
			return;   /* known */
		p->death = birth; /* the host id was reused: the old thread is gone */
	}
	if (m->npairs == m->cap_pairs) {
		m->cap_pairs = m->cap_pairs ? m->cap_pairs * 2 : 256;
		m->pairs = gs_realloc_array(m->pairs, m->cap_pairs, sizeof(*m->pairs));
	}
	p = &m->pairs[m->npairs];
	p->own = own;
	p->host = host;
	p->birth = birth;
	p->death = ALIVE;
	p->next_own = m->by_own[bucket(own)];
	p->next_host = m->by_host[bucket(host)];
	m->by_own[bucket(own)] = (int)m->npairs;
	m->by_host[bucket(host)] = (int)m->npairs;
	m->npairs++;
}

/* One thread's pair from its NSpid line (it may be gone already: then nothing is learnt). */
static void learn_task(struct gs_tidmap *m, uint32_t host, uint64_t birth)
{
	uint32_t ids[MAX_LEVELS];
	int n = gs_task_nspid((pid_t)host, ids, MAX_LEVELS);
	if (n >= 1 && ids[0] == host)
		gs_tidmap_learn(m, host, ids[n - 1], birth);
}

static void learn_process(struct gs_tidmap *m, uint32_t pid)
{
	pid_t *tids = NULL;
	int n = gs_task_list((pid_t)pid, &tids);
	for (int i = 0; i < n; i++)
		learn_task(m, (uint32_t)tids[i], 0);
	free(tids);
}

static void activate(struct gs_tidmap *m)
{
	if (m->active)
		return;
	m->active = 1;
	for (size_t i = 0; i < m->nprocs; i++)
		learn_process(m, m->procs[i].pid);
}

static int is_foreign(const struct gs_tidmap *m, uint32_t pid)
{
	uint64_t ns;
	return m->self_ns && gs_proc_pidns((pid_t)pid, &ns) == 0 && ns != m->self_ns;
}

/* A new process of the target: 1 when it is in another PID namespace. */
static int add_proc(struct gs_tidmap *m, uint32_t pid)
{
	int foreign = is_foreign(m, pid);
	if (m->nprocs == m->cap_procs) {
		m->cap_procs = m->cap_procs ? m->cap_procs * 2 : 16;
		m->procs = gs_realloc_array(m->procs, m->cap_procs, sizeof(*m->procs));
	}
	m->procs[m->nprocs].pid = pid;
	m->procs[m->nprocs].foreign = foreign;
	m->nprocs++;
	return foreign;
}

void gs_tidmap_add_process(struct gs_tidmap *m, pid_t pid)
{
	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid == (uint32_t)pid)
			return;
	if (add_proc(m, (uint32_t)pid))
		activate(m);
	else if (m->active)
		learn_process(m, (uint32_t)pid);
}

void gs_tidmap_on_fork(struct gs_tidmap *m, uint32_t pid, uint32_t tid, uint64_t now)
{
	if (pid == tid && add_proc(m, pid) && !m->active) {
		activate(m); /* learns this process too */
		return;
	}
	if (m->active)
		learn_task(m, tid, now);
}

void gs_tidmap_on_exit(struct gs_tidmap *m, uint32_t tid, uint64_t now)
{
	if (m->active)
		for (int i = m->by_host[bucket(tid)]; i >= 0; i = m->pairs[i].next_host)
			if (m->pairs[i].host == tid && m->pairs[i].death == ALIVE)
				m->pairs[i].death = now;
	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid == tid) {
			m->procs[i] = m->procs[--m->nprocs];
			break;
		}
}

int gs_tidmap_active(const struct gs_tidmap *m) { return m && m->active; }

/* The threads that had id own at time t: how many, and the last one's host id. */
static int matches(const struct gs_tidmap *m, uint32_t own, uint64_t t, uint32_t *host)
{
	int n = 0;
	for (int i = m->by_own[bucket(own)]; i >= 0; i = m->pairs[i].next_own) {
		const struct pair *p = &m->pairs[i];
		if (p->own != own || t + SLACK_NS < p->birth || (p->death != ALIVE && t > p->death + SLACK_NS))
			continue;
		if (n == 0 || p->host != *host)
			n++;
		*host = p->host;
	}
	return n;
}

uint32_t gs_tidmap_host(struct gs_tidmap *m, uint32_t tid, uint64_t t)
{
	uint32_t host = gs_tidmap_lookup(m, tid, t);
	if (host)
		m->translated++;
	else
		m->unattributed++;
	return host;
}

uint32_t gs_tidmap_lookup(struct gs_tidmap *m, uint32_t tid, uint64_t t)
{
	uint32_t host = 0;
	int n = matches(m, tid, t, &host);
	if (n == 0 && m->nprocs) {
		/* a thread whose clone record is not read yet: a fresh look can find it only if it was
		 * born after the last look (one alive then was learnt then, one gone is gone), so at
		 * most one look per drain for a burst of such events, none for a thread already gone */
		if (m->last_refresh < t) {
			m->last_refresh = gs_now_ns();
			for (size_t i = 0; i < m->nprocs; i++)
				learn_process(m, m->procs[i].pid);
			n = matches(m, tid, t, &host);
		}
	}
	return n == 1 ? host : 0;
}

uint64_t gs_tidmap_translated(const struct gs_tidmap *m) { return m ? m->translated : 0; }
uint64_t gs_tidmap_unattributed(const struct gs_tidmap *m) { return m ? m->unattributed : 0; }
