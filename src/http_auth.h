/* http_auth.h: auth.c's checks on libmicrohttpd requests (subscribe,
 * info, publish, the admin API), each refusal a documented JSON error. */
#ifndef ANYPUSH_HTTP_AUTH_H
#define ANYPUSH_HTTP_AUTH_H

#include "auth.h"

struct http_request;

/* -1: go on; else the MHD result of the refusal queued. */
/* A routed subscribe: its channels and client id; a token's sub becomes
 * the client id when the request named none. */
int http_auth_subscribe(struct http_request *req);
/* A read of one channel's counters (GET /channels/X/info): what a
 * subscribe to it needs. */
int http_auth_read(struct http_request *req, const char *channel, size_t len);
/* A publish to channel, with the X-Client-Id it names (NULL: none); the
 * token's sub into sub ("" for none, and in open mode). */
int http_auth_publish(struct http_request *req, const char *channel,
		      const char *from, char sub[AUTH_SUB_MAX + 1]);
/* The API key, for the admin API and /metrics. */
int http_auth_admin(struct http_request *req);

#endif
