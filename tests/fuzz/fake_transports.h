/* fake_transports.h: the four transport ops tables reduced to their names
 * and ids, for fuzz targets that link transport.c (its registry names
 * them) without the libraries behind them. Their ops are never called by
 * a target; included by exactly one file of each target. */
#ifndef ANYPUSH_FAKE_TRANSPORTS_H
#define ANYPUSH_FAKE_TRANSPORTS_H

#include "transport.h"

static int no_serve(struct http_request *req)
{
	(void)req;
	return 0;
}

static void no_finish(struct http_request *req)
{
	(void)req;
}

#define FAKE(var, nm, tid)                                      \
	const struct transport var = { .name = nm,              \
				       .id = tid,               \
				       .serve = no_serve,       \
				       .finish = no_finish,     \
				       .park = transport_no_op, \
				       .wake = transport_no_op, \
				       .cut = transport_no_op }
FAKE(transport_poll, "poll", TRANSPORT_POLL);
FAKE(transport_longpoll, "longpoll", TRANSPORT_LONGPOLL);
FAKE(transport_sse, "sse", TRANSPORT_SSE);
FAKE(transport_ws, "ws", TRANSPORT_WS);
#undef FAKE

#endif
