/* Short polling: answer at once with what is past the cursor. The client
 * waits its interval after the reply, so replies never overlap.
 *
 * With --redis, "at once" waits for Redis where the answer depends on
 * it: a channel this node has not synced yet (its epoch is not known, so
 * no cursor could carry it), a cursor past the ring (did Redis give it?)
 * or before it (the older ids come from the stream). The request is then
 * suspended (the subscriber's wait_redis) and answered when Redis has,
 * or 503 redis_unavailable past POLL_REDIS_WAIT_MS. */
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "pollreply.h"
#include "server.h"
#include "transport.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdlib.h>

/* Enough for most backlogs in one reply; "more" says ask again at once. */
#define POLL_MAX_ITEMS 256
#define POLL_MAX_BYTES (1u << 20)
/* How long a poll waits on Redis before it is told it is unavailable */
#define POLL_REDIS_WAIT_MS 5000

static int poll_serve(struct http_request *req)
{
	struct bus_item items[POLL_MAX_ITEMS];
	struct http_sub *hs = req->tstate;
	struct bus_pull got;
	int r;

	if (hs == NULL) {
		/* freed in poll_finish, which runs only if tstate is set */
		hs = xcalloc(1, sizeof *hs);
		req->tstate = hs;
		hs->sub.wait_redis = true;
		r = http_sub_open(hs, req, bus_now_ms() + POLL_REDIS_WAIT_MS, 0,
				  false);
		if (r != -1)
			return r;
		if (req->client_given)
			bus_poll_seen(req->srv->bus, &req->channels,
				      req->client, TRANSPORT_POLL,
				      req->presence);
	}
	/* a cursor handed out at attach, before the sync, had no epoch:
	 * take where the taps stand once their channels are synced; until
	 * all are, pull nothing, or a channel synced first would answer
	 * with a next that has no epoch for another */
	r = http_sub_start_synced(hs);
	if (r != -1)
		return r;
	bus_pull(req->srv->bus, &hs->sub, items, POLL_MAX_ITEMS,
		 POLL_MAX_BYTES, false, &got);
	if (got.end == SUB_END_DEAD || got.end == SUB_END_SLOW)
		return MHD_NO;
	if (got.parked)
		return MHD_YES; /* waiting on Redis */
	if (got.count == 0 && got.waiting) {
		http_sub_close(hs);
		return http_reply_error(req->conn, 503, "redis_unavailable",
					"Redis did not answer in time; retry");
	}
	r = pollreply_send(hs, items, got.count, got.more);
	bus_items_release(items, got.count);
	http_sub_close(hs);
	return r;
}

static void poll_finish(struct http_request *req)
{
	struct http_sub *hs = req->tstate;

	if (hs == NULL)
		return;
	http_sub_close(hs);
	free(hs);
	req->tstate = NULL;
}

const struct mhd_guest mhd_poll = {
	.serve = poll_serve,
	.finish = poll_finish,
};
