/* convoy.c (output) - the convoy in plain words and as JSON (see convoy.h). */
#include "output/convoy.h"
#include "analysis/convoy.h"
#include "base/escape.h"

#include <inttypes.h>
#include <string.h>

/* 1190 -> "1,190" */
static const char *thousands(char *buf, size_t len, uint64_t v)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < len; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* "4.9 ms", "350 us", "1.20 s" */
static const char *dur(char *buf, size_t len, uint64_t ns)
{
	if (ns >= 1000000000ull)
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	else if (ns >= 1000000ull && ns % 1000000ull == 0)
		snprintf(buf, len, "%" PRIu64 " ms", (uint64_t)(ns / 1000000u));
	else if (ns >= 1000000ull)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else if (ns >= 1000)
		snprintf(buf, len, "%.0f us", (double)ns / 1e3);
	else
		snprintf(buf, len, "under 1 us");
	return buf;
}

static double share(uint64_t part, uint64_t whole) { return whole ? (double)part / (double)whole : 0.0; }

static const char *name_of(const struct gs_analysis *a, uint32_t tid)
{
	const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)a, tid);
	return t ? gs_thread_name(a, t) : "?";
}

/* Who was forced: "spin-a", "spin-a or spin-b", "one of 3 threads (spin-a, spin-b, ...)", escaped
 * for the terminal; TIDs added when two names are the same. */
static void forcers(const struct gs_analysis *a, const struct gs_convoy_verdict *v, char *buf, size_t len)
{
	char n1[300], n2[300], e[256];
	int same = v->nforcers > 1 && strcmp(name_of(a, v->forcers[0]), name_of(a, v->forcers[1])) == 0;
	gs_esc_term_buf(e, sizeof(e), v->nforcers ? name_of(a, v->forcers[0]) : "?");
	if (same)
		snprintf(n1, sizeof(n1), "%s (TID %u)", e, v->forcers[0]);
	else
		snprintf(n1, sizeof(n1), "%s", e);
	if (v->nforcers <= 1) {
		snprintf(buf, len, "%s", n1);
		return;
	}
	gs_esc_term_buf(e, sizeof(e), name_of(a, v->forcers[1]));
	if (same)
		snprintf(n2, sizeof(n2), "%s (TID %u)", e, v->forcers[1]);
	else
		snprintf(n2, sizeof(n2), "%s", e);
	if (v->nforcers == 2)
		snprintf(buf, len, "%s or %s", n1, n2);
	else
		snprintf(buf, len, "one of %d threads (%s, %s, ...)", v->nforcers, n1, n2);
}

size_t gs_convoy_text(const struct gs_analysis *a, FILE *out)
{
	size_t found = 0;
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct gs_thread *t = &a->threads[i];
		struct gs_convoy_verdict v;
		char nm[512], who[700], w[32], f[32], iv[32], d1[32], d2[32];
		uint64_t suggest_us;
		if (!gs_convoy_find(a, t, &v))
			continue;
		if (!found++)
			fputs("\nConvoys (a thread that gives the GIL up by itself, then waits for a CPU-bound "
			      "thread's "
			      "switch interval):\n",
			      out);
		gs_esc_term_buf(nm, sizeof(nm), gs_thread_name(a, t));
		forcers(a, &v, who, sizeof(who));
		dur(iv, sizeof(iv), v.interval_us * 1000);
		fprintf(out,
			"  %s (TID %u) waited %.0f%% of its life: %s waits, %s of them (%.0f%% of its wait time) ended "
			"only when %s was forced to drop the GIL after the %s switch interval%s; median wait behind a "
			"forced drop %s.\n",
			nm, t->tid, 100.0 * share(v.wait_ns, v.lifetime_ns), thousands(w, sizeof(w), v.waits),
			thousands(f, sizeof(f), v.forced_waits), 100.0 * share(v.forced_wait_ns, v.wait_ns), who, iv,
			v.interval_read ? "" : " (not read from the program: CPython's default assumed)",
			dur(d1, sizeof(d1), v.median_forced_wait_ns));
		suggest_us = v.interval_us / 5 < 500 ? 500 : v.interval_us / 5;
		fprintf(out,
			"    It holds the GIL briefly (median %s) and releases %.0f%% of the time by itself. What "
			"would "
			"help: a lower switch interval (sys.setswitchinterval(%g)) shortens each of these waits; "
			"releasing the GIL in the CPU-bound code (a C extension, NumPy) or moving that code to a "
			"process pool (concurrent.futures.ProcessPoolExecutor) ends them.\n",
			dur(d2, sizeof(d2), v.median_hold_ns), 100.0 * share(v.voluntary, v.releases),
			(double)suggest_us / 1e6);
	}
	return found;
}

void gs_convoy_json(const struct gs_analysis *a, FILE *out, const struct gs_thread *t)
{
	struct gs_convoy_verdict v;
	if (!gs_convoy_find(a, t, &v)) {
		fputs(", \"convoy\": null", out);
		return;
	}
	fprintf(out,
		", \"convoy\": {\"wait_share\": %.6f, \"waits\": %" PRIu64 ", \"forced_waits\": %" PRIu64
		", \"forced_wait_ns\": %" PRIu64 ", \"forced_wait_share\": %.6f, \"median_wait_ns\": %" PRIu64
		", \"median_forced_wait_ns\": %" PRIu64 ", \"median_hold_ns\": %" PRIu64
		", \"voluntary_share\": %.6f, \"switch_interval_ns\": ",
		share(v.wait_ns, v.lifetime_ns), v.waits, v.forced_waits, v.forced_wait_ns,
		share(v.forced_wait_ns, v.wait_ns), v.median_wait_ns, v.median_forced_wait_ns, v.median_hold_ns,
		share(v.voluntary, v.releases));
	if (v.interval_read)
		fprintf(out, "%" PRIu64, v.interval_us * 1000);
	else
		fputs("null", out);
	fputs(", \"holders_forced\": [", out);
	for (int i = 0; i < v.nforcers; i++) {
		fprintf(out, "%s{\"tid\": %u, \"name\": ", i ? ", " : "", v.forcers[i]);
		gs_esc_json(out, name_of(a, v.forcers[i]));
		fprintf(out, ", \"waits\": %" PRIu64 "}", v.forcer_waits[i]);
	}
	fputs("]}", out);
}
