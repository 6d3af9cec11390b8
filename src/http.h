/* http.h: the libmicrohttpd daemon and the per-request state that the
 * HTTP transports, publishing and static files share. */
#ifndef ANYPUSH_HTTP_H
#define ANYPUSH_HTTP_H

#include "abuse.h"
#include "cursor.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct MHD_Connection;
struct http_request;
struct server;
struct transport;

/* A request suspended until the Redis engine answers it (with --redis:
 * a publish, an info, an admin call). The engine's callback resumes the
 * connection; MHD then runs the request again and http.c calls answer,
 * which replies once the answer is there (MHD_YES before that); free
 * runs when the request completes, answered or not. */
struct http_wait_ops {
	int (*answer)(struct http_request *req);
	void (*free)(struct http_request *req);
};

/* How libmicrohttpd serves a subscribe of one transport: the MHD half of
 * each technique (http_poll.c, http_longpoll.c; http_stream.c for every
 * stream technique, stream.h; http.c answers a WebSocket that reached MHD
 * without an upgrade). http.c picks the table by the request's
 * transport. */
struct mhd_guest {
	/* Serve the subscribe; called on every access-handler call for it
	 * (again after each resume). Returns MHD_YES or MHD_NO. */
	int (*serve)(struct http_request *req);
	/* The request is over (MHD's completed notification); release what
	 * serve kept. */
	void (*finish)(struct http_request *req);
};

extern const struct mhd_guest mhd_poll;
extern const struct mhd_guest mhd_longpoll;
extern const struct mhd_guest mhd_stream;

/* One HTTP request, from the first access-handler call to MHD's
 * completed notification. Touched only by the connection's MHD thread. */
struct http_request {
	struct server *srv;
	struct MHD_Connection *conn;
	bool is_post;
	bool http_1_0; /* HTTP/1.0: a body of unknown length is not chunked */
	bool dispatched;
	/* POST body, bounded by --max-message */
	char *body;
	size_t body_len;
	bool too_large;
	/* subscribe */
	const struct transport *transport; /* set once serving a subscribe */
	void *tstate; /* the transport's; freed by finish */
	char *path;   /* copy of the channel list text */
	struct channel_list channels;
	bool has_since;
	struct cursor *since; /* has_since: one per channel; freed here */
	char client[CLIENT_ID_MAX + 1];
	bool client_given; /* it came with ?client=, not made here */
	bool presence;     /* ?presence=1: publish join/leave for this client */
	long long token_exp; /* its token's exp: a stream ends then; 0: none */
	/* what the transport's bytes are counted from (cost_bytes) */
	int fd;
	uint64_t bytes_base;
	/* suspended until Redis answers: the module's state, its ops */
	void *wait;
	const struct http_wait_ops *wait_ops;
	/* for the debug line on close */
	uint64_t opened_ms;
	unsigned long sent; /* messages handed to MHD */
};

/* Start MHD with no listening socket of its own (the router feeds it). */
struct MHD_Daemon *http_start(struct server *srv);
void http_stop(struct MHD_Daemon *d);
/* Wake every MHD thread, workers of --http-threads (see http.c for
 * why); from the router thread. */
void http_poke(struct MHD_Daemon *d, unsigned workers);

/* Value of a query argument or header, NULL if absent. */
const char *http_arg(struct http_request *req, const char *name);
const char *http_header(struct http_request *req, const char *name);
/* The client's IP for the limits (abuse.h): the peer's, or the one a
 * trusted proxy's X-Forwarded-For names. */
void http_client_ip(struct http_request *req, char ip[LIMITS_IP_MAX]);

#endif
