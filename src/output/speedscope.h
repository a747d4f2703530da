/* speedscope.h - speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * one "sampled" profile per thread and per kind of Python stack sample (hold, wait, cpu, offcpu,
 * offgil, blocking: the counts `export --format folded --what KIND` writes, here per thread),
 * threads in the order of the recording, kinds in that order, empty ones left out. A profile's
 * samples are its distinct stacks, outermost frame first, indexes into shared.frames (one entry
 * per frame the recording defines, Python and native: the function's name, its file or module,
 * its line for Python frames; the last entry stands for samples with no Python frame); each
 * stack's weight is its sample count times the sampling period, in nanoseconds of that state,
 * and endValue is their sum. Every string from the traced program goes through gs_esc_json.
 * Memory: the analysis's own tables; nothing per sample. */
#ifndef GS_SPEEDSCOPE_H
#define GS_SPEEDSCOPE_H

#include <stddef.h>
#include <stdio.h>

struct gs_analysis;

/* Writes the speedscope document of a loaded analysis to out. Returns the number of profiles. */
size_t gs_speedscope_write(const struct gs_analysis *a, FILE *out);

#endif
