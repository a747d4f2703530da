/* main.c - gilscope's command line: the usage, --version and --help, and the table of commands
 * (cmd/cmd.h) that main() looks the command up in. Exit codes: 0 ok, 1 runtime failure, 2 usage;
 * `record` of a command exits with the command's status. */
#define _GNU_SOURCE
#include "cmd/cmd.h"

#include <string.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

/* Every command: its name, what runs it, and one line for the usage. */
static const struct gs_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "record", gs_cmd_record, "run a command (or attach to a process) and record its GIL and threads" },
	{ "report", gs_cmd_report, "the summary of a recording: each thread's time held, waited, ran, slept" },
	{ "blame", gs_cmd_blame, "who held the GIL while each thread waited, and where" },
	{ "diff", gs_cmd_diff, "what changed between two recordings of one program (for CI: --fail-if-worse)" },
	{ "export", gs_cmd_export, "flame graphs, timelines (trace JSON, Perfetto) or the HTML page" },
	{ "top", gs_cmd_top, "a running process's threads and their GIL shares, live, every second" },
	{ "serve", gs_cmd_serve, "GIL metrics of a running process for Prometheus, at /metrics over HTTP" },
	{ "dump", gs_cmd_dump, "the raw records of a recording, one per line" },
	{ "perf2trace", gs_cmd_perf2trace, "per4m's perf2trace: `perf script` text to a trace JSON timeline" },
	{ "offgil", gs_cmd_offgil, "per4m's offgil: folded stacks of the time spent waiting for the GIL" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char usage_head[] =
	"USAGE\n"
	"  gilscope record [-o FILE] [options] -- COMMAND [ARGS...]\n"
	"  gilscope record -p PID [--duration SECONDS] [-o FILE] [options]\n"
	"  gilscope report [--json] [--active] [--all-processes] FILE    (--active: only threads that did work;\n"
	"                 --all-processes: list short-lived non-Python helpers one by one, not folded)\n"
	"  gilscope report --window FROM:TO [--json] FILE   each thread's GIL figures within a window\n"
	"                 (CLOCK_MONOTONIC ns, or +SECONDS from the start) and whom it waited behind\n"
	"  gilscope blame FILE                        who held the GIL while each thread waited\n"
	"  gilscope diff [--json] [--fail-if-worse PERCENT] A B\n"
	"                 what changed from recording A to B (threads matched by name); exit 1 when B's\n"
	"                 GIL wait or contention grew by more than PERCENT\n"
	"  gilscope export --format {folded,svg} --what {hold,wait,cpu,offcpu,offgil,blocking} FILE [-o OUT]\n"
	"  gilscope export --format {folded,svg} --what EVENT [--state held|wait|no_gil|other] FILE  (record -e)\n"
	"                 report, blame and export take --keep-cpython-evals: keep the evaluation loop's\n"
	"                 C frames (and -X perf trampolines) in native stacks (record --native)\n"
	"  gilscope export --format trace-json [--combine viztracer.json] FILE [-o OUT.json]\n"
	"                                             for Perfetto UI, chrome://tracing, vizviewer\n"
	"  gilscope export --format html FILE [-o OUT.html]         one self-contained report page\n"
	"  gilscope export --format perfetto FILE -o OUT.pftrace     Perfetto's protobuf (big runs)\n"
	"  gilscope export --format speedscope FILE [-o OUT.json]    every thread's stacks per kind, for speedscope\n"
	"  gilscope export --format gecko FILE [-o OUT.json]         samples, GIL markers: Firefox Profiler\n"
	"  gilscope top [-p PID]... [--all-python [--match REGEX] [--user NAME]] [--interval SECS]\n"
	"               [--command-output FILE] [-- COMMAND]\n"
	"                 each thread's GIL shares and where it waits most, live (keys: q quit,\n"
	"                 p pause, s < > sort, arrows scroll);\n"
	"                 one plain block per interval when the output is not a terminal\n"
	"  gilscope serve [-p PID]... [--all-python [--match REGEX] [--user NAME]] [--listen HOST:PORT]\n"
	"                 [--per-tid] [-o FILE [--max-size SIZE [--max-files N]]] [-- COMMAND]\n"

	"                 exact GIL metrics of a process for Prometheus at http://HOST:PORT/metrics\n"

	"                 (default 127.0.0.1:9464); SIGINT/SIGTERM detach and exit. No recording file\n"
	"                 unless -o FILE; --max-size SIZE (K, M, G; >= 64K) rotates it: FILE.1 the newest\n"
	"                 complete one, up to FILE.N (--max-files, default 5), each readable alone\n"
	"                 -p again or -p PID,PID: several processes; --all-python: every CPython process of\n"
	"                 the host, running or started later (--match: a regex on the command line,\n"
	"                 --user: its real user), each patched with the inline probes until serve stops\n"
	"  gilscope dump FILE                         the raw records, one per line\n"
	"  gilscope perf2trace {gil,sched} [-o OUT.json] [-i viztracer.json] [-q] [-v] < PERF-SCRIPT.txt\n"
	"                 per4m's: `perf script` text of its take_gil/drop_gil probes or of sched\n"
	"                 tracepoints to trace JSON (default perf.json), and the summary table (-q: not);\n"
	"                 its --[no-]running, --[no-]sleeping, --[no-]as-async, --only-lock and\n"
	"                 --all-tracepoints are accepted: every state is drawn\n"
	"  gilscope offgil [--state {S(GIL),S}] [--no-strip-take-gil] [--keep-cpython-evals] [-o OUT] [FILE]\n"
	"                 per4m's: folded stacks of the time off-CPU waiting for the GIL (--state S: every\n"
	"                 sleep), in microseconds, from `perf script` text with call chains (FILE,\n"
	"                 --input-perf FILE or stdin), or from a recording FILE (its stacks sampled waiting)\n"
	"                 (per4m's --allow-mismatch, --pedantic and --input-viztracer: accepted, ignored)\n"
	"  gilscope --version | --help\n"
	"\n"
	"gilscope records every GIL acquisition, release and wait of a CPython program, exactly (no\n"
	"sampling), with every thread's scheduler state, and reports per thread how long it held the GIL,\n"
	"waited for it, ran without it, slept or waited for a CPU.\n"
	"\n"
	"COMMANDS\n";

static const char usage_tail[] =
	"\n"
	"RECORD OPTIONS\n"
	"  -o, --output FILE      recording file (default gilscope.rec)\n"
	"  -p, --pid PID[,PID]    attach to running processes instead of launching COMMAND (-p again for\n"
	"                         more), and to their descendants, running and started later\n"
	"  -d, --duration SECS    with -p: stop after SECS seconds (default: until Ctrl-C or exit)\n"
	"      --mmap-pages N     ring buffer pages per CPU, a power of two (default 2048 = 8 MiB)\n"
	"  per4m giltracer's ways, for its users:\n"
	"  -m MODULE [ARGS]       run `python3 -m MODULE ARGS` ($PYTHON picks the interpreter)\n"
	"  SCRIPT.py [ARGS]       a script path as the command runs it with python3 as __main__\n"
	"      --import a,b       import these first; the report counts from when they are imported\n"
	"      --no-gil-detect    thread states only (--gil-detect, --state-detect: the defaults)\n"
	"      --json             print the summary as JSON instead of a table\n"
	"      --html OUT.html    also write the HTML report (timeline, blame, flame graphs)\n"
	"      --no-summary       do not print the summary\n"
	"      --sync-fd FD       on SIGUSR1, once every event before the signal is in the file, write\n"
	"                         its time (CLOCK_MONOTONIC ns) and a newline to FD (the pytest plugin)\n"
	"      --metrics HOST:PORT  serve the GIL metrics at http://HOST:PORT/metrics while recording\n"
	"                         (as `gilscope serve`; :PORT is loopback)\n"
	"  -r, --sample-rate HZ   Python stacks of every thread per second (default 1000, 0: none)\n"
	"      --native           native (C) stacks too, merged with the Python ones: at every switch off\n"
	"                         the CPU (GIL waits, sleeps) and while running, at the sample rate\n"
	"      --native-stack-size BYTES  user stack copied per native sample (default 16384, to 65000)\n"
	"  -e, --event EVENT[/PERIOD][,...]  count perf's events per thread, split by GIL state (page-faults,\n"
	"                         minor-faults, major-faults, context-switches, cpu-migrations: every one;\n"
	"                         cycles, instructions, cache-misses, L1-dcache-load-misses, branch-misses:\n"
	"                         one sample per PERIOD, given to the GIL state at the sample's time)\n"
	"      --sample-event EVENT[/PERIOD]  the Python stack of the thread every PERIOD occurrences\n"
	"                         (read from memory right after the event): export --what EVENT\n"
	"      --sched=bpf|perf|auto  scheduler events from a BPF program (its cost does not grow with\n"
	"                         thread creation) or from perf tracepoints per task; auto (the default):\n"
	"                         BPF when the kernel allows it, else perf\n"
	"      --uprobes          GIL probes as uprobes instead of inline probes (launch and -p)\n"
	"      --no-children      the command alone (and its fork()ed children), not the programs its\n"
	"                         processes exec (by default every CPython the command starts, at any\n"
	"                         depth, gets the same GIL probes, and other programs thread states);\n"
	"                         with -p: the given processes alone, not their descendants\n"
	"      --no-exec-stop     launched: as --fork-watch; with -p: find new descendants by a /proc\n"
	"                         scan every 100 ms instead of stopping each at its exec (SIGSTOP,\n"
	"                         then SIGCONT once instrumented)\n"
	"      --exec-stop        launched (the default, with the BPF scheduler source): trace each\n"
	"                         process's first thread, a ptrace stop at the exec of what it forks,\n"
	"                         and stop (SIGSTOP) at its exec a process forked by another thread;\n"
	"                         only the SIGSTOP is a parent's to see (a job-control shell's job is\n"
	"                         not stopped, attached as it runs); traced threads cannot be debugged\n"
	"                         (use --no-children for that)\n"
	"      --fork-watch       launched: follow the tree with the seccomp fork watch instead (no\n"
	"                         stop a parent can see, but ~55 ns on every system call, and a filter\n"
	"                         every process of the tree keeps: README, Process trees)\n"
	"      --no-fork-watch    follow the tree by tracing every thread (a stop per thread created)\n"
	"                         instead of the stops at exec or the fork watch\n"
	"      --python-only      thread states of CPython processes only (not of shells, make, ...)\n"
	"      --wait-children    record until every process of the tree ended (default: the command)\n"
	"      --gil-watchpoint   see gil->locked through a hardware write watchpoint instead of uprobes\n"
	"                         on its store instructions (exact on any build, slow in virtual machines)\n"
	"  -q, --quiet            only errors      -v, --verbose   more detail\n"
	"\n"
	"EXAMPLES\n"
	"  gilscope record -- python3 app.py          record app.py, print the table, exit with its status\n"
	"  gilscope record -o run.rec -- python3 -m mypkg --workers 4\n"
	"  gilscope record -p 1234 --duration 10      attach to a running process for ten seconds\n"
	"  gilscope report --json run.rec             the same summary as JSON\n"
	"  gilscope record -e page-faults --sample-event page-faults/100 -o f.rec -- python3 app.py\n"
	"  gilscope export --format folded --what page-faults --state held f.rec   which code takes them\n"
	"\n"
	"Needs root, or CAP_PERFMON + CAP_SYS_PTRACE + write access to tracefs (see README).\n";

void gs_usage(FILE *out)
{
	fputs(usage_head, out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fputs(usage_tail, out);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void gs_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "gilscope: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'gilscope --help'.\n");
}
#pragma GCC diagnostic pop

/* "unknown command 'NAME' (record, ..., perf2trace or offgil)" */
static void unknown_command(const char *name)
{
	char msg[1024];
	size_t len = (size_t)snprintf(msg, sizeof(msg), "unknown command '%.200s' (", name);

	for (size_t i = 0; i < NCOMMANDS && len < sizeof(msg); i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s%s",
					i == 0               ? ""
					: i + 1 == NCOMMANDS ? " or "
							     : ", ",
					commands[i].name);
	if (len < sizeof(msg))
		snprintf(msg + len, sizeof(msg) - len, ")");
	gs_usage_error("%s", msg);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		gs_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("gilscope %s\n"
		       "CPython 3.9 to 3.15 (release builds; 3.11 debug builds too). Exercised for real:\n"
		       "  3.9.18, 3.10.13, 3.11.7, 3.12.1, 3.13.0 (pyenv: shared libpython, symbols)\n"
		       "  3.11.2 (Debian: static, stripped; and its debug build), 3.13.5, 3.14.10, 3.15.2 (Debian: "
		       "static, "
		       "stripped)\n"
		       "Free-threaded builds: detected, thread states only (none available to test).\n",
		       GS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		gs_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	unknown_command(argv[1]);
	return 2;
}
