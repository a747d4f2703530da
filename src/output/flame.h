/* flame.h - a self-contained interactive SVG flame graph (hover, click to zoom, search), no
 * Perl or other tool needed. */
#ifndef GS_FLAME_H
#define GS_FLAME_H

#include <stdio.h>

#include "analysis/analysis.h"

/* Writes the flame graph of the samples of one kind. Returns the number of samples drawn. */
size_t gs_flame_svg(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, const char *title);

/* The same tree as JSON for the HTML page: [frame, samples, child...] from the root (frame 0)
 * down, children in no particular order, each a frame id of the recording (its name is the
 * caller's to write); nodes under 1/per of the samples left out (per 0: none). Returns the
 * number of samples. */
size_t gs_flame_json(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t per);

#endif
