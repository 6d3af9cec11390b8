/* Every error is JSON with a stable code, so clients can branch on it
 * (a fallback on transport_disabled, a retry on over_capacity). */
#include "http_reply.h"

#include "abuse.h"

#include "fmt.h"
#include "metrics.h"
#include "origin.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* seconds; the capacity comes back as soon as any stream ends */
#define RETRY_AFTER "1"

void http_reply_common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Access-Control-Expose-Headers",
				"X-Client-Id, Idempotent-Replayed");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
}

bool http_reply_origin_allowed(struct MHD_Connection *conn)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 "Origin");
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       "Host");

	return origin_allowed(origin, origin ? strlen(origin) : 0, host,
			      host ? strlen(host) : 0);
}

/* The page's own origin echoed, never "*": a reply then depends on the
 * request's Origin, which caches must know (Vary). A refused origin gets
 * no CORS header, so its page cannot read the 403 either. */
void http_reply_cors(struct MHD_Connection *conn, struct MHD_Response *resp)
{
	const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							 "Origin");

	MHD_add_response_header(resp, "Vary", "Origin");
	if (origin && http_reply_origin_allowed(conn))
		MHD_add_response_header(resp, "Access-Control-Allow-Origin",
					origin);
}

int http_reply_queue(struct MHD_Connection *conn, unsigned status,
		     struct MHD_Response *resp)
{
	enum MHD_Result r;

	http_reply_cors(conn, resp);
	http_reply_common_headers(resp);
	r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static int reply_json(struct MHD_Connection *conn, unsigned status,
		      const char *json, size_t len, bool replayed)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		len, (void *)json, MHD_RESPMEM_MUST_COPY);

	/* out of memory: closing the connection is the one answer left */
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (replayed)
		MHD_add_response_header(resp, "Idempotent-Replayed", "true");
	return http_reply_queue(conn, status, resp);
}

int http_reply_json(struct MHD_Connection *conn, unsigned status,
		    const char *json, size_t len)
{
	return reply_json(conn, status, json, len, false);
}

int http_reply_json_replayed(struct MHD_Connection *conn, unsigned status,
			     const char *json, size_t len)
{
	return reply_json(conn, status, json, len, true);
}

int http_reply_error(struct MHD_Connection *conn, unsigned status,
		     const char *code, const char *message)
{
	char body[512];
	size_t n = fmt_at(body, sizeof body, 0,
			  "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			  code, message);

	metrics_add(&metrics.http_errors, 1);
	return http_reply_json(conn, status, body, n);
}

int http_reply_over_capacity(struct MHD_Connection *conn, const char *message)
{
	char body[512];
	size_t n = fmt_at(body, sizeof body, 0,
			  "{\"error\":{\"code\":\"over_capacity\","
			  "\"message\":\"%s\"}}",
			  message);
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		n, body, MHD_RESPMEM_MUST_COPY);

	metrics_add(&metrics.http_errors, 1);
	metrics_add(&metrics.over_capacity, 1);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Retry-After", RETRY_AFTER);
	return http_reply_queue(conn, 503, resp);
}

/* 429 code with Retry-After, counted in counter too. */
static int too_many(struct MHD_Connection *conn, const char *code,
		    atomic_ullong *counter, unsigned retry_s,
		    const char *message)
{
	char body[512], retry[16];
	size_t n = fmt_at(body, sizeof body, 0,
			  "{\"error\":{\"code\":\"%s\","
			  "\"message\":\"%s\"}}",
			  code, message);
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		n, body, MHD_RESPMEM_MUST_COPY);

	metrics_add(&metrics.http_errors, 1);
	metrics_add(counter, 1);
	if (resp == NULL)
		return MHD_NO;
	snprintf(retry, sizeof retry, "%u", retry_s);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Retry-After", retry);
	return http_reply_queue(conn, 429, resp);
}

int http_reply_rate_limited(struct MHD_Connection *conn, unsigned retry_s,
			    const char *message)
{
	return too_many(conn, "rate_limited", &metrics.rate_limited, retry_s,
			message);
}

int http_reply_channel_rate_limited(struct MHD_Connection *conn,
				    unsigned retry_s)
{
	return too_many(conn, "channel_rate_limited",
			&metrics.channel_rate_limited, retry_s,
			LIMITS_CHANNELS_TEXT);
}
