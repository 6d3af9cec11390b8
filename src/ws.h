/* ws.h: the libwebsockets contexts, each on an epoll loop (libev) that
 * its own thread runs. Only lws_cancel_service() may be called on lws
 * from other threads, so every request from outside goes through a queue
 * and a cancel. */
#ifndef ANYPUSH_WS_H
#define ANYPUSH_WS_H

#include "abuse.h"
#include "transport.h"

#include <stdbool.h>
#include <stddef.h>

struct ipconn;
struct lws;
struct lws_protocols;
struct server;
struct ws;
struct ws_alive;
struct ws_alive_ops;
struct ws_loop;

/* --threads at most */
#define WS_LOOPS_MAX 64
/* ws_send_buffer's size */
#define WS_SEND_BUFFER (16u << 10)

/* A session's place on its loop's ready list; guarded by the list's
 * lock. service is what the loop thread calls when it takes the link off
 * the list (a WebSocket session, an SSE stream, a long poll); set before
 * the first ws_ready. It returns the transport to charge: the loop times
 * each batch of services once and shares the CPU among them
 * (cost_cpu_shared). */
struct ws_ready_link {
	struct ws_ready_link *prev, *next;
	bool queued;
	enum transport_id (*service)(struct ws_ready_link *link);
};

/* A plain HTTP request a loop holds for a transport (an SSE stream, a
 * long poll), as its own file serves it. */
struct ws_http_guest {
	const char *name;
	size_t session_size; /* the per-session data its wsi needs */
	/* Loop thread: handle the callback if it is this guest's
	 * (LWS_CALLBACK_HTTP for a head it serves, or a wsi whose session
	 * data is its own); true if handled, with the callback's answer in
	 * *ret. */
	bool (*callback)(struct lws *wsi, int reason, void *user, void *in,
			 size_t len, int *ret);
};

/* What the loops serve, given at start (server.c names them, from
 * lws_guests.h), so this file names no transport. */
struct ws_guests {
	/* the WebSocket protocol: it gets every callback no guest took */
	const struct lws_protocols *ws;
	const struct ws_alive_ops *alive; /* its keepalive's ping, hang-up */
	/* asked in order, NULL-terminated */
	const struct ws_http_guest *const *http;
};

/* Life cycle */
/* Create n contexts one after the other (lws wants that), then start a
 * loop thread for each, serving guests (which must outlive them); NULL
 * on failure. */
struct ws *ws_start(struct server *srv, size_t n,
		    const struct ws_guests *guests);
/* Stop every loop thread; each destroys its context, which closes what
 * is left. */
void ws_stop(struct ws *ws);

/* From other threads */
/* Give lws an accepted socket whose peeked head is a WebSocket upgrade;
 * the loop holding the fewest connections gets it. Any thread; lws owns
 * the fd from here, and ipc (its count per client IP, ipconns.h; may be
 * NULL), which it gives back once when it closes the socket. */
void ws_adopt(struct ws *ws, int fd, struct ipconn *ipc);
/* The same for a long poll whose head (len bytes, malloc'd; lws serves
 * it) the router has read off the socket. */
void ws_adopt_head(struct ws *ws, int fd, char *head, size_t len,
		   struct ipconn *ipc);
/* Ask a session's loop thread to look at it (it has news or must end).
 * Any thread, including under the bus lock. */
void ws_ready(struct ws_loop *loop, struct ws_ready_link *link);
/* ws_ready for a host's wake or cut, under the bus lock: the eventfd
 * write that rouses the loop is left to this thread's next ws_flush,
 * which the bus calls once it has dropped its lock (sub_host.h). */
void ws_ready_later(struct ws_loop *loop, struct ws_ready_link *link);
/* Rouse the loops this thread queued sessions on (ws_ready_later). */
void ws_flush(void);
/* Connections each loop holds now (adopted, not yet destroyed), for
 * /metrics: loads[i] for i < the returned count (0 when ws is NULL). */
size_t ws_loads(struct ws *ws, size_t *loads, size_t max);

/* On a loop thread */
/* Take a closing session off the ready list. */
void ws_unready(struct ws_loop *loop, struct ws_ready_link *link);
/* The loop serving this wsi. */
struct ws_loop *ws_loop_of(struct lws *wsi);
/* Take a served HTTP wsi's socket out of lws without ending the TCP
 * connection: a new descriptor for it, or -1 (then nothing changed).
 * Its count per client IP (ipconns.h) is given back at once. The caller
 * then closes the wsi, which closes only the old number. */
int ws_release(struct lws *wsi);
/* The client's IP for the limits (abuse.h), from the peer and, when the
 * peer is a trusted proxy, X-Forwarded-For (a header longer than 1 KiB
 * is not believed: the peer's address counts). */
void ws_client_ip(struct lws *wsi, char ip[LIMITS_IP_MAX]);
/* The server a loop serves. */
struct server *ws_server(struct ws_loop *loop);
/* The loop's keepalive wheel (ws_alive.h), turned on every wake. */
struct ws_alive *ws_alive_of(struct ws_loop *loop);
/* The loop's buffer for building one write out of several frames or
 * events: WS_SEND_BUFFER bytes, with LWS_PRE of room before it. One per
 * loop, not per connection, so an idle connection holds none; its
 * contents last until the next call on that loop (lws copies what the
 * socket does not take). */
unsigned char *ws_send_buffer(struct ws_loop *loop);

#endif
