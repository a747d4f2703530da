/* trace.h - Chrome Trace Event JSON (Perfetto UI, chrome://tracing, viztracer's vizviewer),
 * written while the recording streams through the analysis: memory stays bounded by the
 * number of threads, whatever the length of the run. */
#ifndef GS_TRACE_H
#define GS_TRACE_H

#include <stddef.h>
#include <stdio.h>

/* Exports recording path as Trace Event JSON to out; with combine (a viztracer trace of the same
 * process, or any Trace Event JSON on CLOCK_MONOTONIC microseconds) its events are merged in, so
 * the program's functions and the GIL show on the same tracks. 0, or -errno with why. */
int gs_trace_json(const char *path, const char *combine, FILE *out, char *why, size_t whylen);

#endif
