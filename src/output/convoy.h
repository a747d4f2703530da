/* convoy.h (output) - the convoy said in plain words: one sentence with its numbers per thread
 * in a convoy (analysis/convoy.h), what would help, and the same as JSON data.
 */
#ifndef GS_OUTPUT_CONVOY_H
#define GS_OUTPUT_CONVOY_H

#include <stdio.h>

#include "analysis/analysis.h"

/* The sentences of every thread in a convoy (report, blame), under a "Convoys:" line; nothing
 * when there is none. Returns the number of threads in a convoy. */
size_t gs_convoy_text(const struct gs_analysis *a, FILE *out);
/* ", "convoy": {...}" for t, or ", "convoy": null". */
void gs_convoy_json(const struct gs_analysis *a, FILE *out, const struct gs_thread *t);

#endif
