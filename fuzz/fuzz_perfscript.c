/* fuzz_perfscript.c - the `perf script` text reader (perfscript.c): every line through
 * gs_perfline_parse (and, as perf map text, gs_perfmap_parse_line), then the whole text through gs_perf2trace in the mode the first byte picks
 * ("gil" or "sched"), and the recording it wrote through the analysis. */
#include "fuzz.h"

#include "analysis/analysis.h"
#include "cpython/native.h"
#include "import/perfscript.h"
#include "base/recfile.h"
#include "base/util.h"

static char outpath[64];

static void cleanup(void)
{
	if (outpath[0])
		unlink(outpath);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gs_perf2trace_stats st;
	struct gs_recwriter *w;
	struct gs_analysis a;
	char why[512], *text;
	const char *mode;
	FILE *in;

	gs_verbose = 0;
	if (!outpath[0]) {
		int fd;
		snprintf(outpath, sizeof(outpath), "/tmp/gilscope-fuzz-perfscript.XXXXXX");
		fd = mkstemp(outpath);
		if (fd < 0)
			abort();
		close(fd);
		atexit(cleanup);
	}
	if (size < 1)
		return 0;
	mode = (data[0] & 1) ? "sched" : "gil";
	data++, size--;

	/* line by line */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = text, *nl; line; line = nl) {
		struct gs_perfline pl;
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		if (gs_perfline_parse(line, &pl) == 0) {
			/* the fields point into the line */
			if (pl.comm < line || pl.comm + pl.comm_len > line + strlen(line) || pl.event < line ||
			    pl.event + pl.event_len > line + strlen(line) || pl.rest < line ||
			    pl.rest > line + strlen(line))
				abort();
		}
		{
			/* the same text as /tmp/perf-PID.map lines (native.c) */
			uint64_t start, msize;
			const char *name;
			if (gs_perfmap_parse_line(line, &start, &msize, &name) == 0 &&
			    (name < line || name > line + strlen(line) || !msize || start + msize < start))
				abort();
		}
	}
	free(text);

	/* the conversion, and what it wrote */
	in = fmemopen((void *)data, size ? size : 1, "r");
	if (!in)
		return 0;
	if (size == 0)
		fgetc(in);
	if (gs_recwriter_open(outpath, 0, &w) == 0) {
		(void)gs_perf2trace(in, mode, w, &st);
		gs_recwriter_close(w);
		if (gs_analysis_load(&a, outpath, NULL, why, sizeof(why)) == 0)
			gs_analysis_free(&a);
	}
	fclose(in);
	return 0;
}
