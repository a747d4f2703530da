/* main.c - gilscope's command line: parses, then dispatches. Exit codes: 0 ok, 1 runtime
 * failure, 2 usage; `record` of a command exits with the command's status. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "analysis/analysis.h"
#include "output/flame.h"
#include "output/trace.h"
#include "output/html.h"
#include "output/perfetto.h"
#include "import/perfscript.h"
#include "import/offgil.h"
#include "base/recfile.h"
#include "output/report.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GS_VERSION
#define GS_VERSION "0.1.0"
#endif

const char gs_usage_text[] =
	"USAGE\n"
	"  gilscope record [-o FILE] [options] -- COMMAND [ARGS...]\n"
	"  gilscope record -p PID [--duration SECONDS] [-o FILE] [options]\n"
	"  gilscope report [--json] [--active] FILE    (--active: only threads that did work)\n"
	"  gilscope blame FILE                        who held the GIL while each thread waited\n"
	"  gilscope export --format {folded,svg} --what {hold,wait,cpu,offcpu,offgil,blocking} FILE [-o OUT]\n"
	"                 report, blame and export take --keep-cpython-evals: keep the evaluation loop's\n"
	"                 C frames (and -X perf trampolines) in native stacks (record --native)\n"
	"  gilscope export --format trace-json [--combine viztracer.json] FILE [-o OUT.json]\n"
	"                                             for Perfetto UI, chrome://tracing, vizviewer\n"
	"  gilscope export --format html FILE [-o OUT.html]         one self-contained report page\n"
	"  gilscope export --format perfetto FILE -o OUT.pftrace     Perfetto's protobuf (big runs)\n"
	"  gilscope --version\n"
	"\n"
	"gilscope records every GIL acquisition, release and wait of a CPython program, exactly (no\n"
	"sampling), with every thread's scheduler state, and reports per thread how long it held the GIL,\n"
	"waited for it, ran without it, slept or waited for a CPU.\n"
	"\n"
	"RECORD OPTIONS\n"
	"  -o, --output FILE      recording file (default gilscope.rec)\n"
	"  -p, --pid PID          attach to a running process instead of launching COMMAND\n"
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
	"  -r, --sample-rate HZ   Python stacks of every thread per second (default 1000, 0: none)\n"
	"      --native           native (C) stacks too, merged with the Python ones: at every switch off\n"
	"                         the CPU (GIL waits, sleeps) and while running, at the sample rate\n"
	"      --native-stack-size BYTES  user stack copied per native sample (default 16384, to 65000)\n"
	"      --uprobes          GIL probes as uprobes instead of inline probes (always so with -p)\n"
	"      --gil-watchpoint   see gil->locked through a hardware write watchpoint instead of uprobes\n"
	"                         on its store instructions (exact on any build, slow in virtual machines)\n"
	"  -q, --quiet            only errors      -v, --verbose   more detail\n"
	"\n"
	"EXAMPLES\n"
	"  gilscope record -- python3 app.py          record app.py, print the table, exit with its status\n"
	"  gilscope record -o run.rec -- python3 -m mypkg --workers 4\n"
	"  gilscope record -p 1234 --duration 10      attach to a running process for ten seconds\n"
	"  gilscope report --json run.rec             the same summary as JSON\n"
	"\n"
	"Needs root, or CAP_PERFMON + CAP_SYS_PTRACE + write access to tracefs (see README).\n";

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void gs_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "gilscope: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'gilscope --help'.\n");
}
#pragma GCC diagnostic pop

static int cmd_report_kind(int argc, char **argv, int blame_only);

static int cmd_report(int argc, char **argv) { return cmd_report_kind(argc, argv, 0); }
static int cmd_blame(int argc, char **argv) { return cmd_report_kind(argc, argv, 1); }

static int cmd_report_kind(int argc, char **argv, int blame_only)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'J' },
		{ "active", no_argument, NULL, 'A' },
		{ "keep-cpython-evals", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gs_analysis a;
	char why[1024];
	int c, json = 0, active = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'J') {
			json = 1;
		} else if (c == 'A') {
			active = 1;
		} else if (c == 'K') {
			gs_keep_cpython_evals = 1;
		} else if (c == 'h') {
			fputs(gs_usage_text, stdout);
			return 0;
		} else {
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		gs_usage_error("%s", "report needs exactly one recording FILE");
		return 2;
	}
	if (gs_analysis_load(&a, argv[optind], why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	if (a.truncated)
		gs_warn("%s ends in the middle of a record (gilscope or the machine stopped mid-write); "
			"reporting the complete part",
			argv[optind]);
	if (a.records == 0) {
		gs_err("%s holds no events", argv[optind]);
		gs_analysis_free(&a);
		return 1;
	}
	a.active_only = active;
	if (json)
		gs_report_json(&a, stdout);
	else if (blame_only)
		gs_report_blame(&a, stdout, 5);
	else
		gs_report_text(&a, stdout);
	gs_analysis_free(&a);
	return 0;
}

/* `gilscope dump FILE`: the raw records, one per line (for debugging and bug reports). */
static int cmd_dump(int argc, char **argv)
{
	static const char *const names[] = { "?", "META", "GIL_WAIT", "GIL_WRITE", "DROPREQ", "SWITCH_OUT",
					     "SWITCH_IN", "WAKEUP", "FORK", "EXIT", "COMM", "LOST", "THREAD", "END",
					     "PROC_EXIT", "PYFRAME", "PYSTACK", "PYSAMPLE", "COUNTER", "NATFRAME" };
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *payload;
	size_t plen;
	char why[1024];
	int n;
	uint64_t start;

	if (argc != 2) {
		gs_usage_error("%s", "dump needs exactly one recording FILE");
		return 2;
	}
	if (gs_recreader_open(argv[1], &rd, why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	start = gs_recreader_start(rd);
	while ((n = gs_recreader_next(rd, &r, &payload, &plen)) > 0) {
		const char *name = r.type < sizeof(names) / sizeof(names[0]) ? names[r.type] : "UNKNOWN";
		printf("%14.6f %-10s pid=%u tid=%u arg=%d arg64=%#llx", r.time >= start ? (double)(r.time - start) / 1e6 : -1.0,
		       name, r.pid, r.tid, r.arg, (unsigned long long)r.arg64);
		if (plen && (r.type == GS_REC_META || r.type == GS_REC_COMM || r.type == GS_REC_PYFRAME ||
			     r.type == GS_REC_NATFRAME || r.type == GS_REC_COUNTER)) {
			/* payload strings are not trusted to be terminated */
			const char *k = payload;
			size_t kl = strnlen(k, plen);
			printf(" %.*s", (int)kl, k);
			if (r.type != GS_REC_COMM && r.type != GS_REC_COUNTER && kl + 1 < plen)
				printf("=%.*s", (int)strnlen(k + kl + 1, plen - kl - 1), k + kl + 1);
		}
		putchar('\n');
	}
	if (n < 0)
		gs_err("corrupt record");
	if (gs_recreader_truncated(rd))
		printf("(truncated)\n");
	gs_recreader_close(rd);
	return n < 0 ? 1 : 0;
}

/* `gilscope export --format folded --what KIND FILE [-o OUT]` */
static int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' }, { "what", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' }, { "combine", required_argument, NULL, 'c' },
		{ "keep-cpython-evals", no_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const whats[GS_WHAT_N] = { "hold", "wait", "cpu", "offcpu", "blocking", "offgil" };
	const char *format = "folded", *output = NULL, *combine = NULL;
	int what = GS_WHAT_HOLD, c;
	struct gs_analysis a;
	char why[1024];
	FILE *out = stdout;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:w:o:", opts, NULL)) != -1) {
		if (c == 'f') {
			format = optarg;
		} else if (c == 'w') {
			what = -1;
			for (int i = 0; i < GS_WHAT_N; i++)
				if (strcmp(optarg, whats[i]) == 0)
					what = i;
			if (what < 0) {
				gs_usage_error("unknown --what '%s' (hold, wait, cpu, offcpu, blocking, offgil)", optarg);
				return 2;
			}
		} else if (c == 'o') {
			output = optarg;
		} else if (c == 'c') {
			combine = optarg;
			format = "trace-json";
		} else if (c == 'K') {
			gs_keep_cpython_evals = 1;
		} else {
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if (output && strcmp(output, "-") == 0)
		output = NULL; /* -o -: standard output */
	if (strcmp(format, "folded") != 0 && strcmp(format, "svg") != 0 && strcmp(format, "trace-json") != 0 &&
	    strcmp(format, "html") != 0 && strcmp(format, "perfetto") != 0) {
		gs_usage_error("unknown --format '%s' (folded, svg, trace-json, perfetto or html)", format);
		return 2;
	}
	if (optind + 1 != argc) {
		gs_usage_error("%s", "export needs exactly one recording FILE");
		return 2;
	}
	if (strcmp(format, "trace-json") == 0 || strcmp(format, "html") == 0 || strcmp(format, "perfetto") == 0) {
		int err;
		if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
			gs_err("%s", why);
			return 1;
		}
		if (strcmp(format, "html") == 0)
			err = gs_html_report(argv[optind], out, why, sizeof(why));
		else if (strcmp(format, "perfetto") == 0)
			err = gs_perfetto_export(argv[optind], out, why, sizeof(why));
		else
			err = gs_trace_json(argv[optind], combine, out, why, sizeof(why));
		if (err < 0)
			gs_err("%s", why);
		if (output && fclose(out) != 0 && err >= 0) {
			gs_err("writing %s: %s", output, strerror(errno));
			err = -EIO;
		}
		return err < 0 ? 1 : 0;
	}
	if (gs_analysis_load(&a, argv[optind], why, sizeof(why)) < 0) {
		gs_err("%s", why);
		return 1;
	}
	if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
		gs_err("%s", why);
		gs_analysis_free(&a);
		return 1;
	}
	if (!a.stack_samples)
		gs_warn("%s holds no Python stack samples (recorded with --sample-rate 0, or CPython < 3.9)",
			argv[optind]);
	if (strcmp(format, "svg") == 0) {
		static const char *const titles[GS_WHAT_N] = {
			"Python stacks holding the GIL", "Python stacks waiting for the GIL",
			"Python stacks running without the GIL", "Python stacks asleep (blocked, not waiting for the GIL)",
			"Python stacks holding the GIL while other threads waited",
			"Python stacks without the GIL (running or asleep, not waiting for it)",
		};
		char title[1200];
		snprintf(title, sizeof(title), "%s - %.1000s", titles[what], a.command);
		gs_flame_svg(&a, out, (enum gs_stack_what)what, title);
	} else {
		gs_report_folded(&a, out, (enum gs_stack_what)what);
	}
	if (output && fclose(out) != 0) {
		gs_err("writing %s: %s", output, strerror(errno));
		gs_analysis_free(&a);
		return 1;
	}
	gs_analysis_free(&a);
	return 0;
}

