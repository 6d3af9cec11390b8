/* Publishing over HTTP. The reply is sent after the message is in
 * history and its subscribers are woken, so a 201 is the acknowledgement
 * docs/protocol.md promises. */
#include "publish.h"

#include "abuse.h"
#include "bus.h"
#include "fmt.h"
#include "http.h"
#include "http_auth.h"
#include "http_reply.h"
#include "idem.h"
#include "message.h"
#include "payload.h"
#include "redis_engine.h"
#include "redis_store.h"
#include "server.h"
#include "validate.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A publish suspended until the Redis engine answers. The engine's
 * thread fills it in and resumes the connection; the connection's MHD
 * thread then reads it (publish_answer). */
struct publish_wait {
	struct MHD_Connection *conn;
	atomic_bool ready;
	enum redis_engine_status st;
	uint64_t epoch, id;
	char channel[CHANNEL_NAME_MAX + 1];
};

static int publish_answer(struct http_request *req);
static void publish_wait_free(struct http_request *req);

static const struct http_wait_ops publish_wait_ops = {
	.answer = publish_answer,
	.free = publish_wait_free,
};

int publish_message_keyed(struct server *srv, const char *channel,
			  size_t len, const char *event, const char *from,
			  bool exclude_sender, const struct payload *data,
			  const char *key, struct cursor *at, bool *replayed)
{
	char name[CHANNEL_NAME_MAX + 1];
	struct message_spec spec = {
		.channel = name,
		.event = event,
		.from = from,
		.exclude_sender = exclude_sender,
		.data = data,
	};
	struct message *m;

	snprintf(name, sizeof name, "%.*s", (int)len, channel);
	if (srv->redis)
		return BUS_NOT_HERE;
	m = message_new(&spec, bus_wall_ms(), bus_now_ms());
	return bus_publish_keyed(srv->bus, channel, len, m, key,
				 key ? strlen(key) : 0, at, replayed);
}

/* Build the message of a publish, for the engine. */
static struct message *build(const char *channel, size_t len,
			     const char *event, const char *from,
			     bool exclude_sender, const struct payload *data)
{
	char name[CHANNEL_NAME_MAX + 1];
	struct message_spec spec = {
		.channel = name,
		.event = event,
		.from = from,
		.exclude_sender = exclude_sender,
		.data = data,
	};

	snprintf(name, sizeof name, "%.*s", (int)len, channel);
	return message_new(&spec, bus_wall_ms(), bus_now_ms());
}

int publish_message(struct server *srv, const char *channel, size_t len,
		    const char *event, const char *from, bool exclude_sender,
		    const struct payload *data, struct cursor *at)
{
	bool replayed;

	if (srv->redis && bus_shutting_down(srv->bus))
		return BUS_SHUTTING_DOWN;
	if (srv->redis) {
		at->epoch = at->id = 0;
		redis_engine_publish(srv->redis, channel, len,
				     build(channel, len, event, from,
					   exclude_sender, data),
				     NULL, 0, NULL, NULL);
		return 0;
	}
	return publish_message_keyed(srv, channel, len, event, from,
				     exclude_sender, data, NULL, at,
				     &replayed);
}

void publish_message_remote(struct server *srv, const char *channel,
			    size_t len, const char *event, const char *from,
			    bool exclude_sender, const struct payload *data,
			    const char *key, redis_engine_done_fn *done,
			    void *cls)
{
	struct message *m =
		build(channel, len, event, from, exclude_sender, data);

	if (config_live(srv->cfg, idempotency_window) == 0)
		key = NULL; /* checked, not remembered */
	redis_engine_publish(srv->redis, channel, len, m, key,
			     key ? redis_store_message_hash(m) : 0, done, cls);
}

/* The engine's thread: Redis answered (or cannot). */
static void on_stored(void *cls, enum redis_engine_status st, uint64_t epoch,
		      uint64_t id)
{
	struct publish_wait *w = cls;

	w->st = st;
	w->epoch = epoch;
	w->id = id;
	atomic_store(&w->ready, true);
	MHD_resume_connection(w->conn);
}

/* Hand the publish to the engine and suspend the request until it
 * answers: a 201 means Redis stored it, as the embedded bus's 201 means
 * history holds it. */
