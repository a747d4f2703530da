/* trace.h - Chrome Trace Event JSON (Perfetto UI, chrome://tracing, viztracer's vizviewer),
 * written while the recording streams through the analysis: memory stays bounded by the
 * number of threads, whatever the length of the run. */
#ifndef GS_TRACE_H
#define GS_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct gs_analysis;

/* Exports recording path as Trace Event JSON to out; with combine (a viztracer trace of the same
 * process, or any Trace Event JSON on CLOCK_MONOTONIC microseconds) its events are merged in, so
 * the program's functions and the GIL show on the same tracks. 0, or -errno with why. */
int gs_trace_json(const char *path, const char *combine, FILE *out, char *why, size_t whylen);

/* The same in steps, for records that do not come from a file (perf2trace converts and exports
 * in one pass): gs_trace_begin loads combine (NULL: none; on error NULL with why) and writes the
 * head of the document; the analysis a is then fed with gs_trace_hooks(tr) as its hooks and
 * finished (gs_analysis_finish), and gs_trace_end writes the rest and frees tr. gs_trace_free
 * frees without ending the document (on error; NULL is a no-op). One export at a time. */
struct gs_trace;
struct gs_trace *gs_trace_begin(FILE *out, const char *combine, struct gs_analysis *a, char *why, size_t whylen);
const struct gs_hooks *gs_trace_hooks(const struct gs_trace *tr);
void gs_trace_end(struct gs_trace *tr);
void gs_trace_free(struct gs_trace *tr);

/* The exporter's number formatters, exposed for their unit test. Each writes at b and returns the
 * length, with no NUL; b must have 32 bytes of room (they may store past what they return).
 * gs_trace_fmt_u64: v in decimal, as "%" PRIu64 prints it. gs_trace_fmt_us: ns as microseconds
 * with three decimals, as "%" PRIu64 ".%03" PRIu64 prints ns / 1000 and ns % 1000; not thread-safe
 * (it keeps the last seconds' digits). */
size_t gs_trace_fmt_u64(char *b, uint64_t v);
size_t gs_trace_fmt_us(char *b, uint64_t ns);

#endif
