/* transport.h: the push techniques (poll, long poll, SSE, WebSocket) by
 * name and id, which ones are enabled, and where each is described. */
#ifndef ANYPUSH_TRANSPORT_H
#define ANYPUSH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

enum transport_id {
	TRANSPORT_POLL,
	TRANSPORT_LONGPOLL,
	TRANSPORT_SSE,
	TRANSPORT_WS,
	TRANSPORT_COUNT
};

/* A technique, whichever library holds its sockets: what a client names
 * with ?transport=, and what counters and limits count it as. How it
 * frames and paces messages is its own module, free of any library:
 * transport_sse.c, transport_longpoll.c, poll_format.c (a short poll is
 * one pull and one reply), frame_format.c and ws_mux.c (WebSocket). The
 * libraries serve it through their own tables (http.h's struct
 * mhd_guest, lws_guests.h), and park, wake and cut its subscribers
 * through their host (sub_host.h). */
struct transport {
	const char *name; /* the protocol's name: ?transport=NAME */
	enum transport_id id;
};

extern const struct transport transport_poll;
extern const struct transport transport_longpoll;
extern const struct transport transport_sse;
extern const struct transport transport_ws;

/* The transport of that name, or NULL. */
const struct transport *transport_by_name(const char *name, size_t len);
/* The transport with that id. */
const struct transport *transport_by_id(enum transport_id id);
/* Enable only the comma-separated names, or "all" (all are enabled at
 * start); -1 on an unknown name or an empty list. */
int transport_enable_only(const char *list);
/* Whether transport_enable_only would take the list; changes nothing. */
int transport_list_valid(const char *list);
bool transport_enabled(const struct transport *t);

#endif
