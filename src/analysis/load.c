/* load.c - a whole recording read into an analysis (analysis.h: gs_analysis_load), record by
 * record through gs_analysis_feed, with the exporters' hooks when given. */
#include "analysis/analysis.h"
#include "base/recfile.h"

#include <stdio.h>

int gs_analysis_load(struct gs_analysis *a, const char *path, const struct gs_analysis_opts *opts, char *why,
		     size_t whylen)
{
	return gs_analysis_load_hooked(a, path, opts, NULL, why, whylen);
}

int gs_analysis_load_hooked(struct gs_analysis *a, const char *path, const struct gs_analysis_opts *opts,
			    const struct gs_hooks *hooks, char *why, size_t whylen)
{
	struct gs_recreader *rd;
	struct gs_rec r;
	const void *payload;
	size_t plen;
	int err, n;

	err = gs_recreader_open(path, &rd, why, whylen);
	if (err < 0)
		return err;
	gs_analysis_init(a, gs_recreader_start(rd));
	a->keep_evals = opts && opts->keep_evals;
	a->hooks = hooks;
	while ((n = gs_recreader_next(rd, &r, &payload, &plen)) > 0)
		gs_analysis_feed(a, &r, payload, plen);
	if (n < 0) {
		snprintf(why, whylen, "%s is corrupt after %llu records (%s); reporting what precedes it", path,
			 (unsigned long long)a->records, gs_recreader_error(rd));
		a->truncated = 1;
	}
	if (gs_recreader_truncated(rd))
		a->truncated = 1;
	gs_recreader_close(rd);
	gs_analysis_finish(a, 0);
	return 0;
}
