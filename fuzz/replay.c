/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs, without libFuzzer:
 * `replay_NAME FILE|DIR...` (every regular file of a directory). Used by `make unit` to keep
 * the crashes the fuzzers found fixed, under the normal compiler and under SANITIZE=. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

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
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	(*n)++;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *de;
			if (!d) {
				rc = 1;
				continue;
			}
			while ((de = readdir(d))) {
				char p[4096];
				if (de->d_name[0] == '.')
					continue;
				snprintf(p, sizeof(p), "%s/%s", argv[i], de->d_name);
				if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p, &n) < 0)
					rc = 1;
			}
			closedir(d);
		} else if (replay_file(argv[i], &n) < 0) {
			rc = 1;
		}
	}
	printf("replayed %lu inputs\n", n);
	return rc;
}
