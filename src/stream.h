/* stream.h: a technique that answers a subscribe with one long HTTP body
 * (Server-Sent Events is one; HTTP streaming of JSON lines would be
 * another), as its hosts see it. The hosts serve any stream technique the
 * same way: http_stream.c on libmicrohttpd, lws_stream.c on the
 * libwebsockets loops. They own the socket, the head, the subscriber and
 * its cursor; the technique owns what the body says and how it is paced,
 * in a state of its own (ops->state_size bytes, zeroed by the host). */
#ifndef ANYPUSH_STREAM_H
#define ANYPUSH_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct channel_list;
struct cursor;
struct subscriber;
struct transport;

/* What the host lends the technique for one fill. */
struct stream_env {
	struct bus *bus;
	struct subscriber *sub; /* attached to the channels of chs */
	struct cursor *cursor;  /* the client's, one per channel of chs: the
				* technique advances it past what it sends */
	const struct channel_list *chs;
	const char *client;      /* the client id, for a welcome */
	unsigned long heartbeat; /* seconds (--heartbeat) */
	unsigned long *sent;     /* messages sent, counted */
	long long exp_s; /* the token's exp: the stream ends then; 0: none */
};

/* What fill found. */
enum stream_fill {
	STREAM_MORE,   /* bytes to write, then ask again */
	STREAM_PARKED, /* nothing at all (no bytes): parked until a wake */
	STREAM_END,    /* the bytes (maybe none) are the last: end the body
			* once they are written */
	STREAM_ERROR,  /* close now, without a proper end (slow, gone) */
};

/* A query argument's value as the host decoded it, or NULL; valid until
 * the next call. */
typedef const char *stream_arg_fn(void *ctx, const char *name);

struct stream_ops {
	const struct transport *transport;
	const char *content_type; /* of the 200 */
	size_t state_size;
	/* Read the technique's own query arguments: 0, or -1 with the code
	 * and message of a 400. redis: channels wait for Redis' first sync,
	 * so the technique may bound its own wait; *deadline_ms (the first
	 * timer, monotonic ms; period_ms the heartbeat's) may be brought
	 * forward for it. */
	int (*open)(void *state, stream_arg_fn *arg, void *ctx, bool redis,
		    uint64_t period_ms, uint64_t *deadline_ms,
		    const char **code, const char **message);
	/* Up to max bytes of the body into buf (*len of them). Parks the
	 * subscriber (bus_pull) only when it has copied nothing. On the
	 * thread that owns the stream. */
	enum stream_fill (*fill)(void *state, const struct stream_env *env,
				 char *buf, size_t max, size_t *len);
	/* Why the stream ended (after STREAM_END or STREAM_ERROR), for the
	 * host's log line. */
	const char *(*why)(const void *state);
	/* Release what the state holds (its message references, buffers).
	 * The host calls it once for every state, whether open succeeded,
	 * failed or was never called. */
	void (*close)(void *state);
};

/* The stream techniques: Server-Sent Events (transport_sse.c). */
extern const struct stream_ops stream_sse;

/* The stream technique of that transport, or NULL (stream.c). */
const struct stream_ops *stream_of(const struct transport *t);

#endif
