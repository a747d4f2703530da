/* fuzz_trace.c - the Trace Event JSON reader behind `export --format trace-json --combine FILE`
 * (trace.c): the input is the combined file (viztracer's JSON), merged into the export of a
 * small fixed recording. */
#include "fuzz.h"

#include "base/recfile.h"
#include "output/trace.h"
#include "base/util.h"

static char recpath[64];

static void cleanup(void)
{
	if (recpath[0])
		unlink(recpath);
}

/* Two threads of one process: the second waits while the first holds the GIL. */
static int make_recording(void)
{
	struct gs_recwriter *w;
	const struct gs_rec recs[] = {
		{ .type = GS_REC_COMM, .pid = 100, .tid = 100, .time = 1000 },
		{ .type = GS_REC_SWITCH_IN, .pid = 100, .tid = 100, .time = 1100 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 100, .arg = 1, .time = 1200 },
		{ .type = GS_REC_FORK, .pid = 100, .tid = 101, .arg = 100, .arg64 = 100, .time = 1300 },
		{ .type = GS_REC_GIL_WAIT, .pid = 100, .tid = 101, .time = 1400 },
		{ .type = GS_REC_DROPREQ, .pid = 100, .tid = 101, .arg = 1, .time = 1500 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 100, .arg = 0, .time = 1600 },
		{ .type = GS_REC_GIL_WRITE, .pid = 100, .tid = 101, .arg = 1, .time = 1700 },
		{ .type = GS_REC_SWITCH_OUT, .pid = 100, .tid = 100, .arg64 = 1, .time = 1800 },
		{ .type = GS_REC_END, .time = 2000 },
	};
	int fd;
	snprintf(recpath, sizeof(recpath), "/tmp/gilscope-fuzz-trace.XXXXXX");
	fd = mkstemp(recpath);
	if (fd < 0)
		return -1;
	close(fd);
	atexit(cleanup);
	if (gs_recwriter_open(recpath, 1000, &w) < 0)
		return -1;
	gs_recwriter_meta(w, 100, "python.version", "3.11.7");
	for (size_t i = 0; i < GS_ARRAY_SIZE(recs); i++)
		gs_recwriter_add(w, &recs[i], recs[i].type == GS_REC_COMM ? "python3" : NULL,
				 recs[i].type == GS_REC_COMM ? 8 : 0);
	return gs_recwriter_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *combine;
	char why[512];

	gs_verbose = 0;
	if (!recpath[0] && make_recording() < 0)
		abort();
	combine = fuzz_file(0, data, size);
	if (!combine)
		return 0;
	(void)gs_trace_json(recpath, combine, fuzz_null(), why, sizeof(why));
	return 0;
}
