/* verdict.h - what a recording found, in a few sentences for the top of the HTML page: each
 * Python process's GIL utilisation and contention; the thread that waited longest, the holder
 * it waited behind most and the code that holder ran meanwhile (its stack most sampled while
 * that thread waited); and the convoy sentence of every thread in a convoy (output/convoy.h).
 * Plain text, one sentence or paragraph per line; names from the traced program as the terminal
 * shows them (gs_esc_term: controls and bidi overrides made visible), so the caller escapes for
 * its own format. Pure apart from writing to out. */
#ifndef GS_VERDICT_H
#define GS_VERDICT_H

#include <stdio.h>

#include "analysis/analysis.h"

/* Writes the sentences to out, one per line. Returns how many lines. */
size_t gs_verdict_text(const struct gs_analysis *a, FILE *out);

#endif
