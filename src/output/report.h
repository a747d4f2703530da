/* report.h - the per-thread summary, as a table and as JSON (one emitter each). */
#ifndef GS_REPORT_H
#define GS_REPORT_H

#include <stdio.h>

#include "analysis/analysis.h"

void gs_report_text(const struct gs_analysis *a, FILE *out);
void gs_report_json(const struct gs_analysis *a, FILE *out);
/* Who held the GIL while each thread waited, and the longest holds. */
void gs_report_blame(const struct gs_analysis *a, FILE *out, size_t max_holders);
/* Folded stacks ("outer;...;inner count" per line, counts in samples) of the samples of one
 * kind, for flamegraph.pl, inferno and speedscope; lines of the same text (the same stack in
 * two processes) merged into one (output/flame.h, gs_flame_folded). Returns the number of lines. */
size_t gs_report_folded(const struct gs_analysis *a, FILE *out, enum gs_stack_what what);
/* The same with each sample counted as `scale` (e.g. microseconds per sample). */
size_t gs_report_folded_scaled(const struct gs_analysis *a, FILE *out, enum gs_stack_what what, uint64_t scale);
#endif
