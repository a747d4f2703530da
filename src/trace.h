/* trace.h - Chrome Trace Event JSON (Perfetto UI, chrome://tracing, viztracer's vizviewer),
 * written while the recording streams through the analysis: memory stays bounded by the
 * number of threads, whatever the length of the run. */
#ifndef GS_TRACE_H
#define GS_TRACE_H

#include <stddef.h>
#include <stdio.h>

/* Exports recording path as Trace Event JSON to out. 0, or -errno with why. */
int gs_trace_json(const char *path, FILE *out, char *why, size_t whylen);

#endif
