/* flame.h - a self-contained interactive SVG flame graph (hover, click to zoom, search), no
 * Perl or other tool needed. */
#ifndef GS_FLAME_H
#define GS_FLAME_H

#include <stdio.h>

#include "analysis/analysis.h"

/* Writes the flame graph of the samples of one kind. Returns the number of samples drawn. */
size_t gs_flame_svg(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, const char *title);

#endif