static int publish_remote(struct http_request *req, const char *channel,
			  const char *event, const char *from,
			  bool exclude_sender, const struct payload *data,
			  const char *key)
{
	size_t len = strlen(channel);
	struct message *m =
		build(channel, len, event, from, exclude_sender, data);
	struct publish_wait *w = xcalloc(1, sizeof *w);

	w->conn = req->conn;
	snprintf(w->channel, sizeof w->channel, "%s", channel);
	req->wait = w;
	req->wait_ops = &publish_wait_ops;
	MHD_suspend_connection(req->conn);
	redis_engine_publish(req->srv->redis, channel, len, m, key,
			     key ? redis_store_message_hash(m) : 0, on_stored,
			     w);
	return MHD_YES;
}

static int reply_published(struct http_request *req, const char *channel,
			   struct cursor at, bool replayed)
{
	char body[CHANNEL_NAME_MAX + 64 + EPOCH_TEXT_MAX], epoch[EPOCH_TEXT_MAX];
	size_t n;

	cursor_epoch_text(at.epoch, epoch);
	n = fmt_at(body, sizeof body, 0,
		   "{\"channel\":\"%s\",\"id\":%llu,\"epoch\":\"%s\"}", channel,
		   (unsigned long long)at.id, epoch);
	if (replayed)
		return http_reply_json_replayed(req->conn, 201, body, n);
	return http_reply_json(req->conn, 201, body, n);
}

static int publish_answer(struct http_request *req)
{
	struct publish_wait *w = req->wait;
	struct cursor at;
	int r;

	if (!atomic_load(&w->ready))
		return MHD_YES; /* not resumed by the engine: keep waiting */
	at.epoch = w->epoch;
	at.id = w->id;
	if (w->st == REDIS_ENGINE_DOWN)
		r = http_reply_error(req->conn, 503, "redis_unavailable",
				     "the message was not stored (Redis is "
				     "unreachable); retry, with an "
				     "Idempotency-Key to be safe");
	else if (w->st == REDIS_ENGINE_CONFLICT)
		r = http_reply_error(req->conn, 422, "idempotency_conflict",
				     "this Idempotency-Key was used for "
				     "another message on this channel");
	else
		r = reply_published(req, w->channel, at,
				    w->st == REDIS_ENGINE_REPLAYED);
	publish_wait_free(req);
	return r;
}

static void publish_wait_free(struct http_request *req)
{
	free(req->wait);
	req->wait = NULL;
}

