/* window.c - a recording's window as a table or JSON (window.h). */
#include "output/window.h"
#include "base/escape.h"

#include <inttypes.h>
#include <string.h>

static const char *name_of(const struct gs_window *w, uint32_t tid)
{
	const struct gs_thread *t = gs_analysis_thread((struct gs_analysis *)w->a, tid);
	return t ? gs_thread_name(w->a, t) : "?";
}

/* The innermost Python frame of the holder's stack sampled most while waiter waited for it
 * ("" when none was sampled), into buf. */
static const char *where(const struct gs_window *w, uint32_t waiter, uint32_t holder, char *buf, size_t len)
{
	const struct gs_analysis *a = w->a;
	const struct gs_stack_count *best = NULL;
	const uint32_t *f;
	int n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < a->cap_counts; i++) {
		const struct gs_stack_count *c = &a->counts[i];
		if (c->amount && c->what == GS_WHAT_HELD_FOR && c->tid == waiter && c->peer == holder && c->stack &&
		    (!best || c->amount > best->amount))
			best = c;
	}
	f = best ? gs_analysis_stack(a, best->stack, &n) : NULL;
	for (int i = 0; f && i < n; i++)
		if (!gs_analysis_frame_native(a, f[i])) {
			gs_analysis_frame_name(a, f[i], buf, len);
			break;
		}
	return buf;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

void gs_window_text(const struct gs_window *w, FILE *out)
{
	fprintf(out, "window %.3fs to %.3fs of the recording (%.1fms)%s\n", (double)(w->from - w->a->start_ns) / 1e9,
		(double)(w->to - w->a->start_ns) / 1e9, ms(w->to - w->from),
		w->oom ? " (out of memory: figures incomplete)" : "");
	fprintf(out, "%-8s %-24s %10s %10s %10s %10s %8s\n", "TID", "NAME", "HELD ms", "WAIT ms", "NOGIL ms",
		"OFFCPU ms", "ACQUIRE");
	for (size_t i = 0; i < w->nthreads; i++) {
		const struct gs_window_thread *t = &w->threads[i];
		char name[256];
		gs_esc_term_cell(name, sizeof(name), name_of(w, t->tid), 24, 24, NULL);
		fprintf(out, "%-8u %s %10.1f %10.1f %10.1f %10.1f %8" PRIu64 "\n", t->tid, name, ms(t->held_ns),
			ms(t->wait_ns), ms(t->nogil_ns), ms(t->offcpu_ns), t->acquisitions);
		for (size_t k = 0; k < t->nbehind && k < 3; k++) {
			char nm[512], wh[1024], whs[4096];
			gs_esc_term_buf(nm, sizeof(nm), name_of(w, t->behind[k].holder));
			where(w, t->tid, t->behind[k].holder, wh, sizeof(wh));
			gs_esc_term_buf(whs, sizeof(whs), wh);
			fprintf(out, "         waited %.1fms behind TID %u (%s)%s%s\n", ms(t->behind[k].ns),
				t->behind[k].holder, nm, wh[0] ? " in " : "", whs);
		}
	}
}

void gs_window_json(const struct gs_window *w, FILE *out)
{
	fprintf(out,
		"{\"schema\": \"gilscope.window/1\", \"from_ns\": %" PRIu64 ", \"to_ns\": %" PRIu64
		", \"complete\": %s, \"threads\": [",
		w->from, w->to, w->oom ? "false" : "true");
	for (size_t i = 0; i < w->nthreads; i++) {
		const struct gs_window_thread *t = &w->threads[i];
		fprintf(out, "%s{\"pid\": %u, \"tid\": %u, \"name\": ", i ? ", " : "", t->pid, t->tid);
		gs_esc_json(out, name_of(w, t->tid));
		fprintf(out,
			", \"held_ns\": %" PRIu64 ", \"wait_ns\": %" PRIu64 ", \"no_gil_ns\": %" PRIu64
			", \"off_cpu_ns\": %" PRIu64 ", \"other_ns\": %" PRIu64 ", \"acquisitions\": %" PRIu64
			", \"span_ns\": %" PRIu64 ", \"waited_behind\": [",
			t->held_ns, t->wait_ns, t->nogil_ns, t->offcpu_ns, t->other_ns, t->acquisitions,
			t->last_ns - t->first_ns);
		for (size_t k = 0; k < t->nbehind; k++) {
			char wh[1024];
			fprintf(out, "%s{\"tid\": %u, \"name\": ", k ? ", " : "", t->behind[k].holder);
			gs_esc_json(out, name_of(w, t->behind[k].holder));
			fprintf(out, ", \"ns\": %" PRIu64 ", \"where\": ", t->behind[k].ns);
			if (where(w, t->tid, t->behind[k].holder, wh, sizeof(wh))[0])
				gs_esc_json(out, wh);
			else
				fputs("null", out);
			fputc('}', out);
		}
		fputs("]}", out);
	}
	fputs("]}\n", out);
}
