/* record.h - `gilscope record`: launch or attach, record, summarise. */
#ifndef GS_RECORD_H
#define GS_RECORD_H

#include <sys/types.h>

struct gs_record_opts {
	const char *output;     /* recording file */
	pid_t pid;              /* attach to this process when > 0 */
	double duration;        /* attach: seconds (0: until exit or Ctrl-C) */
	char **argv;            /* launch: the command */
	unsigned mmap_pages;    /* ring data pages per CPU (power of two) */
	int json;               /* print the summary as JSON */
	int no_summary;
	int gil_watchpoint;     /* trace gil->locked with a hardware watchpoint (slow in VMs) */
	int no_inline;          /* uprobes instead of inline probes when launching */
	unsigned sample_hz;     /* Python stack samples per second and thread (0: none) */
	int native;             /* native stacks merged with the Python ones */
	unsigned native_stack;  /* bytes of user stack copied per native sample (0: default) */
	const char *html;       /* write the HTML report there too */
	const char *module;     /* giltracer's -m MODULE: run python -m MODULE ARGS */
	const char *imports;    /* giltracer's --import a,b: imported before the recording counts */
	int no_gil;             /* giltracer's --no-gil-detect: thread states only */
	const char *command_text; /* how to show the command (when gilscope built it) */
};

/* Runs the whole command. Returns the process exit code for gilscope. */
int gs_record(const struct gs_record_opts *o);
/* The same after turning giltracer's conveniences (-m, SCRIPT.py, --import) into a command. */
int gs_record_giltracer(const struct gs_record_opts *o);

#endif
