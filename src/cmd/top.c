/* cmd/top.c - `gilscope top`: records a process (-p PID, or a COMMAND it runs, whose output goes
 * to --command-output) into live figures (analysis/live.h) and shows, every --interval, what its
 * threads did with the GIL (output/top.h): full screen on a terminal, with keys (q quits and
 * detaches, p pauses, s < > change the sort column, arrows and page keys scroll); one plain block
 * per interval when standard output is not a terminal. The recorder runs in the main thread as
 * for `record`; the screen and the keys in a thread of their own, which asks the recorder to
 * stop with a SIGINT to gilscope itself (the recorder's way: -p detaches, a COMMAND gets it). */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "base/util.h"
#include "cmd/live_sink.h"
#include "cmd/targets.h"
#include "output/top.h"
#include "record/recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* Python stacks are sampled to read the threads' names (record/tnames.h) and their wait sites: a
 * wait is placed when a sample falls in it, so a 5 ms wait has a one in four chance. */
#define GS_TOP_SAMPLE_HZ 50

struct top {
	struct gs_live *live;
	int in_fd, out_fd; /* the terminal's (copies of stdin and stdout) */
	int screen;        /* out_fd is a terminal: full screen */
	int keys;          /* in_fd is a terminal too: keys read */
	int wake;          /* eventfd: the recording ended */
	struct gs_top_view view;
	struct gs_live_snap prev, cur;
	int quit; /* q was pressed */
};

static const struct option top_opts[] = {
	GS_TARGETS_LONGOPTS,
	{ "interval", required_argument, NULL, 'i' },
	{ "command-output", required_argument, NULL, 'O' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

/* The screen from the last two snapshots: on a terminal from its top-left corner, each line
 * cleared to its end, the rest of the screen cleared; else a block and a blank line. */
static void draw(struct top *T)
{
	struct winsize ws = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	if (!m)
		return;
	T->view.rows = 0;
	T->view.cols = 80;
	if (T->screen && ioctl(T->out_fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 1) {
		T->view.rows = ws.ws_row - 1;
		T->view.cols = ws.ws_col > 0 ? ws.ws_col : 80;
	} else if (!T->screen) {
		T->view.cols = 1000;
	}
	if (T->screen)
		fputs("\033[H", m);
	if (!T->cur.last_ns)
		fputs("gilscope top: waiting for the first events\n", m);
	else
		gs_top_render(m, T->prev.last_ns ? &T->prev : NULL, &T->cur, &T->view);
	if (fclose(m) != 0)
		return;
	if (T->screen) {
		/* "\n" -> clear to the end of the line, then "\r\n" (the terminal is in raw mode) */
		for (char *line = text, *nl; *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl) {
				write_all(T->out_fd, line, strlen(line));
				break;
			}
			write_all(T->out_fd, line, (size_t)(nl - line));
			write_all(T->out_fd, "\033[K\r\n", 5);
		}
		write_all(T->out_fd, "\033[J", 3);
	} else {
		write_all(T->out_fd, text, len);
		write_all(T->out_fd, "\n", 1);
	}
	free(text);
}

static void take_snapshot(struct top *T)
{
	gs_live_snap_free(&T->prev);
	T->prev = T->cur;
	gs_live_snapshot(T->live, &T->cur, 1);
}

/* One key (or escape sequence) at k; returns the bytes it used. */
static size_t key(struct top *T, const char *k, size_t n)
{
	int page = T->view.rows > 4 ? T->view.rows - 4 : 1;
	if (k[0] == '\033' && n >= 3 && k[1] == '[') {
		if (k[2] == 'A')
			T->view.scroll--;
		else if (k[2] == 'B')
			T->view.scroll++;
		else if ((k[2] == '5' || k[2] == '6') && n >= 4 && k[3] == '~') {
			T->view.scroll += k[2] == '5' ? -page : page;
			return 4;
		}
		return 3;
	}
	switch (k[0]) {
	case 'q':
	case 'Q':
		T->quit = 1;
		break;
	case 'p':
	case 'P':
		T->view.paused = !T->view.paused;
		break;
	case 's':
	case '>':
		T->view.sort = (enum gs_top_sort)((T->view.sort + 1) % GS_TOP_NSORT);
		break;
	case '<':
		T->view.sort = (enum gs_top_sort)((T->view.sort + GS_TOP_NSORT - 1) % GS_TOP_NSORT);
		break;
	default:
		break;
	}
	return 1;
}

static void *ui_main(void *arg)
{
	struct top *T = arg;
	uint64_t period = (uint64_t)(T->view.interval_s * 1e9), next = gs_now_ns() + period;
	draw(T);
	while (!T->quit) {
		struct pollfd pfd[2] = { { .fd = T->wake, .events = POLLIN },
					 { .fd = T->keys ? T->in_fd : -1, .events = POLLIN } };
		uint64_t now = gs_now_ns();
		int timeout = now >= next ? 0 : (int)((next - now) / 1000000) + 1;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break; /* the recording ended */
		if (pfd[1].revents & POLLIN) {
			char k[64];
			ssize_t n = read(T->in_fd, k, sizeof(k));
			for (size_t i = 0; n > 0 && i < (size_t)n;)
				i += key(T, k + i, (size_t)n - i);
			if (!T->quit)
				draw(T);
		} else if (pfd[1].revents) {
			T->keys = 0; /* the terminal is gone */
		}
		if (gs_now_ns() >= next) {
			next += period;
			if (!T->view.paused) {
				take_snapshot(T);
				draw(T);
			}
		}
	}
	if (T->quit)
		kill(getpid(), SIGINT); /* the recorder stops (-p: detaches) */
	return NULL;
}

/* Options into o, T, *targets and *cmd_out; 0, or the exit code (2: usage, -1: --help). */
static int top_parse(int argc, char **argv, struct gs_record_opts *o, struct top *T, struct gs_targets *targets,
		     const char **cmd_out)
{
	int c, t;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:i:qvh", top_opts, NULL)) != -1) {
		char *end;
		if ((t = gs_targets_option(targets, c, optarg)) != 0) {
			if (t == 2)
				return 2;
			continue;
		}
		switch (c) {
		case 'i':
			errno = 0;
			T->view.interval_s = strtod(optarg, &end);
			if (errno || *end || !(T->view.interval_s >= 0.1) || T->view.interval_s > 3600) {
				gs_usage_error("invalid --interval '%s' (seconds, 0.1 to 3600)", optarg);
				return 2;
			}
			break;
		case 'O':
			*cmd_out = optarg;
			break;
		case 'q':
			gs_verbose = 0;
			break;
		case 'v':
			gs_verbose = 2;
			break;
		case 'h':
			gs_usage(stdout);
			return -1;
		default:
			fprintf(stderr, "Try 'gilscope --help'.\n");
			return 2;
		}
	}
	if ((t = gs_targets_apply(targets, o, optind < argc, "top")) != 0)
		return t;
	o->argv = argv + optind;
	return 0;
}

/* A launched command's output goes to path, its input is /dev/null: the screen and the keys are
 * gilscope's (kept in T's copies). 0, or -1 with the error said. */
static int command_fds(const char *path)
{
	char why[512];
	int fd = gs_open_output(path, why, sizeof(why)), in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || in < 0) {
		gs_err("%s", fd < 0 ? why : "cannot open /dev/null");
		if (fd >= 0)
			close(fd);
		if (in >= 0)
			close(in);
		return -1;
	}
	dup2(fd, 1);
	dup2(fd, 2);
	dup2(in, 0);
	close(fd);
	close(in);
	return 0;
}