/* `gilscope perf2trace {gil,sched} [per4m's options] [-o OUT.json] < perf-script.txt` */
static int cmd_perf2trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },   { "input", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },          { "verbose", no_argument, NULL, 'v' },
		{ "running", no_argument, NULL, 1 },          { "no-running", no_argument, NULL, 1 },
		{ "sleeping", no_argument, NULL, 1 },         { "no-sleeping", no_argument, NULL, 1 },
		{ "as-async", no_argument, NULL, 1 },         { "no-as-async", no_argument, NULL, 1 },
		{ "only-lock", no_argument, NULL, 1 },        { "all-tracepoints", no_argument, NULL, 1 },
		{ "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
	};
	const char *output = "perf.json", *viz = NULL, *mode;
	char tmpl[64] = "/tmp/gilscope-perf2trace-XXXXXX", why[1024];
	struct gs_recwriter *w;
	struct gs_perf2trace_stats st;
	struct gs_analysis a;
	FILE *out;
	int c, fd, wfd = -1, err, quiet = 0;
	uint64_t t0 = gs_now_ns();

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:i:qvh", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'i': viz = optarg; break;
		case 'q': quiet = 1; break;
		case 'v': gs_verbose = 2; break;
		case 1: break; /* per4m's drawing options: gilscope always draws every state */
		case 'h': fputs(gs_usage_text, stdout); return 0;
		default: fprintf(stderr, "Try 'gilscope --help'.\n"); return 2;
		}
	}
	if (optind + 1 != argc || (strcmp(argv[optind], "gil") != 0 && strcmp(argv[optind], "sched") != 0)) {
		gs_usage_error("%s", "perf2trace needs the kind of input: gil or sched (perf script text on stdin)");
		return 2;
	}
	mode = argv[optind];
	/* the intermediate recording: created by mkstemp (O_EXCL, mode 0600) and unlinked at once,
	 * then reached through /proc/self/fd: nobody else can open, replace or see it, and nothing
	 * is left behind whatever happens */
	fd = mkstemp(tmpl);
	if (fd < 0) {
		gs_err("cannot create a temporary file in /tmp: %s", strerror(errno));
		return 1;
	}
	unlink(tmpl);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	snprintf(tmpl, sizeof(tmpl), "/proc/self/fd/%d", fd);
	if ((wfd = dup(fd)) < 0 || (err = gs_recwriter_open_fd(wfd, 0, &w)) < 0) {
		gs_err("cannot write a temporary file in /tmp: %s", strerror(wfd < 0 ? errno : -err));
		close(fd);
		return 1;
	}
	gs_recwriter_meta(w, 0, "command", mode[0] == 'g' ? "perf script (GIL probes)" : "perf script (scheduler)");
	err = gs_perf2trace(stdin, mode, w, &st);
	if (err == 0)
		err = gs_recwriter_set_start(w, st.first_ns);
	if (gs_recwriter_close(w) < 0 || err < 0) {
		gs_err("reading perf script text failed: %s", strerror(err < 0 ? -err : EIO));
		close(fd);
		return 1;
	}
	if (!st.events) {
		gs_err("no %s events in the input (%llu lines, %llu unreadable): is it `perf script` output of %s?", mode,
		       (unsigned long long)st.lines, (unsigned long long)st.skipped,
		       mode[0] == 'g' ? "the python:take_gil/drop_gil probes" : "sched tracepoints");
		close(fd);
		return 1;
	}
	out = gs_fopen_output(output, why, sizeof(why));
	if (!out) {
		gs_err("%s", why);
		close(fd);
		return 1;
	}
	err = gs_trace_json(tmpl, viz, out, why, sizeof(why));
	if (fclose(out) != 0 && err == 0)
		err = -EIO;
	if (err < 0) {
		gs_err("%s", why);
		close(fd);
		return 1;
	}
	if (!quiet && gs_analysis_load(&a, tmpl, why, sizeof(why)) == 0) {
		gs_report_text(&a, stdout);
		gs_analysis_free(&a);
	}
	if (!quiet || st.skipped)
		fprintf(stderr, "gilscope: %llu events from %llu lines (%.1f MB) in %.2f s; %llu lines skipped; wrote %s\n",
			(unsigned long long)st.events, (unsigned long long)st.lines, (double)st.bytes / 1e6,
			(double)(gs_now_ns() - t0) / 1e9, (unsigned long long)st.skipped, output);
	close(fd);
	return 0;
}

