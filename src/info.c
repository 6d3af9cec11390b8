/* A channel's info. The embedded bus answers at once. With --redis the
 * request is suspended and the engine asked (no Redis call on an HTTP
 * thread), as a publish is: Redis knows the epoch, ids and history of a
 * channel whether or not it is in use here, and the other nodes'
 * counts; this node's own counts are added from the bus when the answer
 * is written, fresher than what it last wrote to Redis. */
#include "info.h"

#include "bus.h"
#include "fmt.h"
#include "http.h"
#include "http_auth.h"
#include "http_reply.h"
#include "redis_engine.h"
#include "server.h"
#include "transport.h"
#include "validate.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* An info suspended until the engine answers. The engine's thread fills
 * it in and resumes the connection; its MHD thread then replies. */
struct info_wait {
	struct MHD_Connection *conn;
	atomic_bool ready;
	bool down; /* Redis unreachable */
	struct redis_info in;
	size_t len;
	char name[CHANNEL_NAME_MAX + 1];
};

static int reply(struct http_request *req, const char *name, size_t len,
		 const struct bus_channel_info *in)
{
	char body[512 + CHANNEL_NAME_MAX], epoch[EPOCH_TEXT_MAX];
	size_t n;

	n = fmt_at(body, sizeof body, 0,
		   "{\"channel\":\"%.*s\",\"epoch\":", (int)len, name);
	if (in->epoch) {
		cursor_epoch_text(in->epoch, epoch);
		n = fmt_at(body, sizeof body, n, "\"%s\"", epoch);
	} else {
		n = fmt_at(body, sizeof body, n, "null");
	}
	n = fmt_at(body, sizeof body, n,
		   ",\"last_id\":%llu,\"oldest_id\":%llu,"
		   "\"retained\":%zu,\"subscribers\":{",
		   (unsigned long long)in->last_id,
		   (unsigned long long)in->oldest_id, in->retained);
	/* every registered transport, so a new one shows up by itself */
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		n = fmt_at(body, sizeof body, n, "%s\"%s\":%zu", i ? "," : "",
			   transport_by_id(i)->name, in->subscribers[i]);
	n = fmt_at(body, sizeof body, n, "}}");
	return http_reply_json(req->conn, 200, body, n);
}

/* The engine's thread. */
static void on_info(void *cls, const struct redis_info *in)
{
	struct info_wait *w = cls;

	if (in)
		w->in = *in;
	w->down = in == NULL;
	atomic_store(&w->ready, true);
	MHD_resume_connection(w->conn);
}

static void info_wait_free(struct http_request *req)
{
	free(req->wait);
	req->wait = NULL;
}

static int info_answer(struct http_request *req)
{
	struct info_wait *w = req->wait;
	struct bus_channel_info local, out = { 0 };
	int r;

	if (!atomic_load(&w->ready))
		return MHD_YES; /* not resumed by the engine: keep waiting */
	if (w->down) {
		r = http_reply_error(req->conn, 503, "redis_unavailable",
				     "Redis is unreachable: the channel's "
				     "state is not known; retry");
		info_wait_free(req);
		return r;
	}
	bus_info(req->srv->bus, w->name, w->len, &local);
	if (w->in.exists) {
		out.epoch = w->in.epoch;
		out.last_id = w->in.last_id;
		out.oldest_id = w->in.oldest_id;
		out.retained = w->in.retained;
	} else {
		out.oldest_id = 1;
	}
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		out.subscribers[i] = w->in.subscribers[i] +
				     local.subscribers[i];
	r = reply(req, w->name, w->len, &out);
	info_wait_free(req);
	return r;
}

static const struct http_wait_ops info_wait_ops = {
	.answer = info_answer,
	.free = info_wait_free,
};

int info_serve(struct http_request *req, const char *name, size_t len)
{
	struct bus_channel_info in;
	struct info_wait *w;
	int r;

	if (!channel_name_valid(name, len))
		return http_reply_error(req->conn, 400, "bad_channel",
					"channel names match "
					"[A-Za-z0-9_.:~-]{1,200}");
	/* its counters (who listens, how far it got) are the channel's to
	 * tell: they need what reading it needs */
	r = http_auth_read(req, name, len);
	if (r != -1)
		return r;
	if (req->srv->redis == NULL) {
		bus_info(req->srv->bus, name, len, &in);
		return reply(req, name, len, &in);
	}
	w = xcalloc(1, sizeof *w);
	w->conn = req->conn;
	w->len = len;
	memcpy(w->name, name, len);
	req->wait = w;
	req->wait_ops = &info_wait_ops;
	MHD_suspend_connection(req->conn);
	redis_engine_info(req->srv->redis, name, len, on_info, w);
	return MHD_YES;
}
