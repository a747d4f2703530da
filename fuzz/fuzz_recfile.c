/* fuzz_recfile.c - the recording reader (recfile.c), and everything that consumes its records:
 * the analysis, the reports (text, JSON, blame, folded, SVG) and the exporters (trace JSON,
 * Perfetto, HTML). The input is a whole recording file, of any version. A version 3 file is read
 * as it is (the block checksums then reject most mutations), then with every block's checksum
 * recomputed, so that mutations reach the block decoder and everything after it. */
#include "fuzz.h"

#include "analysis/analysis.h"
#include "output/flame.h"
#include "output/html.h"
#include "output/perfetto.h"
#include "base/recblock.h"
#include "base/recfile.h"
#include "output/report.h"
#include "output/trace.h"
#include "base/util.h"

/* Recomputes the checksum of every whole block of a v3 file in place. */
static void fix_checksums(uint8_t *d, size_t size)
{
	uint32_t hs;
	if (size < GS_REC_HEADER_SIZE || d[8] != 3)
		return;
	memcpy(&hs, d + 12, 4);
	for (size_t off = hs; off <= size && size - off >= GS_RECBLOCK_HEADER;) {
		uint32_t len, crc;
		memcpy(&len, d + off + 4, 4);
		if (len > size - off - GS_RECBLOCK_HEADER)
			break;
		crc = gs_recblock_crc(d + off, d + off + GS_RECBLOCK_HEADER, len);
		memcpy(d + off + 12, &crc, 4);
		off += GS_RECBLOCK_HEADER + (size_t)len;
	}
}

/* Reads every record, checking the reader's promises; 0, or -1 when the file does not open. */
static int read_all(const char *path)
{
	struct gs_recreader *rd = NULL;
	struct gs_rec r;
	const void *payload;
	size_t plen;
	char why[512];
	int n;
	if (gs_recreader_open(path, &rd, why, sizeof(why)) != 0)
		return -1;
	(void)gs_recreader_seek(rd, UINT64_MAX / 2); /* v3: walks the block headers */
	(void)gs_recreader_seek(rd, 0);
	while ((n = gs_recreader_next(rd, &r, &payload, &plen)) == 1) {
		if (plen && ((const uint8_t *)payload)[plen - 1] != '\0')
			abort(); /* the reader promises terminated payloads */
		if (plen != (size_t)r.size - sizeof(r) || (plen & 7))
			abort(); /* and sizes as version 2 has them */
	}
	if (n < 0 && (gs_recreader_next(rd, &r, &payload, &plen) != n || !gs_recreader_error(rd)[0]))
		abort(); /* an error stays, with a why */
	(void)gs_recreader_truncated(rd);
	(void)gs_recreader_start(rd);
	gs_recreader_close(rd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(0, data, size);
	FILE *out = fuzz_null();
	struct gs_analysis a;
	char why[512];
	uint8_t *fixed;

	gs_verbose = 0;
	if (!path || !out)
		return 0;
	if (read_all(path) < 0)
		return 0;
	fixed = malloc(size ? size : 1);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fix_checksums(fixed, size);
	path = fuzz_file(1, fixed, size);
	free(fixed);
	if (!path || read_all(path) < 0)
		return 0;
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
