/* diff.h - `gilscope diff A B` written out: a table for people, JSON (schema gilscope.diff/1) for
 * CI. Both show each recording's figures and the change from A to B: utilisation and contention
 * (percentage points), wait time, acquisitions, forced drops (when both recordings tell them
 * apart), every matched thread's held, waiting and no-GIL shares of its life, the longest holds
 * and the top wait sites. Strings from the recordings go through base/escape.h. The verdict for
 * --fail-if-worse is gs_diff_worse's, so the text, the JSON and the exit status agree. */
#ifndef GS_OUTPUT_DIFF_H
#define GS_OUTPUT_DIFF_H

#include "analysis/diff.h"

#include <stdio.h>

struct gs_diff_view {
	const struct gs_analysis *a, *b;
	const char *path_a, *path_b;
	double fail_percent; /* --fail-if-worse PERCENT, < 0: not asked */
};

/* Did B get worse than A by more than fail_percent: its threads' total GIL wait or its
 * contention (share of the GIL's time with a waiter) grew by more than that many percent?
 * 0 when fail_percent < 0. */
int gs_diff_worse(const struct gs_diff *d, double fail_percent);

void gs_diff_text(const struct gs_diff *d, const struct gs_diff_view *v, FILE *out);
void gs_diff_json(const struct gs_diff *d, const struct gs_diff_view *v, FILE *out);

#endif
