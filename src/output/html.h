/* html.h - one self-contained HTML report: summary table, a zoomable per-thread timeline of GIL
 * and thread states drawn on a canvas, the blame view and the flame graphs. Works offline. */
#ifndef GS_HTML_H
#define GS_HTML_H

#include <stddef.h>
#include <stdio.h>

/* Writes the report of recording path to out. 0, or -errno with why. */
int gs_html_report(const char *path, FILE *out, char *why, size_t whylen);

#endif
