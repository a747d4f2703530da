/* report.h - the per-thread summary, as a table and as JSON (one emitter each). */
#ifndef GS_REPORT_H
#define GS_REPORT_H

#include <stdio.h>

#include "analysis.h"

void gs_report_text(const struct gs_analysis *a, FILE *out);
void gs_report_json(const struct gs_analysis *a, FILE *out);
/* Writes s as a JSON string literal (all escaping lives here). */
void gs_json_string(FILE *out, const char *s);

#endif
