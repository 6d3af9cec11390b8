/* publish.h: POST /channels/{ch}, the HTTP way in for messages. */
#ifndef ANYPUSH_PUBLISH_H
#define ANYPUSH_PUBLISH_H

#include "redis_engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cursor;
struct http_request;
struct payload;
struct server;

/* Validate and publish the request's body to the channel named by
 * `channel` (the path after /channels/). MHD_YES/NO. */
int publish_serve(struct http_request *req, const char *channel);

/* Publish already-checked data (any thread); 0, or a negative
 * enum bus_error. *at: the channel's epoch and the message's id. With
 * --redis the message is handed to the engine and *at is zero: nobody
 * waits for Redis' answer (a single-channel WebSocket's publish). */
int publish_message(struct server *srv, const char *channel, size_t len,
		    const char *event, const char *from, bool exclude_sender,
		    const struct payload *data, struct cursor *at);
/* With --redis: publish already-checked data (any thread) through the
 * engine, with an idempotency key or NULL, and have done called on the
 * engine's thread once Redis answered. */
void publish_message_remote(struct server *srv, const char *channel,
			    size_t len, const char *event, const char *from,
			    bool exclude_sender, const struct payload *data,
			    const char *key, redis_engine_done_fn *done,
			    void *cls);
/* publish_message with an idempotency key (NULL: none; else checked with
 * idem_key_valid): see bus_publish_keyed for *replayed and
 * BUS_IDEM_CONFLICT. With --redis: BUS_NOT_HERE (the answer comes later:
 * publish_message_remote). */
int publish_message_keyed(struct server *srv, const char *channel,
			  size_t len, const char *event, const char *from,
			  bool exclude_sender, const struct payload *data,
			  const char *key, struct cursor *at, bool *replayed);

#endif
