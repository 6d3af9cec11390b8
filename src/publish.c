/* Publishing over HTTP. The reply is sent after the message is in
 * history and its subscribers are woken, so a 201 is the acknowledgement
 * docs/protocol.md promises. */
#include "publish.h"

#include "abuse.h"
#include "bus.h"
#include "fmt.h"
#include "http.h"
#include "http_reply.h"
#include "idem.h"
#include "message.h"
#include "payload.h"
#include "server.h"
#include "validate.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
	m = message_new(&spec, bus_wall_ms(), bus_now_ms());
	return bus_publish_keyed(srv->bus, channel, len, m, key,
				 key ? strlen(key) : 0, at, replayed);
}

int publish_message(struct server *srv, const char *channel, size_t len,
		    const char *event, const char *from, bool exclude_sender,
		    const struct payload *data, struct cursor *at)
{
	bool replayed;

	return publish_message_keyed(srv, channel, len, event, from,
				     exclude_sender, data, NULL, at,
				     &replayed);
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

/* The client's per-IP publish bucket (abuse.h). */
static bool rate_ok(struct http_request *req, unsigned *retry_s)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[LIMITS_IP_MAX];

	limits_client_ip(ci ? ci->client_addr : NULL,
			 http_header(req, "X-Forwarded-For"), ip);
	return limits_publish(ip, bus_now_ms(), retry_s);
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
	unsigned retry = 1;
	size_t n;

	if (r != -1)
		return r;
	if (!rate_ok(req, &retry))
		return http_reply_rate_limited(
			req->conn, retry,
			"too many publishes from this address "
			"(--publish-rate-per-ip); retry after Retry-After");
	r = read_payload(req, &data);
	if (data.json == NULL)
		return r;
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
