/* loop.c - the recorder's event loop and its signals (see session.h).
 *
 * One poll over: the signalfd (SIGINT, SIGTERM, SIGHUP, SIGQUIT passed on to a launched
 * command; the third stops the recording and leaves the command running; with -p the first
 * stops it), the guardian's answer to the wait for the command's tree (proctree.h), the stack
 * sampler's timer (from the first CPython's set-up on), every attached process's pidfd (the
 * descendants' scan and the discover hook after each poll: attach.c), --import's ready pipe, a
 * BPF scheduler source's ring buffer and every ring (woken by watermark). Rings are drained at
 * least every 50 ms (every 10 ms while a drain writes BUSY_RECORDS or more: the merge's queues and
 * the inline reader's batch then stay a few MB, in cache and out of new pages), at most every
 * 10 ms when only the sampler's timer woke the loop. SIGUSR1
 * asks for a barrier: the rings are drained every 10 ms until everything before the signal is
 * in the sinks, then its time is written to --sync-fd (the pytest plugin's per-test slices).
 */
#define _GNU_SOURCE
#include "base/util.h"
#include "record/session.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUSY_RECORDS 4096 /* a drain that wrote this many: the next one in 10 ms, not 50 */

int gs_session_signalfd(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, old);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* A terminal's Ctrl-C, sent by the kernel, already reached the command: not passed on twice. */
int gs_session_take_signals(int sfd, pid_t child, uint64_t *barrier)
{
	struct signalfd_siginfo si;
	int n = 0;
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (si.ssi_signo == SIGUSR1) {
			if (barrier && !*barrier)
				*barrier = gs_now_ns();
			continue;
		}
		if (child > 0 && si.ssi_code != SI_KERNEL)
			kill(child, (int)si.ssi_signo);
		n++;
	}
	return n;
}

int gs_session_forward_signals(int sfd, pid_t child) { return gs_session_take_signals(sfd, child, NULL); }

/* A barrier asked at time *barrier (SIGUSR1) is met once every event before it is in the sinks:
 * then its time, in decimal and a newline, goes to --sync-fd. */
static void barrier_met(struct gs_session *S, uint64_t *barrier)
{
	char line[32];
	int n;
	if (!*barrier || S->written_to < *barrier)
		return;
	n = snprintf(line, sizeof(line), "%" PRIu64 "\n", *barrier);
	if (S->o->sync_fd > 0 && write(S->o->sync_fd, line, (size_t)n) != n)
		gs_warn("--sync-fd %d: cannot write the barrier's time (%s); barriers are no longer reported",
			S->o->sync_fd, strerror(errno));
	*barrier = 0;
}

static int sample_timer(unsigned hz)
{
	struct itimerspec its = { 0 };
	uint64_t period;
	int tfd;
	if (!hz)
		return -1;
	period = 1000000000ull / hz;
	its.it_interval.tv_sec = (time_t)(period / 1000000000ull);
	its.it_interval.tv_nsec = (long)(period % 1000000000ull);
	its.it_value = its.it_interval;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd >= 0)
		timerfd_settime(tfd, 0, &its, NULL);
	return tfd;
}

/* --import: the modules are imported, the report counts from here. */
static void imports_done(struct gs_session *S)
{
	char b;
	if (read(S->ready_fd, &b, 1) == 1)
		gs_emit_meta(&S->emit, 0, "account_from", "now");
	close(S->ready_fd);
	S->ready_fd = -1;
}

/* Has the launched command exited? (its status kept) */
static void reap(struct gs_session *S, pid_t child)
{
	int st;
	if (child > 0 && !S->exited && waitpid(child, &st, WNOHANG) == child && (WIFEXITED(st) || WIFSIGNALED(st))) {
		S->status = st;
		S->exited = 1;
	}
}

/* The attached processes' pidfds into pfd from n on: the new n. */
static int attached_pollfds(struct gs_session *S, struct pollfd *pfd, int n)
{
	for (size_t i = 0; i < S->att.n; i++)
		if (S->att.a[i].pidfd >= 0) {
			pfd[n].fd = S->att.a[i].pidfd;
			pfd[n++].events = POLLIN;
		}
	return n;
}

/* The attached processes whose pidfd polled readable (pfd[from..to)) ended. */
static void attached_ended(struct gs_session *S, const struct pollfd *pfd, int from, int to)
{
	for (int i = from; i < to; i++) {
		struct gs_att *e;
		if (!(pfd[i].revents & (POLLIN | POLLHUP)))
			continue;
		for (size_t k = 0; k < S->att.n; k++) {
			e = &S->att.a[k];
			if (e->pidfd != pfd[i].fd)
				continue;
			close(e->pidfd);
			e->pidfd = -1;
			e->ended = 1;
			e->ended_ns = gs_now_ns();
			if (e->pid == S->target && S->attach)
				S->exited = 1; /* a launched command's end is its reaping's */
		}
	}
}

