/* router_head.h: classify a peeked request head without consuming it,
 * to pick the library that will own the connection. Pure; no I/O.
 * A head may come a few bytes at a time: router_head_scan looks at each
 * new byte once and says when the whole classification is worth running,
 * so a head sent byte by byte costs linear work, not quadratic. */
#ifndef ANYPUSH_ROUTER_HEAD_H
#define ANYPUSH_ROUTER_HEAD_H

#include <stdbool.h>
#include <stddef.h>

enum head_verdict {
	HEAD_INCOMPLETE, /* wait for more bytes */
	HEAD_HTTP,       /* a request for libmicrohttpd */
	HEAD_WS,         /* a valid WebSocket subscribe for libwebsockets */
	HEAD_SSE,        /* a valid SSE subscribe for libwebsockets */
	HEAD_BAD,        /* not HTTP/1.x: answer 400 and close */
	HEAD_TOO_LARGE,  /* no end of head within the cap: 431 and close */
};

/* What router_head_scan has seen of one stream. Zero it before the first
 * call. */
struct head_scan {
	size_t seen;           /* bytes fed so far */
	unsigned char last[3]; /* the three bytes before the next, newest first */
	bool method_ok;        /* the method and its space have been seen */
	bool ready;
};

/* buf holds the first len bytes the client sent; cap is the most the
 * router will look at. ws_enabled, sse_enabled: whether upgrades and
 * event streams may go to lws. */
enum head_verdict router_head_classify(const char *buf, size_t len, size_t cap,
				       bool ws_enabled, bool sse_enabled);
/* Heads longer than this stay with libmicrohttpd. */
#define LONGPOLL_HEAD_MAX 4096
/* When router_head_classify says HEAD_HTTP: the length of the head if
 * the len bytes are exactly the head of a long poll libwebsockets may
 * hold (lws_longpoll.c): GET /channels/LIST HTTP/1.1 with
 * ?transport=longpoll, every argument as http_longpoll.c would take
 * it, a Host, keep-alive, no body, no upgrade, no Last-Event-ID, and
 * nothing after the head; else 0. Credentials and Origin are not looked
 * at here: the caller checks the Origin, lws the token. */
size_t router_head_longpoll(const char *buf, size_t len);
/* The value of the first header named name (with its colon, as
 * "X-Forwarded-For:") in the complete head among the len bytes, blanks
 * trimmed, its length in *vlen; NULL when absent or the head has not
 * ended. */
const char *router_head_header(const char *buf, size_t len, const char *name,
			       size_t *vlen);
/* Feed the len bytes that follow those already fed. True once
 * router_head_classify on every byte fed so far (and any later ones)
 * would say more than HEAD_INCOMPLETE: the head has ended, is malformed,
 * or has reached cap without ending. Stays true from then on. */
bool router_head_scan(struct head_scan *s, const char *buf, size_t len,
		      size_t cap);

#endif