/* `gilscope offgil [per4m's options] [-o OUT] [FILE]`: perf script text (stdin or FILE) or a
 * gilscope recording (its Python stacks sampled while waiting). */
static int cmd_offgil(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },        { "strip-take-gil", no_argument, NULL, 't' },
		{ "no-strip-take-gil", no_argument, NULL, 'T' },  { "keep-cpython-evals", no_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },       { "allow-mismatch", no_argument, NULL, 1 },
		{ "pedantic", no_argument, NULL, 1 },             { "input-perf", required_argument, NULL, 'i' },
		{ "input-viztracer", required_argument, NULL, 1 }, { NULL, 0, NULL, 0 },
	};
	struct gs_offgil_opts o = { .strip_take_gil = 1 };
	const char *output = NULL, *input = NULL;
	FILE *in = stdin, *out = stdout;
	char why[512];
	long n;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (strcmp(optarg, "S(GIL)") == 0)
				o.all_sleep = 0;
			else if (strcmp(optarg, "S") == 0)
				o.all_sleep = 1;
			else {
				gs_usage_error("unknown --state '%s' (S(GIL) or S)", optarg);
				return 2;
			}
			break;
		case 't': o.strip_take_gil = 1; break;
		case 'T': o.strip_take_gil = 0; break;
		case 'k': o.keep_evals = 1; break;
		case 'o': output = optarg; break;
		case 'i': input = optarg; break;
		case 1: break;
		default: fprintf(stderr, "Try 'gilscope --help'.\n"); return 2;
		}
	}
	if (optind < argc)
		input = argv[optind];
	if (output && strcmp(output, "-") == 0)
		output = NULL; /* -o -: standard output */
	if (input) {
		char magic[8] = "";
		in = fopen(input, "re");
		if (!in) {
			gs_err("cannot open %s: %s", input, strerror(errno));
			return 1;
		}
		if (fread(magic, 1, 8, in) == 8 && memcmp(magic, GS_REC_MAGIC, 8) == 0) {
			/* a gilscope recording: the Python stacks sampled while waiting, in microseconds */
			struct gs_analysis a;
			fclose(in);
			if (gs_analysis_load(&a, input, why, sizeof(why)) < 0) {
				gs_err("%s", why);
				return 1;
			}
			if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
				gs_err("%s", why);
				gs_analysis_free(&a);
				return 1;
			}
			gs_report_folded_scaled(&a, out, GS_WHAT_WAIT, a.stack_rate_hz ? 1000000 / a.stack_rate_hz : 1000);
			gs_analysis_free(&a);
			if (!output) {
				if (fflush(stdout) == 0)
					return 0;
				gs_err("writing the output: %s", strerror(errno));
				return 1;
			}
			if (fclose(out) != 0) {
				gs_err("writing %s: %s", output, strerror(errno));
				return 1;
			}
			return 0;
		}
		rewind(in);
	}
	if (output && !(out = gs_fopen_output(output, why, sizeof(why)))) {
		gs_err("%s", why);
		if (in != stdin)
			fclose(in);
		return 1;
	}
	n = gs_offgil_perf(in, out, &o, why, sizeof(why));
	if (in != stdin)
		fclose(in);
	if (output && fclose(out) != 0)
		n = -1;
	if (n < 0) {
		gs_err("%s", why);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(gs_usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("gilscope %s\n"
		       "CPython 3.9 to 3.15 (release builds; 3.11 debug builds too). Exercised for real:\n"
		       "  3.9.18, 3.10.13, 3.11.7, 3.12.1, 3.13.0 (pyenv: shared libpython, symbols)\n"
		       "  3.11.2 (Debian: static, stripped; and its debug build), 3.13.5, 3.14.10, 3.15.2 (Debian: static, "
		       "stripped)\n"
		       "Free-threaded builds: detected, thread states only (none available to test).\n",
		       GS_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(gs_usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "record") == 0)
		return gs_cmd_record(argc - 1, argv + 1);
	if (strcmp(argv[1], "offgil") == 0)
		return cmd_offgil(argc - 1, argv + 1);
	if (strcmp(argv[1], "perf2trace") == 0)
		return cmd_perf2trace(argc - 1, argv + 1);
	if (strcmp(argv[1], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "blame") == 0)
		return cmd_blame(argc - 1, argv + 1);
	if (strcmp(argv[1], "dump") == 0)
		return cmd_dump(argc - 1, argv + 1);
	if (strcmp(argv[1], "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	gs_usage_error("unknown command '%s'", argv[1]);
	return 2;
}
