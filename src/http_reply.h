/* http_reply.h: JSON replies and the headers every reply carries. */
#ifndef ANYPUSH_HTTP_REPLY_H
#define ANYPUSH_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct MHD_Connection;
struct MHD_Response;

/* Exposed-header and no-cache headers. */
void http_reply_common_headers(struct MHD_Response *resp);
/* Whether the request's Origin may be served (origin.h). */
bool http_reply_origin_allowed(struct MHD_Connection *conn);
/* Vary: Origin, and Access-Control-Allow-Origin echoing an allowed
 * Origin. */
void http_reply_cors(struct MHD_Connection *conn, struct MHD_Response *resp);
/* {"error":{"code":CODE,"message":MESSAGE}} with that status. code and
 * message are the gateway's own text, never client input. MHD_YES/NO. */
int http_reply_error(struct MHD_Connection *conn, unsigned status,
		     const char *code, const char *message);
/* 503 {"error":{"code":"over_capacity",...}} with Retry-After: a held
 * stream over --max-streams. */
int http_reply_over_capacity(struct MHD_Connection *conn, const char *message);
/* 429 {"error":{"code":"rate_limited",...}} with Retry-After: retry_s. */
int http_reply_rate_limited(struct MHD_Connection *conn, unsigned retry_s,
			    const char *message);
/* 429 {"error":{"code":"channel_rate_limited",...}} with Retry-After:
 * the request would create channels past --new-channels-per-ip. */
int http_reply_channel_rate_limited(struct MHD_Connection *conn,
				    unsigned retry_s);
/* A JSON body (copied) with that status. MHD_NO, which closes the
 * connection, when MHD cannot make the response. */
int http_reply_json(struct MHD_Connection *conn, unsigned status,
		    const char *json, size_t len);
/* http_reply_json for a publish answered from its idempotency key, with
 * Idempotent-Replayed: true. */
int http_reply_json_replayed(struct MHD_Connection *conn, unsigned status,
			     const char *json, size_t len);
/* Queue resp with the CORS and common headers, then drop our reference. */
int http_reply_queue(struct MHD_Connection *conn, unsigned status,
		     struct MHD_Response *resp);

#endif
