/* window.h - `gilscope report --window FROM:TO [--json]`: each thread's GIL figures within the
 * window (analysis/window.h) and whom it waited behind there, with the holder's Python code
 * (its stack sampled most while that thread waited for it, over the whole recording). JSON
 * schema gilscope.window/1: from_ns, to_ns, threads [{pid, tid, name, held_ns, wait_ns,
 * no_gil_ns, off_cpu_ns, other_ns, acquisitions, span_ns, waited_behind [{tid, name, ns, where}]}].
 * Strings from the recording go through base/escape.h. */
#ifndef GS_OUTPUT_WINDOW_H
#define GS_OUTPUT_WINDOW_H

#include "analysis/window.h"

#include <stdio.h>

void gs_window_text(const struct gs_window *w, FILE *out);
void gs_window_json(const struct gs_window *w, FILE *out);

#endif
