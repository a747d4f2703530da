/* gecko.h - the Firefox Profiler's processed profile format (meta.version 32, preprocessed
 * version 57, as CPython 3.15's profiling.sampling writes it), opened by profiler.firefox.com
 * ("Load a profile from file"). One thread entry per recorded thread, in the recording's order,
 * with its pid, tid, name and lifetime; samples are the recorded Python stack samples (record
 * --sample-rate) at their own times, each naming a stack of the stackTable (prefix tree: the
 * outermost frame has no prefix) whose frames are the recording's Python (category Python) and
 * native (category Native) frames; markers are the thread's GIL states as interval markers
 * (phase 1, category GIL), one per stretch of one state, named as in the other timelines
 * (`holds GIL`, `holds GIL (off CPU)`, `S(GIL)`, `R(GIL)`, `waits GIL (on CPU)`: states.h), with
 * data {"type": "GIL", "state": name}. Times are milliseconds since the recording's start
 * (meta.startTime: that start on CLOCK_MONOTONIC, in ms). The stack, frame and function tables
 * are one set, written into every thread; strings live in shared.stringArray. Every string from
 * the traced program goes through gs_esc_json. Memory: the samples and GIL-state stretches are
 * kept until the end (16 and 24 bytes each). */
#ifndef GS_GECKO_H
#define GS_GECKO_H

#include <stddef.h>
#include <stdio.h>

struct gs_analysis_opts;

/* Writes the profile of recording path, read as opts says (NULL: defaults), to out. 0, or -errno
 * with why. */
int gs_gecko_export(const char *path, const struct gs_analysis_opts *opts, FILE *out, char *why, size_t whylen);

#endif
