/* cmd/dump.c - `gilscope dump FILE`: the raw records of a recording, one per line, for
 * debugging and bug reports. Reads the file with the record reader alone: no analysis. */
#define _GNU_SOURCE
#include "cmd/cmd.h"
#include "base/escape.h"
#include "base/recfile.h"
#include "base/util.h"

#include <string.h>

/* The payload's first string (and second, when two), escaped for the terminal; payload strings
 * are not trusted to be terminated. */
static void print_strings(const char *p, size_t plen, int two)
{
	char buf[1100];
	size_t kl = strnlen(p, plen), n = kl < sizeof(buf) - 1 ? kl : sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	putchar(' ');
	gs_esc_term(stdout, buf);
	if (two && kl + 1 < plen) {
		size_t vl = strnlen(p + kl + 1, plen - kl - 1);
		n = vl < sizeof(buf) - 1 ? vl : sizeof(buf) - 1;
		memcpy(buf, p + kl + 1, n);
		buf[n] = '\0';
		putchar('=');
		gs_esc_term(stdout, buf);
	}
}

int gs_cmd_dump(int argc, char **argv)
{
	static const char *const names[] = { "?",          "META",       "GIL_WAIT", "GIL_WRITE", "DROPREQ",
					     "SWITCH_OUT", "SWITCH_IN",  "WAKEUP",   "FORK",      "EXIT",
					     "COMM",       "LOST",       "THREAD",   "END",       "PROC_EXIT",
					     "PYFRAME",    "STACK",      "SAMPLE",   "COUNTER",   "NATFRAME",
					     "PYNAME",     "CTR_SAMPLE", "CTR_STACK" };
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
		printf("%14.6f %-10s pid=%u tid=%u arg=%d arg64=%#llx",
		       r.time >= start ? (double)(r.time - start) / 1e6 : -1.0, name, r.pid, r.tid, r.arg,
		       (unsigned long long)r.arg64);
		if (r.type == GS_REC_META) {
			struct gs_meta m;
			if (gs_meta_decode(&r, payload, plen, &m) == 0) {
				putchar(' ');
				gs_esc_term(stdout, m.key);
				putchar('=');
				gs_esc_term(stdout, m.text);
			} else {
				fputs(" (malformed)", stdout);
			}
		} else if (plen && (r.type == GS_REC_COMM || r.type == GS_REC_PYFRAME || r.type == GS_REC_NATFRAME ||
				    r.type == GS_REC_COUNTER || r.type == GS_REC_PYNAME)) {
			print_strings(payload, plen, r.type == GS_REC_PYFRAME || r.type == GS_REC_NATFRAME);
		}
		putchar('\n');
	}
	if (n < 0)
		gs_err("corrupt record: %s", gs_recreader_error(rd));
	if (gs_recreader_truncated(rd))
		printf("(truncated)\n");
	gs_recreader_close(rd);
	return n < 0 ? 1 : 0;
}
