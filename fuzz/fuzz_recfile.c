/* fuzz_recfile.c - the recording reader (recfile.c), and everything that consumes its records:
 * the analysis, the reports (text, JSON, blame, folded, SVG) and the exporters (trace JSON,
 * Perfetto, HTML). The input is a whole recording file. */
#include "fuzz.h"

#include "analysis/analysis.h"
#include "output/flame.h"
#include "output/html.h"
#include "output/perfetto.h"
#include "base/recfile.h"
#include "output/report.h"
#include "output/trace.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(0, data, size);
	FILE *out = fuzz_null();
	struct gs_recreader *rd = NULL;
	struct gs_analysis a;
	char why[512];

	gs_verbose = 0;
	if (!path || !out)
		return 0;
	if (gs_recreader_open(path, &rd, why, sizeof(why)) == 0) {
		struct gs_rec r;
		const void *payload;
		size_t plen;
		int n;
		while ((n = gs_recreader_next(rd, &r, &payload, &plen)) == 1)
			if (plen && ((const uint8_t *)payload)[plen - 1] != '\0')
				abort(); /* the reader promises terminated payloads */
		(void)gs_recreader_truncated(rd);
		(void)gs_recreader_start(rd);
		gs_recreader_close(rd);
	} else {
		return 0;
	}
	if (gs_analysis_load(&a, path, NULL, why, sizeof(why)) == 0) {
		/* the tables indexed by frame and stack id stay proportional to the input */
		if (a.nframes > (size / 40 + 1) * 1024 || a.nstacks > (size / 40 + 1) * 1024)
			abort();
		gs_report_text(&a, out);
		gs_report_json(&a, out);
		gs_report_blame(&a, out, 5);
		for (int w = 0; w < GS_WHAT_N; w++) {
			gs_report_folded(&a, out, (enum gs_stack_what)w);
			gs_report_folded_scaled(&a, out, (enum gs_stack_what)w, 1000);
		}
		gs_flame_svg(&a, out, GS_WHAT_HOLD, "fuzz");
		gs_analysis_free(&a);
	}
	(void)gs_trace_json(path, NULL, out, why, sizeof(why));
	(void)gs_perfetto_export(path, out, why, sizeof(why));
	(void)gs_html_report(path, NULL, out, why, sizeof(why));
	return 0;
}
