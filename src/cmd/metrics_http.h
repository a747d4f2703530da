/* metrics_http.h - the HTTP endpoint of `serve` and `record --metrics` (libmicrohttpd, in a
 * thread of its own): GET /metrics answers a snapshot of a gs_live (analysis/live.h) as
 * output/metrics.h writes it, OpenMetrics when the request's Accept header asks for it (several
 * Accept lines joined into one list, RFC 9110 5.3), the
 * Prometheus text format otherwise; / answers a line naming /metrics; anything else 404, and
 * methods other than GET and HEAD 405.
 *
 * Contract: listen is "HOST:PORT", "[IPV6]:PORT" or ":PORT" (loopback, 127.0.0.1); HOST is
 * numeric or a name resolved once. The caller blocks the signals it handles (SIGINT, SIGTERM...)
 * before gs_metrics_http_start, so the server's threads never take them. gs_metrics_http_start
 * returns NULL with one sentence in why when the address is invalid or cannot be bound;
 * gs_metrics_http_stop ends the thread (NULL: no-op). The gs_live stays the caller's.
 */
#ifndef GS_CMD_METRICS_HTTP_H
#define GS_CMD_METRICS_HTTP_H

#include <stddef.h>

#include "analysis/live.h"

struct gs_metrics_http;

struct gs_metrics_http *gs_metrics_http_start(const char *listen, struct gs_live *l, int per_tid, char *why,
					      size_t whylen);
/* The port it listens on (useful with port 0: any free one). */
unsigned gs_metrics_http_port(const struct gs_metrics_http *h);
/* "http://HOST:PORT/metrics" with the port bound, for the messages. */
const char *gs_metrics_http_url(const struct gs_metrics_http *h);
void gs_metrics_http_stop(struct gs_metrics_http *h);

#endif
