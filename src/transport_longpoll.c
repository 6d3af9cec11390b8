/* Long polling (comet): hold the request, suspended, until something is
 * past the cursor or the timeout passes. The access handler runs again
 * after every resume and decides then. */
#include "capacity.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "poll_format.h"
#include "pollreply.h"
#include "server.h"
#include "transport.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define LONGPOLL_MAX_ITEMS 256
#define LONGPOLL_MAX_BYTES (1u << 20)
#define LONGPOLL_TIMEOUT_MAX 120

/* ?timeout= in whole seconds, 0 < t <= 120; -1 if malformed. */
static long read_timeout(struct http_request *req)
{
	const char *s = http_arg(req, "timeout");
	char *end;
	long t;

	if (s == NULL)
		return (long)req->srv->cfg->longpoll_timeout;
	if (s[0] < '0' || s[0] > '9' || strlen(s) > 6)
		return -1;
	t = strtol(s, &end, 10);
	if (*end || t <= 0)
		return -1;
	return t > LONGPOLL_TIMEOUT_MAX ? LONGPOLL_TIMEOUT_MAX : t;
}

static int longpoll_open(struct http_request *req)
{
	long timeout = read_timeout(req);
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
	/* with --redis, the cursor given at attach may predate the sync;
	 * nothing is pulled until every channel is synced, so that next
	 * carries an epoch for each */
	r = http_sub_start_synced(hs);
	if (r != -1)
		return r;
	bus_pull(req->srv->bus, &hs->sub, items, LONGPOLL_MAX_ITEMS,
		 LONGPOLL_MAX_BYTES, true, &got);
	if (got.end == SUB_END_DEAD || got.end == SUB_END_SLOW)
		return MHD_NO;
	if (got.parked)
		return MHD_YES;
	if (got.end == SUB_END_ADMIN) {
		http_sub_close(hs);
		return http_reply_error(req->conn, 410, "closed_by_admin",
					POLL_FORMAT_ADMIN_ENDED);
	}
	if (got.count == 0 && !bus_start(req->srv->bus, &hs->sub, 0,
					 req->channels.count, hs->cursor)) {
		/* the timeout passed and Redis never gave the epoch */
		http_sub_close(hs);
		return http_reply_error(req->conn, 503, "redis_unavailable",
					"Redis did not answer in time; retry");
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

const struct transport transport_longpoll = {
	.name = "longpoll",
	.id = TRANSPORT_LONGPOLL,
	.serve = longpoll_serve,
	.finish = longpoll_finish,
	.park = http_sub_park,
	.wake = http_sub_wake,
	.cut = http_sub_cut,
};
