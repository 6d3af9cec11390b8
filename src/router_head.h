/* router_head.h: classify a peeked request head without consuming it,
 * to pick the library that will own the connection. Pure; no I/O. */
#ifndef ANYPUSH_ROUTER_HEAD_H
#define ANYPUSH_ROUTER_HEAD_H

#include <stdbool.h>
#include <stddef.h>

enum head_verdict {
	HEAD_INCOMPLETE, /* wait for more bytes */
	HEAD_HTTP,       /* a request for libmicrohttpd */
	HEAD_WS,         /* a valid WebSocket subscribe for libwebsockets */
	HEAD_BAD,        /* not HTTP/1.x: answer 400 and close */
	HEAD_TOO_LARGE,  /* no end of head within the cap: 431 and close */
};

/* buf holds the first len bytes the client sent; cap is the most the
 * router will look at. ws_enabled: whether upgrades may go to lws. */
enum head_verdict router_head_classify(const char *buf, size_t len, size_t cap,
				       bool ws_enabled);

#endif
