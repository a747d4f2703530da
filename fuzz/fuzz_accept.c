/* fuzz_accept.c - the Accept-header negotiation of serve's /metrics (gs_metrics_accept,
 * output/metrics.c): any scraper, or anything that reaches the port, chooses the header. Checked:
 * weights in 0..1000, the decision consistent with them, and two properties of the rules: a
 * Prometheus-text range of weight 1 named first always wins the text format, an OpenMetrics one
 * named first always wins OpenMetrics, whatever follows. */
#include "fuzz.h"

#include "output/metrics.h"

static void check(const char *accept, int expect)
{
	struct gs_metrics_accept a;
	gs_metrics_accept(accept, &a);
	if (a.openmetrics_q < 0 || a.openmetrics_q > 1000 || a.text_q < 0 || a.text_q > 1000)
		abort();
	if (a.openmetrics && (a.openmetrics_q == 0 || a.openmetrics_q < a.text_q))
		abort();
	if (!a.openmetrics && a.openmetrics_q > a.text_q)
		abort();
	if (expect >= 0 && a.openmetrics != expect)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char text_first[] = "text/plain;version=0.0.4,";
	static const char om_first[] = "application/openmetrics-text;version=1.0.0,";
	char *s = malloc(sizeof(om_first) + size);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	check(s, -1);
	memcpy(s, text_first, sizeof(text_first) - 1);
	memcpy(s + sizeof(text_first) - 1, data, size);
	s[sizeof(text_first) - 1 + size] = '\0';
	check(s, 0);
	memcpy(s, om_first, sizeof(om_first) - 1);
	memcpy(s + sizeof(om_first) - 1, data, size);
	s[sizeof(om_first) - 1 + size] = '\0';
	check(s, 1);
	free(s);
	return 0;
}
