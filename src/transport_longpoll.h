/* transport_longpoll.h: long polling (comet) as a technique, whichever
 * library holds the request: how long it may hold, how much one reply
 * carries, and what the bus's answer means (hold on, reply, or end). A
 * host (http_longpoll.c on libmicrohttpd, lws_longpoll.c on
 * libwebsockets) writes the reply its way; the body is poll_format's. */
#ifndef ANYPUSH_TRANSPORT_LONGPOLL_H
#define ANYPUSH_TRANSPORT_LONGPOLL_H

#include "bus.h"

#include <stddef.h>

/* The most one reply carries; the client asks again from its next. */
#define LONGPOLL_MAX_ITEMS 256
#define LONGPOLL_MAX_BYTES (1u << 20)
/* ?timeout= past this is taken as this (seconds) */
#define LONGPOLL_TIMEOUT_MAX 120

/* What the held request does now. */
enum longpoll_step {
	LONGPOLL_HOLD,  /* parked: wait for the host's wake */
	LONGPOLL_REPLY, /* reply with the items pulled (maybe none: the hold
			 * is over); got->end == SUB_END_SHUTDOWN: then end
			 * the connection */
	LONGPOLL_ADMIN, /* 410 closed_by_admin (POLL_FORMAT_ADMIN_ENDED) */
	LONGPOLL_REDIS, /* 503 redis_unavailable: the hold is over and Redis
			 * never gave an epoch */
	LONGPOLL_GONE,  /* the subscriber ended (peer gone, slow): close */
};

/* ?timeout= (NULL: not given) in whole seconds, 0 < t, at most
 * LONGPOLL_TIMEOUT_MAX; dflt when not given; -1 if malformed. */
long longpoll_timeout(const char *arg, unsigned long dflt);
/* Decide: with --redis, nothing is pulled until every channel of the
 * subscription (nch, with the client's cursor) is synced, so that next
 * carries an epoch for each; then pull up to LONGPOLL_MAX_ITEMS into
 * items (the caller releases got->count of them) and park if there is
 * nothing. On the thread that owns the request. */
enum longpoll_step longpoll_step(struct bus *bus, struct subscriber *sub,
				 size_t nch, struct cursor *cursor,
				 struct bus_item *items, struct bus_pull *got);

#endif