static bool type_is(const char *type, const char *want)
{
	size_t n = strlen(want);

	return type && strncasecmp(type, want, n) == 0 &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* The body as the JSON text of "data", by Content-Type. */
static int read_payload(struct http_request *req, struct payload *p)
{
	const char *type = http_header(req, "Content-Type");
	const char *body = req->body ? req->body : "";
	enum payload_error err;

	if (type_is(type, "application/octet-stream")) {
		payload_from_binary(body, req->body_len, p);
		return MHD_YES;
	}
	if (type_is(type, "application/json"))
		err = payload_from_json(body, req->body_len, p);
	else
		err = payload_from_text(body, req->body_len, p);
	if (err == PAYLOAD_BAD_JSON)
		return http_reply_error(req->conn, 400, "bad_json",
					"the body is not one well-formed JSON "
					"value");
	if (err == PAYLOAD_BAD_UTF8)
		return http_reply_error(req->conn, 400, "bad_utf8",
					"text and JSON bodies must be UTF-8");
	return MHD_YES;
}

static bool flag_set(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

static int check_request(struct http_request *req, const char *channel,
			 const char *event, const char *from, const char *key)
{
	if (!channel_name_valid(channel, strlen(channel)))
		return http_reply_error(req->conn, 400, "bad_channel",
					"publish to one channel named "
					"[A-Za-z0-9_.:~-]{1,200}");
	if (event && !event_name_valid(event, strlen(event)))
		return http_reply_error(
			req->conn, 400, "bad_event",
			"event names match [A-Za-z0-9_.:-]{1,64}");
	if (event && event_name_reserved(event, strlen(event)))
		return http_reply_error(req->conn, 400, "bad_event",
					"the event names " EVENT_NAMES_RESERVED
					" are the gateway's own");
	if (from && !client_id_valid(from, strlen(from)))
		return http_reply_error(
			req->conn, 400, "bad_client",
			"X-Client-Id must match [A-Za-z0-9_-]{1,64}");
	if (key && !idem_key_valid(key, strlen(key)))
		return http_reply_error(
			req->conn, 400, "bad_idempotency_key",
			"Idempotency-Key must match [A-Za-z0-9_.:-]{1,64}");
	if (req->too_large)
		return http_reply_error(req->conn, 413, "too_large",
					"the message is over the size limit");
	return -1;
}

/* The client's publish buckets (abuse.h): its IP's, and its client id's
 * (X-Client-Id, else the token's sub; none: the IP's alone); and, when
 * the publish would create the channel, its IP's new channels (with
 * --redis a publish goes to Redis and creates no channel here). -1 or
 * the refusal queued; a refused publish spends nothing. */
static int rate_check(struct http_request *req, const char *channel,
		      const char *client)
{
	struct channel_list one = { .count = 1,
				    .name = { channel },
				    .len = { strlen(channel) } };
	char ip[LIMITS_IP_MAX];
	unsigned retry = 1;
	size_t fresh = 0;
	uint64_t now = bus_now_ms();
	enum limits_verdict v;

	http_client_ip(req, ip);
	if (limits_new_channels_on() && req->srv->redis == NULL)
		fresh = bus_channels_missing(req->srv->bus, &one);
	if (!limits_new_channels(ip, fresh, now, &retry))
		return http_reply_channel_rate_limited(req->conn, retry);
	v = limits_publish_from(ip, client, now, &retry);
	if (v != LIMITS_OK)
		limits_new_channels_refund(ip, fresh, now);
	switch (v) {
	case LIMITS_OK:
		break;
	case LIMITS_IP:
		return http_reply_rate_limited(
			req->conn, retry,
			"too many publishes from this address "
			"(--publish-rate-per-ip); retry after Retry-After");
	case LIMITS_CLIENT:
		return http_reply_rate_limited(
			req->conn, retry,
			"too many publishes from this client id "
			"(--publish-rate-per-client); retry after "
			"Retry-After");
	}
	return -1;
}

int publish_serve(struct http_request *req, const char *channel)
{
	const char *event = http_arg(req, "event");
	const char *from = http_header(req, "X-Client-Id");
	const char *key = http_header(req, "Idempotency-Key");
	struct payload data = { 0 };
	struct cursor at = { 0, 0 };
	char body[CHANNEL_NAME_MAX + 64 + EPOCH_TEXT_MAX], epoch[EPOCH_TEXT_MAX];
	int r = check_request(req, channel, event, from, key);
	bool replayed = false;
	char sub[AUTH_SUB_MAX + 1];
	size_t n;

	if (r != -1)
		return r;
	r = http_auth_publish(req, channel, from, sub);
	if (r != -1)
		return r;
	r = rate_check(req, channel, from ? from : sub);
	if (r != -1)
		return r;
	r = read_payload(req, &data);
	if (data.json == NULL)
		return r;
	if (req->srv->redis && bus_shutting_down(req->srv->bus)) {
		/* the drain: refused as the embedded bus refuses it, though
		 * Redis could still take it */
		payload_free(&data);
		return http_reply_error(req->conn, 503, "shutting_down",
					"the gateway is restarting; retry");
	}
	if (req->srv->redis) {
		if (config_live(req->srv->cfg, idempotency_window) == 0)
			key = NULL; /* checked, not remembered */
		r = publish_remote(req, channel, event, from,
				   flag_set(http_arg(req, "exclude_sender")),
				   &data, key);
		payload_free(&data);
		return r;
	}
	r = publish_message_keyed(req->srv, channel, strlen(channel), event,
				  from,
				  flag_set(http_arg(req, "exclude_sender")),
				  &data, key, &at, &replayed);
	payload_free(&data);
	if (r == BUS_SHUTTING_DOWN)
		return http_reply_error(req->conn, 503, "shutting_down",
					"the gateway is restarting; retry");
	if (r == BUS_TOO_MANY_CHANNELS)
		return http_reply_error(req->conn, 503, "over_capacity",
					"too many channels");
	if (r == BUS_IDEM_CONFLICT)
		return http_reply_error(req->conn, 422, "idempotency_conflict",
					"this Idempotency-Key was used for "
					"another message on this channel");
	cursor_epoch_text(at.epoch, epoch);
	n = fmt_at(body, sizeof body, 0,
		   "{\"channel\":\"%s\",\"id\":%llu,\"epoch\":\"%s\"}", channel,
		   (unsigned long long)at.id, epoch);
	if (replayed)
		return http_reply_json_replayed(req->conn, 201, body, n);
	return http_reply_json(req->conn, 201, body, n);
}
