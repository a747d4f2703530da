/* states.h - the one table of thread states that the timeline exporters (trace JSON, Perfetto,
 * HTML) draw: for each analysis slice kind its short name (the slice's name in Trace Event JSON
 * and Perfetto), the longer description the HTML page shows, the colour of the HTML timeline
 * and Chrome's reserved colour name, the drawing priority when slices share a pixel column, and
 * whether it is a GIL state (held or waited for) rather than a scheduler state. Pure constants:
 * an exporter indexes the table by `enum gs_slice`; GS_SLICE_UNKNOWN has no name and is never
 * drawn. Changing a row changes every exporter's output together. */
#ifndef GS_STATES_H
#define GS_STATES_H

#include "analysis/analysis.h"

struct gs_state_style {
	const char *name;        /* "holds GIL"; NULL: not drawn (GS_SLICE_UNKNOWN) */
	const char *description; /* "S(GIL): asleep waiting for the GIL" (HTML legend and tooltips) */
	const char *colour;      /* "#2ca02c" (HTML timeline) */
	const char *cname;       /* Chrome's reserved colour name ("good", "thread_state_sleeping") */
	int priority;            /* HTML: of the slices sharing one pixel column, the highest is drawn */
	int gil;                 /* 1: holds or waits for the GIL; 0: scheduler state without the GIL */
};

/* The style of kind; the GS_SLICE_UNKNOWN row (all NULL) for a kind out of range. */
const struct gs_state_style *gs_state_style(enum gs_slice kind);

#endif
