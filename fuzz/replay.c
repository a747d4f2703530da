/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs, without libFuzzer:
 * `replay_NAME [-t SECONDS] [-m N] FILE|DIR...` (every regular file of a directory). Used by
 * `make unit` to keep the bugs the fuzzers found fixed; the Makefile builds it and the library
 * with the sanitizers the fuzzers use (address, undefined, float-cast-overflow), so a reverted fix
 * fails here as it did under libFuzzer. It fails (status 1) when an input cannot be read, when
 * one input runs longer than SECONDS (10 by default, libFuzzer's -timeout of fuzz/run.sh), and
 * when a directory holds fewer than N inputs (1 by default: an empty or misnamed corpus replays
 * nothing and must not pass). */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

static const char *current_input;
static unsigned timeout_s = 10;

static void on_alarm(int sig)
{
	static const char a[] = "replay: ", b[] = " ran longer than the time limit (-t)\n";
	(void)sig;
	if (write(2, a, sizeof(a) - 1) < 0 || write(2, current_input, strlen(current_input)) < 0 ||
	    write(2, b, sizeof(b) - 1) < 0)
		_exit(1);
	_exit(1);
}

static int replay_file(const char *path, unsigned long *n)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f) {
		fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t r;
		if (len == cap) {
			uint8_t *nb;
			if (cap > (64u << 20)) {
				fprintf(stderr, "replay: %s is too big\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		r = fread(buf + len, 1, cap - len, f);
		if (r == 0)
			break;
		len += r;
	}
	fclose(f);
	current_input = path;
	alarm(timeout_s);
	LLVMFuzzerTestOneInput(buf, len);
	alarm(0);
	free(buf);
	(*n)++;
	return 0;
}

static int parse_count(const char *opt, const char *v, unsigned long *out)
{
	char *end;
	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno || end == v || *end || *out > 1000000) {
		fprintf(stderr, "replay: %s '%s' is not a count\n", opt, v);
		return -1;
	}
	return 0;
}

/* Every regular file of directory dir; 0, or -1 when one failed or there were fewer than min. */
static int replay_dir(const char *dir, unsigned long min, unsigned long *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned long before = *n;
	int rc = 0;
	if (!d) {
		fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char p[4096];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p, n) < 0)
			rc = -1;
	}
	closedir(d);
	if (*n - before < min) {
		fprintf(stderr, "replay: %s holds %lu inputs, fewer than the %lu expected (-m)\n", dir, *n - before,
			min);
		rc = -1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	unsigned long n = 0, min = 1, t;
	int rc = 0, i = 1;
	struct sigaction sa = { .sa_handler = on_alarm };
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "-t") == 0 && parse_count("-t", argv[i + 1], &t) == 0 && t > 0)
			timeout_s = (unsigned)t;
		else if (!(strcmp(argv[i], "-m") == 0 && parse_count("-m", argv[i + 1], &min) == 0))
			return 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [-t SECONDS] [-m N] FILE|DIR...\n", argv[0]);
		return 2;
	}
	sigaction(SIGALRM, &sa, NULL);
	for (; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
		} else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], min, &n) < 0 : replay_file(argv[i], &n) < 0) {
			rc = 1;
		}
	}
	printf("replayed %lu inputs\n", n);
	return rc;
}
