/* cmd.h - the commands of gilscope's command line, one file each (cmd/NAME.c), dispatched by
 * main.c. A command takes its argv (argv[0] is the command's name), parses its options, runs,
 * and returns the process exit code: 0 ok, 1 runtime failure, 2 usage; `record` of a command
 * returns the command's own status. Only main() exits. */
#ifndef GS_CMD_H
#define GS_CMD_H

extern const char gs_usage_text[];

/* "gilscope: <fmt with arg>" and the --help hint, on stderr. */
void gs_usage_error(const char *fmt, const char *arg);

int gs_cmd_record(int argc, char **argv);

#endif
