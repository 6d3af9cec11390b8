/* Long polling (comet) hosted by libmicrohttpd, for the long polls the
 * router does not give to libwebsockets (lws_longpoll.c holds the plain
 * ones): hold the request, suspended, until something is past the cursor
 * or the timeout passes. The access handler runs again after every resume
 * and asks the technique (transport_longpoll.c) what to do. */
#include "capacity.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "poll_format.h"
#include "pollreply.h"
#include "server.h"
#include "transport.h"
#include "transport_longpoll.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

static int longpoll_open(struct http_request *req)
{
	long timeout = longpoll_timeout(http_arg(req, "timeout"),
					req->srv->cfg->longpoll_timeout);
	struct http_sub *hs;
	int r;

	if (timeout < 0)
		return http_reply_error(req->conn, 400, "bad_timeout",
					"timeout is whole seconds, 1 to 120");
	/* given back in longpoll_finish, which runs only if tstate is set */
	if (!capacity_take_stream(req->srv->cap))
		return http_reply_over_capacity(
			req->conn, "the gateway holds as many streams as it "
				   "takes (--max-streams); retry");
	hs = xcalloc(1, sizeof *hs);
	req->tstate = hs;
	r = http_sub_open(hs, req, bus_now_ms() + (uint64_t)timeout * 1000, 0,
			  false);
	/* only a client that brings its id back can be seen again */
	if (r == -1 && req->client_given)
		bus_poll_seen(req->srv->bus, &req->channels, req->client,
			      TRANSPORT_LONGPOLL, req->presence);
	return r;
}

static int longpoll_serve(struct http_request *req)
{
	struct bus_item items[LONGPOLL_MAX_ITEMS];
	struct http_sub *hs = req->tstate;
	struct bus_pull got;
	int r;

	if (hs == NULL) {
		r = longpoll_open(req);
		hs = req->tstate;
		if (r != -1)
			return r;
	}
	switch (longpoll_step(req->srv->bus, &hs->sub, req->channels.count,
			      hs->cursor, items, &got)) {
	case LONGPOLL_GONE:
		return MHD_NO;
	case LONGPOLL_HOLD:
		return MHD_YES;
	case LONGPOLL_ADMIN:
		http_sub_close(hs);
		return http_reply_error(req->conn, 410, "closed_by_admin",
					POLL_FORMAT_ADMIN_ENDED);
	case LONGPOLL_REDIS:
		http_sub_close(hs);
		return http_reply_error(req->conn, 503, "redis_unavailable",
					"Redis did not answer in time; retry");
	case LONGPOLL_REPLY:
		break;
	}
	/* seen again on the way out: a long hold is still presence */
	if (req->client_given)
		bus_poll_seen(req->srv->bus, &req->channels, req->client,
			      TRANSPORT_LONGPOLL, false);
	r = pollreply_send(hs, items, got.count, got.more);
	bus_items_release(items, got.count);
	http_sub_close(hs);
	return r;
}

static void longpoll_finish(struct http_request *req)
{
	struct http_sub *hs = req->tstate;

	if (hs == NULL)
		return;
	http_sub_close(hs);
	free(hs);
	req->tstate = NULL;
	capacity_give_stream(req->srv->cap);
}

const struct mhd_guest mhd_longpoll = {
	.serve = longpoll_serve,
	.finish = longpoll_finish,
};
