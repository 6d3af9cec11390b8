/* transport_sse.h: Server-Sent Events as a technique, whichever library
 * holds the stream: how much one pull takes, when a ping goes, how the
 * stream ends, and the bytes of each (sse_out.h stages them). A host
 * (http_sse.c on libmicrohttpd, lws_sse.c on libwebsockets) asks for
 * bytes when its socket has room and writes what it gets. */
#ifndef ANYPUSH_TRANSPORT_SSE_H
#define ANYPUSH_TRANSPORT_SSE_H

#include "sse_out.h"

#include <stddef.h>

/* One pull: at most this many items and about this many bytes, so a
 * stream behind on a busy channel catches up in large writes and one
 * stream cannot hold the bus lock for long. The items are the host's,
 * sized SSE_BATCH (struct sse_out_src). */
#define SSE_BATCH 16
#define SSE_BATCH_BYTES (64u << 10)
/* Sent when a heartbeat passes with nothing else: the comment keeps
 * proxies from timing out; the event is for EventSource, which never
 * shows comments to scripts, so a client can tell an idle stream from a
 * dead one. */
#define SSE_PING ": ping\nevent: ping\ndata: {}\n\n"

/* What sse_fill found. */
enum sse_fill {
	SSE_FILL_MORE,   /* bytes to write, then ask again */
	SSE_FILL_PARKED, /* nothing at all (no bytes): parked until a wake */
	SSE_FILL_END,    /* the bytes (maybe none) are the last: end the body
			  * once they are written (s->why says why) */
	SSE_FILL_ERROR,  /* close now, without a proper end (slow, gone) */
};

/* Up to max bytes of the stream into buf (*len of them): the welcome,
 * then events as the bus has them, a ping per quiet heartbeat, and the
 * last event when it ends (token expired, Redis never synced, closed by
 * the admin API). Parks the subscriber (bus_pull) only when it has
 * copied nothing. Called on the thread that owns the stream. */
enum sse_fill sse_fill(struct sse_out *s, const struct sse_out_src *src,
		       char *buf, size_t max, size_t *len);

#endif
