/* ws.h: the libwebsockets context and its one service thread. Only
 * lws_cancel_service() may be called on lws from other threads, so every
 * request from outside goes through a queue and a cancel. */
#ifndef ANYPUSH_WS_H
#define ANYPUSH_WS_H

#include <stdbool.h>

struct lws_protocols;
struct server;
struct ws;

/* A session's place on the ready list; guarded by the list's lock. */
struct ws_ready_link {
	struct ws_ready_link *prev, *next;
	bool queued;
};

struct ws *ws_start(struct server *srv);
/* Stop the service thread and destroy the context (closes what is left). */
void ws_stop(struct ws *ws);
/* Give lws an accepted socket whose peeked head is a WebSocket upgrade.
 * Any thread; lws owns the fd from here. */
void ws_adopt(struct ws *ws, int fd);
/* Ask the service thread to look at this session (it has news or must
 * end). Any thread, including under the bus lock. */
void ws_ready(struct ws *ws, struct ws_ready_link *link);
/* Take a closing session off the ready list (service thread). */
void ws_unready(struct ws *ws, struct ws_ready_link *link);
/* The server this context serves. */
struct server *ws_server(struct ws *ws);

/* Provided by transport_ws.c. */
const struct lws_protocols *transport_ws_protocols(void);
/* Service thread: a session taken off the ready list. */
void transport_ws_service(struct ws_ready_link *link);

#endif
