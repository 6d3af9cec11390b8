/* http_route.h: what a request's text decides before any transport runs
 * (percent-decoding; for a subscribe, the transport, the channel list,
 * the cursor and the client id), free of libmicrohttpd so that the
 * request_path fuzzer runs the very code http.c runs. */
#ifndef ANYPUSH_HTTP_ROUTE_H
#define ANYPUSH_HTTP_ROUTE_H

#include <stddef.h>

struct http_request;
struct transport;

/* A subscribe request's parts as the client sent them; NULL: absent. */
struct http_route_sub {
	const char *list;          /* the path after /channels/, unescaped */
	const char *transport;     /* ?transport= */
	const char *upgrade;       /* the Upgrade header */
	const char *accept;        /* the Accept header */
	const char *last_event_id; /* the Last-Event-ID header */
	const char *since;         /* ?since= */
	const char *client;        /* ?client= */
	const char *presence;      /* ?presence= */
};

/* Why a request is refused: the status, the documented code
 * (docs/protocol.md, Errors) and words for people. */
struct http_route_error {
	unsigned status;
	const char *code;
	const char *message;
	/* the transport picked, refused later or not; NULL when the pick
	 * itself was refused (the request is then no transport's) */
	const struct transport *transport;
};

/* Decoding */
/* Percent-decode s in place, as libmicrohttpd does, except that %00
 * becomes 0x7F (a NUL would cut a name short; 0x7F makes it invalid).
 * The new length. */
size_t http_route_unescape(char *s);

/* Subscribing */
/* Check a subscribe in the documented order (transport, channels,
 * cursor, client) and fill req's path, channels, since, client and
 * presence, then req->transport. 0, or -1 with err set and
 * req->transport left NULL. */
int http_route_subscribe(const struct http_route_sub *in,
			 struct http_request *req,
			 struct http_route_error *err);

#endif
