/* The libwebsockets host: parking is not asking lws for WRITEABLE, so
 * park does nothing; wake and cut run under the bus lock on any thread,
 * where only lws_cancel_service may touch lws, so both queue the
 * subscriber for its loop thread (ws_ready_later), which looks at cut
 * first; the cancel that rouses the loop waits for flush, after the bus
 * has dropped its lock. */
#include "host_lws.h"

static void lws_park(struct subscriber *sub)
{
	(void)sub; /* not asking for WRITEABLE is the park */
}

static void lws_wake(struct subscriber *sub)
{
	struct lws_sub *ls = (struct lws_sub *)sub;

	ws_ready_later(ls->loop, &ls->link);
}

static void lws_cut(struct subscriber *sub)
{
	struct lws_sub *ls = (struct lws_sub *)sub;

	ls->cut = true;
	ws_ready_later(ls->loop, &ls->link);
}

const struct sub_host host_lws = {
	.name = "libwebsockets",
	.park = lws_park,
	.wake = lws_wake,
	.cut = lws_cut,
	.flush = ws_flush,
};

void lws_sub_init(struct lws_sub *ls, struct ws_loop *loop,
		  enum transport_id (*service)(struct ws_ready_link *link))
{
	ls->sub.host = &host_lws;
	ls->sub.conn = ls;
	ls->loop = loop;
	ls->link.service = service;
}
