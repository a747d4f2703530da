/* tree.h (output) - the processes of a recording as a tree, for the text report.
 *
 * One line per process, indented under the process that forked it (roots: the command, and any
 * process whose parent the recording does not hold): pid, what it ran (its last image's command
 * line, or its name), how it ended (exit N, killed by signal N, still running at the end), and
 * for a CPython its version, GIL utilisation and contention. Printed only for a recording of
 * more than one process: a single process's report is as it always was.
 *
 * Short-lived helpers are folded (unless a->all_processes): a process that is not a CPython,
 * has no python.error, is not the command, had no GIL activity, ended under a second after its
 * start, and whose children all fold the same way, is counted with the others of its parent
 * in one line after the parent's other children: "+ 40 short-lived processes, not Python: bash
 * x34, readlink x5, basename", programs (the first argument's last component, else the
 * process's name) by count then name, at most six named. A non-Python process with a Python
 * below it stays, as the path to it; a parent with a single such helper lists it as it is.
 * The JSON report lists every process: it is the data, this the view.
 */
#ifndef GS_OUTPUT_TREE_H
#define GS_OUTPUT_TREE_H

#include <stdio.h>

#include "analysis/analysis.h"

/* The "Processes:" section, or nothing for a recording of one process. */
void gs_tree_text(const struct gs_analysis *a, FILE *out);

#endif
