/* lws_guests.h: what the libwebsockets loops (ws.c) serve, one table per
 * file: WebSocket (lws_ws.c) and the plain HTTP requests the router gives
 * them, streams such as SSE (lws_stream.c) and long polls
 * (lws_longpoll.c). server.c hands them to ws_start; ws.c itself names
 * none, and each of these files uses ws.h, never the other way round. */
#ifndef ANYPUSH_LWS_GUESTS_H
#define ANYPUSH_LWS_GUESTS_H

#include "ws.h"

/* lws_ws.c: the one protocol of every wsi, and its keepalive */
extern const struct lws_protocols lws_ws_protocol;
extern const struct ws_alive_ops lws_ws_alive;
/* lws_stream.c: every stream technique (stream.h) */
extern const struct ws_http_guest lws_stream_guest;
/* lws_longpoll.c */
extern const struct ws_http_guest lws_longpoll_guest;

#endif
