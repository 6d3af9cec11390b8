/* host_lws.h: a subscriber held on a libwebsockets loop (a WebSocket
 * session, an SSE stream, a long poll). Its loop thread alone touches the
 * wsi; the bus, under its lock and on any thread, only queues it on the
 * loop's ready list (host_lws, sub_host.h), and the loop calls the
 * link's service when it takes it off. */
#ifndef ANYPUSH_HOST_LWS_H
#define ANYPUSH_HOST_LWS_H

#include "bus.h"
#include "sub_host.h"
#include "ws.h"

#include <stddef.h>

/* First in every lws guest's session data: the bus's subscriber pointer
 * is this struct's, and the ready link leads back to it. */
struct lws_sub {
	struct subscriber sub;
	struct ws_ready_link link; /* link.service set before the first wake */
	struct ws_loop *loop;      /* the loop that owns the wsi */
	bool cut; /* set under the bus lock, read on the loop thread */
};

/* Fill in the subscriber's host and the loop's ready link. */
void lws_sub_init(struct lws_sub *ls, struct ws_loop *loop,
		  enum transport_id (*service)(struct ws_ready_link *link));

/* The lws_sub whose ready link this is. */
static inline struct lws_sub *lws_sub_of_link(struct ws_ready_link *link)
{
	return (struct lws_sub *)((char *)link -
				  offsetof(struct lws_sub, link));
}

#endif
