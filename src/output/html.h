/* html.h - one self-contained HTML report: summary table, a zoomable per-thread timeline of GIL
 * and thread states drawn on a canvas, the blame view and the flame graphs. Works offline. */
#ifndef GS_HTML_H
#define GS_HTML_H

#include <stddef.h>
#include <stdio.h>

struct gs_analysis_opts;

/* Writes the report of recording path, read as opts says (NULL: the defaults), to out. 0, or
 * -errno with why. */
int gs_html_report(const char *path, const struct gs_analysis_opts *opts, FILE *out, char *why, size_t whylen);

#endif
