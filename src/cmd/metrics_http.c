/* metrics_http.c - /metrics over libmicrohttpd (metrics_http.h). */
#define _GNU_SOURCE
#include "cmd/metrics_http.h"
#include "base/util.h"
#include "output/metrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct gs_metrics_http {
	struct MHD_Daemon *d;
	struct gs_live *live;
	int per_tid;
	unsigned port;
	char url[320]; /* http://HOST:PORT/metrics */
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
			      enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

struct joined {
	char *s; /* NULL: no Accept line yet */
	size_t len;
};

/* Joins the Accept lines into one comma-separated list (RFC 9110 5.3: several lines of a list
 * field mean their values joined by commas). */
static enum MHD_Result join_accept(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct joined *j = cls;
	size_t n = value ? strlen(value) : 0;
	(void)kind;
	if (!key || strcasecmp(key, MHD_HTTP_HEADER_ACCEPT) != 0)
		return MHD_YES;
	j->s = gs_realloc_array(j->s, j->len + n + 2, 1);
	if (j->len)
		j->s[j->len++] = ',';
	memcpy(j->s + j->len, value ? value : "", n);
	j->len += n;
	j->s[j->len] = '\0';
	return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	static char index_page[] = "gilscope: the GIL metrics are at /metrics\n";
	static char not_found[] = "not found: the GIL metrics are at /metrics\n";
	static char bad_method[] = "only GET and HEAD\n";
	struct gs_metrics_http *h = cls;
	struct gs_live_snap s;
	struct joined accept = { NULL, 0 };
	char *text;
	size_t len;
	int om;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method, strlen(bad_method),
			      MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/") == 0)
		return answer(c, MHD_HTTP_OK, "text/plain", index_page, strlen(index_page), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return answer(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found, strlen(not_found),
			      MHD_RESPMEM_PERSISTENT);
	MHD_get_connection_values(c, MHD_HEADER_KIND, join_accept, &accept);
	om = gs_metrics_wants_openmetrics(accept.s);
	free(accept.s);
	gs_live_snapshot(h->live, &s, 0);
	text = gs_metrics_render(&s, om, h->per_tid, &len);
	gs_live_snap_free(&s);
	if (!text)
		return MHD_NO;
	return answer(c, MHD_HTTP_OK, om ? GS_METRICS_OPENMETRICS_TYPE : GS_METRICS_PROMETHEUS_TYPE, text, len,
		      MHD_RESPMEM_MUST_FREE);
}

/* HOST:PORT into host and port (host "" for ":PORT"). 0, or -1 when malformed. */
static int split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = listen;
	size_t n;
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');
		if (!close || close[1] != ':')
			return -1;
		h = listen + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(listen, ':');
		if (!colon)
			return -1;
		n = (size_t)(colon - listen);
	}
	if (n >= hostlen || strlen(colon + 1) >= portlen || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

struct gs_metrics_http *gs_metrics_http_start(const char *listen, struct gs_live *l, int per_tid, char *why,
					      size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	struct gs_metrics_http *h = NULL;
	char host[256], port[16];
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int err;
	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0 || atoi(port) > 65535) {
		snprintf(why, whylen, "invalid --listen '%s' (HOST:PORT, [IPV6]:PORT or :PORT)", listen);
		return NULL;
	}
	if ((err = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &ai)) != 0) {
		snprintf(why, whylen, "--listen '%s': cannot resolve '%s' (%s)", listen, host, gai_strerror(err));
		return NULL;
	}
	h = gs_calloc(1, sizeof(*h));
	h->live = l;
	h->per_tid = per_tid;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!h->d) {
		snprintf(why, whylen, "cannot serve metrics at --listen '%s' (address in use, or not this host's)",
			 listen);
		free(h);
		return NULL;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : (unsigned)atoi(port);
	snprintf(h->url, sizeof(h->url), strchr(host, ':') ? "http://[%s]:%u/metrics" : "http://%s:%u/metrics",
		 host[0] ? host : "127.0.0.1", h->port);
	return h;
}

unsigned gs_metrics_http_port(const struct gs_metrics_http *h) { return h->port; }

const char *gs_metrics_http_url(const struct gs_metrics_http *h) { return h->url; }

void gs_metrics_http_stop(struct gs_metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}
