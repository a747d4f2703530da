/* recorder.h - `gilscope record` without its command line: launch or attach, record into a file. */
#ifndef GS_RECORDER_H
#define GS_RECORDER_H

#include <stdint.h>
#include <sys/types.h>

struct gs_sink;
struct gs_counter_spec;

struct gs_record_opts {
	pid_t pid;         /* attach to this process when > 0 (pids[0] when npids > 0) */
	const pid_t *pids; /* attach to all of these (record/serve/top -p PID given more than once) */
	int npids;
	int descendants;  /* attach: each process's descendants too, running and started later */
	int keep_running; /* attach: record on when every process ended (serve --all-python) */
	/* Asked about once a second while recording (serve --all-python): writes up to max processes
	 * to attach to into out, returns how many (0: none new). NULL: nothing discovered. */
	size_t (*discover)(void *ctx, pid_t *out, size_t max);
	void *discover_ctx;
	double duration;          /* attach: seconds (0: until exit or Ctrl-C) */
	char **argv;              /* launch: the command */
	unsigned mmap_pages;      /* ring data pages per CPU (power of two) */
	int gil_watchpoint;       /* trace gil->locked with a hardware watchpoint (slow in VMs) */
	int no_inline;            /* uprobes instead of inline probes when launching */
	unsigned sample_hz;       /* Python stack samples per second and thread (0: none) */
	int native;               /* native stacks merged with the Python ones */
	unsigned native_stack;    /* bytes of user stack copied per native sample (0: default) */
	int imports;              /* the command reports the end of its imports through GILSCOPE_READY_FD */
	int no_gil;               /* giltracer's --no-gil-detect: thread states only */
	int sched_choice;         /* enum gs_sched_choice (record/sched.h): where scheduler events come from */
	int no_children;          /* launch: the command alone (its fork()ed children too), no exec'd child */
	int no_fork_watch;        /* launch: follow forks by tracing every thread (a stop per thread) */
	int no_exec_stop;         /* attach: no stop at exec, a /proc scan finds new descendants */
	int fork_watch;           /* launch: the tree followed by the seccomp fork watch (--fork-watch), not
				   * by first threads traced and the stops at exec (the default, with BPF) */
	int exec_stop;            /* launch: --exec-stop given (the default): said when BPF is missing */
	int wait_children;        /* launch: record until every process of the tree ended, not just the command */
	int python_only;          /* launch: thread states of CPython processes only */
	const char *command_text; /* how to show the command (when gilscope built it) */
	const struct gs_counter_spec *counters; /* -e and --sample-event (record/counters.h) */
	int ncounters;
	struct gs_sink **sinks; /* where the events go, in time order (record/sink.h) */
	int nsinks;
	int sync_fd; /* --sync-fd: a barrier's time (SIGUSR1) is written here once met; 0: none */
};

/* What a recording left for the command layer to summarise. */
struct gs_record_result {
	int recorded;       /* the recording was written and is worth a summary */
	int have_python;    /* a CPython was found and its GIL recorded */
	uint64_t corrupt;   /* malformed kernel records skipped */
	uint64_t throttled; /* throttling notices */
};

/* Launches o->argv (or attaches to o->pid) and records, delivering every event in time order to
 * o->sinks, until the command exits (or the duration ends, or Ctrl-C). Checks every privilege
 * first: a refusal starts no sink and no command. Prints nothing but progress and errors.
 * Returns the process exit code for gilscope: the command's status when launched (128 + signal
 * when killed), else 0, 1 on failure. The modules it is made of, and how an event flows through
 * them, are described in session.h and README "How gilscope records". */
int gs_record(const struct gs_record_opts *o, struct gs_record_result *res);

#endif
