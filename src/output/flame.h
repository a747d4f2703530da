/* flame.h - a self-contained interactive SVG flame graph (hover, click to zoom, search), no
 * Perl or other tool needed, its tree as JSON for the HTML page, and folded stacks. Frames are
 * told apart by name, not by id: the same stack in two processes is one stack here. */
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

/* Folded stacks of the samples of one kind, all threads: "outer;...;inner count" per line, each
 * frame as gs_analysis_frame_name writes it in its terminal form with ';' made ','; a sample
 * with no Python stack is "[no Python frame]". Lines of the same text (the same stack sampled
 * in two processes, whose frame ids differ) are one line with the sum of their counts, in the
 * order the first of them comes in the count table; each count times scale. Memory: the
 * distinct lines' text. Returns the number of lines. */
size_t gs_flame_folded(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t scale);

#endif
