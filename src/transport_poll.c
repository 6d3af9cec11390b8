/* Short polling: answer at once with what is past the cursor. The client
 * waits its interval after the reply, so replies never overlap. */
#include "http.h"
#include "http_sub.h"
#include "pollreply.h"
#include "server.h"
#include "transport.h"

#include <microhttpd.h>

/* Enough for most backlogs in one reply; "more" says ask again at once. */
#define POLL_MAX_ITEMS 256
#define POLL_MAX_BYTES (1u << 20)

static int poll_serve(struct http_request *req)
{
	struct bus_item items[POLL_MAX_ITEMS];
	struct http_sub hs = { 0 };
	struct bus_pull got;
	int r = http_sub_open(&hs, req, 0, 0, false);

	if (r != -1)
		return r;
	if (req->client_given)
		bus_poll_seen(req->srv->bus, &req->channels, req->client,
			      TRANSPORT_POLL, req->presence);
	bus_pull(req->srv->bus, &hs.sub, items, POLL_MAX_ITEMS, POLL_MAX_BYTES,
		 false, &got);
	r = pollreply_send(&hs, items, got.count, got.more);
	bus_items_release(items, got.count);
	http_sub_close(&hs);
	return r;
}

static void poll_finish(struct http_request *req)
{
	(void)req;
}

const struct transport transport_poll = {
	.name = "poll",
	.id = TRANSPORT_POLL,
	.serve = poll_serve,
	.finish = poll_finish,
	.park = transport_no_op,
	.wake = transport_no_op,
	.cut = transport_no_op,
};
