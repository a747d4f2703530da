/* tree.h (output) - the processes of a recording as a tree, for the text report.
 *
 * One line per process, indented under the process that forked it (roots: the command, and any
 * process whose parent the recording does not hold): pid, what it ran (its last image's command
 * line, or its name), how it ended (exit N, killed by signal N, still running at the end), and
 * for a CPython its version, GIL utilisation and contention. Printed only for a recording of
 * more than one process: a single process's report is as it always was.
 */
#ifndef GS_OUTPUT_TREE_H
#define GS_OUTPUT_TREE_H

#include <stdio.h>

#include "analysis/analysis.h"

/* The "Processes:" section, or nothing for a recording of one process. */
void gs_tree_text(const struct gs_analysis *a, FILE *out);

#endif