/* --wait-children: every process of the launched tree ended (those the guardian traces, and
 * those followed the attach way: the fork records not read yet taken first). */
static int tree_done(struct gs_session *S)
{
	if (!gs_proctree_done(S->tree))
		return 0;
	if (!S->bpf_tree)
		return 1;
	gs_session_drain(S, 0);
	gs_session_attach_tick(S);
	return !gs_attset_live(&S->att);
}

void gs_session_loop(struct gs_session *S, int sfd, pid_t child)
{
	const struct gs_record_opts *o = S->o;
	struct pollfd *pfd = NULL;
	uint64_t deadline = o->duration > 0 ? gs_now_ns() + (uint64_t)(o->duration * 1e9) : 0;
	uint64_t last_drain = 0, barrier = 0;
	int stop = 0, interrupts = 0, tfd = -1, busy = 0;

	while (!stop) {
		int n = 0, ti = -1, ri = -1, pi = -1, pn = -1, wi = -1, ticked, rings, woken = 0;
		pfd = gs_realloc_array(pfd, (size_t)S->ncpu + 6 + S->att.n, sizeof(*pfd));
		if (tfd < 0 && S->stacks)
			tfd = sample_timer(o->sample_hz); /* the first CPython is set up */
		pfd[n].fd = sfd;
		pfd[n++].events = POLLIN;
		if (gs_proctree_fd(S->tree) >= 0) {
			wi = n;
			pfd[n].fd = gs_proctree_fd(S->tree);
			pfd[n++].events = POLLIN;
		}
		if (tfd >= 0) {
			ti = n;
			pfd[n].fd = tfd;
			pfd[n++].events = POLLIN;
		}
		pi = n;
		pn = n = attached_pollfds(S, pfd, n);
		if (S->ready_fd >= 0) {
			ri = n;
			pfd[n].fd = S->ready_fd;
			pfd[n++].events = POLLIN;
		}
		if (S->sched->fd >= 0) { /* the BPF source's ring buffer: drained below */
			pfd[n].fd = S->sched->fd;
			pfd[n++].events = POLLIN;
		}
		rings = n;
		n = gs_evlist_pollfds(S->ev, pfd, n);
		for (int i = 0; i < n; i++)
			pfd[i].revents = 0;
		poll(pfd, (nfds_t)n, barrier || busy ? 10 : 50);
		if (wi >= 0 && pfd[wi].revents)
			gs_proctree_service(S);
		/* --sample-event: a ring that woke the loop is drained now, its stacks read right after */
		for (int i = rings; i < n && !woken && gs_counters_have_stacks(S->counters); i++)
			woken = (pfd[i].revents & POLLIN) != 0;
		if (ri >= 0 && (pfd[ri].revents & (POLLIN | POLLHUP)))
			imports_done(S);
		ticked = ti >= 0 && (pfd[ti].revents & POLLIN);
		if (ticked) {
			uint64_t ticks;
			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				gs_stacks_sample(S->stacks);
		}
		if (!ticked || woken || barrier || gs_now_ns() - last_drain > 10000000ull) {
			busy = gs_session_drain(S, 0) >= BUSY_RECORDS;
			last_drain = gs_now_ns();
			barrier_met(S, &barrier);
		}
		if (pfd[0].revents & POLLIN) {
			int k = gs_session_take_signals(sfd, child, &barrier);
			if (k && child <= 0) {
				stop = 1; /* attach: stop recording, leave the process alone */
			} else if (k && (interrupts += k) >= 3) {
				/* launch: the command decides, until it was asked three times */
				gs_warn("third signal: stopping the recording; the command keeps running");
				stop = 1;
			}
		}
		reap(S, child);
		if (S->attach || S->bpf_tree) {
			attached_ended(S, pfd, pi, pn);
			gs_session_attach_tick(S);
			if (S->attach && !o->keep_running && !gs_attset_live(&S->att))
				stop = 1; /* every attached process ended */
		}
		if (child > 0 && S->exited && (!o->wait_children || tree_done(S)))
			stop = 1;
		if (deadline && gs_now_ns() >= deadline)
			stop = 1;
	}
	if (tfd >= 0)
		close(tfd);
	free(pfd);
}
