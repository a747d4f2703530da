/* cmd/dump.c - `gilscope dump FILE`: the raw records of a recording, one per line, for
 * debugging and bug reports. Reads the file with the record reader alone: no analysis. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "base/recfile.h"
#include "base/util.h"

#include <string.h>

int gs_cmd_dump(int argc, char **argv)
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

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		gs_usage(stdout);
		return 0;
	}
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
