/* top.h - one screen of `gilscope top`: what each Python process and thread did with the GIL
 * between two live snapshots (analysis/live.h).
 *
 * Contract: per process (Python processes with a GIL) its GIL utilisation and contention over
 * the interval (held and contended time of its GILs over the interval's length: the newest record
 * of cur minus that of prev), the threads waiting now and the events lost; per thread (the rows of
 * cur, retired groups left out; a thread is matched with its row in prev by pid, tid and first
 * time, and a thread new since prev counts from zero) its Python name and TID, the shares of the
 * interval it held the GIL, waited for it, ran without it, slept and waited for a CPU, its
 * acquisitions and forced drops per second, its longest wait of the interval (one in progress
 * counted so far), and where it waited most (the row's wait_site: live.h), cut to what is left of
 * the line. Rows sorted by view->sort (descending; TID and NAME ascending), from row
 * view->scroll on, as many as fit in view->rows lines (0: all), each line at most view->cols
 * columns (80 fit every column). Names are escaped for the terminal (escape.h). Plain text;
 * the caller adds the terminal's cursor movements. Pure: writes to out only.
 */
#ifndef GS_OUTPUT_TOP_H
#define GS_OUTPUT_TOP_H

#include <stdio.h>

#include "analysis/live.h"

enum gs_top_sort {
	GS_TOP_HELD = 0,
	GS_TOP_WAIT,
	GS_TOP_NOGIL,
	GS_TOP_SLEEP,
	GS_TOP_RUNQ,
	GS_TOP_ACQ,
	GS_TOP_FORCED,
	GS_TOP_MAXWAIT,
	GS_TOP_TID,
	GS_TOP_NAME,
	GS_TOP_NSORT
};

struct gs_top_view {
	enum gs_top_sort sort;
	int scroll; /* first thread row shown; clamped (the clamped value is written back) */
	int rows;   /* lines available, 0: no limit */
	int cols;   /* columns available */
	int paused; /* say so in the header */
	double interval_s;
};

/* The column names, for the header and the key help. */
extern const char *const gs_top_sort_names[GS_TOP_NSORT];

/* The screen into out; returns the number of thread rows (for scrolling). */
int gs_top_render(FILE *out, const struct gs_live_snap *prev, const struct gs_live_snap *cur, struct gs_top_view *v);

#endif
