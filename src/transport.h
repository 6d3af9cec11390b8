/* transport.h: the pluggable push techniques, one const ops table each.
 * Adding a technique is one new file and one line in transport.c. */
#ifndef ANYPUSH_TRANSPORT_H
#define ANYPUSH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;
struct subscriber;

enum transport_id {
	TRANSPORT_POLL,
	TRANSPORT_LONGPOLL,
	TRANSPORT_SSE,
	TRANSPORT_WS,
	TRANSPORT_COUNT
};

struct transport {
	const char *name; /* the protocol's name: ?transport=NAME */
	enum transport_id id;
	/* Serve a subscribe request that reached libmicrohttpd; called on
	 * every access-handler call for it (again after each resume).
	 * Returns MHD_YES or MHD_NO. MHD thread. */
	int (*serve)(struct http_request *req);
	/* The request is over (MHD's completed notification); release what
	 * serve kept. MHD thread. */
	void (*finish)(struct http_request *req);
	/* The subscriber has nothing to send: stop asking (suspend). Called
	 * under the bus lock, so a wake cannot slip in between. */
	void (*park)(struct subscriber *sub);
	/* A parked subscriber has news, a due timer or must end. Under the bus
	 * lock, from any thread: must not block or write to a socket. */
	void (*wake)(struct subscriber *sub);
	/* End a subscriber that is not parked, promptly, e.g. one that stopped
	 * reading (shutdown(2) its socket, or ask the owning thread). Under
	 * the bus lock; must not block. */
	void (*cut)(struct subscriber *sub);
};

extern const struct transport transport_poll;
extern const struct transport transport_longpoll;
extern const struct transport transport_sse;
extern const struct transport transport_ws;
/* The subscribers of SSE streams served by libwebsockets (not registered:
 * ?transport=sse names transport_sse, which libmicrohttpd serves). */
extern const struct transport transport_sse_lws;
/* The same for long polls served by libwebsockets. */
extern const struct transport transport_longpoll_lws;

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
/* A park, wake or cut that does nothing, for transports that never park. */
void transport_no_op(struct subscriber *sub);
/* serve and finish for the tables of subscribers libmicrohttpd never
 * serves (those held on the libwebsockets loops): never called. */
int transport_no_serve(struct http_request *req);
void transport_no_finish(struct http_request *req);

#endif