int gs_cmd_top(int argc, char **argv)
{
	struct gs_record_opts o = { .mmap_pages = 2048, .sample_hz = GS_TOP_SAMPLE_HZ };
	struct top T = { .view = { .interval_s = 1.0 }, .in_fd = -1, .out_fd = -1, .wake = -1 };
	const char *cmd_out = "/dev/null";
	struct gs_targets targets = { 0 };
	struct gs_record_result res;
	struct gs_sink *sink = NULL;
	struct termios saved, raw;
	sigset_t mask;
	pthread_t ui;
	int ret, started = 0;

	ret = top_parse(argc, argv, &o, &T, &targets, &cmd_out);
	if (ret)
		return ret < 0 ? 0 : ret;
	T.out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
	T.in_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	T.wake = eventfd(0, EFD_CLOEXEC);
	if (T.out_fd < 0 || T.wake < 0) {
		gs_err("cannot set the screen up: %s", strerror(errno));
		ret = 1;
		goto cleanup;
	}
	T.screen = isatty(T.out_fd);
	T.keys = T.screen && T.in_fd >= 0 && isatty(T.in_fd) && tcgetattr(T.in_fd, &saved) == 0;
	if (o.argv[0] && command_fds(cmd_out) < 0) {
		ret = 1;
		goto cleanup;
	}
	if (T.keys) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(T.in_fd, TCSANOW, &raw);
	}
	if (T.screen)
		write_all(T.out_fd, "\033[?1049h\033[?25l\033[2J", 18);
	T.live = gs_live_new();
	gs_live_wait_sites(T.live, 1);
	sink = gs_live_sink_new(T.live);
	o.sinks = &sink;
	o.nsinks = 1;
	gs_helper_signals_begin(&mask);
	started = pthread_create(&ui, NULL, ui_main, &T) == 0;
	gs_helper_signals_end(&mask);
	if (!started) {
		gs_err("cannot start the screen's thread");
		ret = 1;
		goto cleanup;
	}
	if (gs_targets_first(&targets, &o) != 0)
		ret = 0; /* stopped before any CPython appeared */
	else
		ret = gs_record(&o, &res);
cleanup:
	if (started) {
		uint64_t one = 1;
		if (write(T.wake, &one, sizeof(one)) < 0)
			gs_debug("waking the screen's thread: %s", strerror(errno));
		pthread_join(ui, NULL);
	}
	if (T.screen)
		write_all(T.out_fd, "\033[?25h\033[?1049l", 14);
	if (T.keys)
		tcsetattr(T.in_fd, TCSANOW, &saved);
	if (started && T.quit && !o.argv[0])
		ret = 0;
	gs_live_snap_free(&T.prev);
	gs_live_snap_free(&T.cur);
	gs_live_sink_free(sink);
	gs_live_free(T.live);
	gs_targets_free(&targets);
	if (T.wake >= 0)
		close(T.wake);
	if (T.in_fd >= 0)
		close(T.in_fd);
	if (T.out_fd >= 0)
		close(T.out_fd);
	return ret;
}
