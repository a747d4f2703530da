/* cmd.h - the commands of gilscope's command line, one file each (cmd/NAME.c), dispatched by
 * main.c through its table of commands. A command takes its argv (argv[0] is the command's name),
 * parses its options, runs, and returns the process exit code: 0 ok, 1 runtime failure, 2 usage;
 * `record` of a command returns the command's own status. Every command answers -h/--help with
 * the usage on stdout and 0. Options reach the modules as arguments (struct gs_analysis_opts,
 * struct gs_record_opts ...), never as globals, except the message level gs_verbose. Only main()
 * exits. */
#ifndef GS_CMD_H
#define GS_CMD_H

#include <stdio.h>

/* The whole usage: synopses, every command of the table with its summary, options, examples. */
void gs_usage(FILE *out);

/* "gilscope: <fmt with arg>" and the --help hint, on stderr. */
void gs_usage_error(const char *fmt, const char *arg);

int gs_cmd_record(int argc, char **argv);     /* cmd/record.c */
int gs_cmd_report(int argc, char **argv);     /* cmd/report.c */
int gs_cmd_blame(int argc, char **argv);      /* cmd/report.c */
int gs_cmd_export(int argc, char **argv);     /* cmd/export.c */
int gs_cmd_dump(int argc, char **argv);       /* cmd/dump.c */
int gs_cmd_perf2trace(int argc, char **argv); /* cmd/perf2trace.c */
int gs_cmd_offgil(int argc, char **argv);     /* cmd/offgil.c */
int gs_cmd_diff(int argc, char **argv);       /* cmd/diff.c */
int gs_cmd_serve(int argc, char **argv);      /* cmd/serve.c */
int gs_cmd_top(int argc, char **argv);        /* cmd/top.c */

/* Around the start of a helper thread (the HTTP server, top's screen): blocks the signals the
 * recorder takes through its signalfd (SIGINT, SIGTERM, SIGHUP, SIGQUIT) and SIGPIPE in the
 * calling thread, saving its mask in old, so the threads started meanwhile never take them; then
 * gs_helper_signals_end restores the mask (a launched command inherits gilscope's mask as it
 * was). cmd/serve.c. */
#include <signal.h>
void gs_helper_signals_begin(sigset_t *old);
void gs_helper_signals_end(const sigset_t *old);

#endif
