/* WebSocket subscribers on libwebsockets. Everything here runs on the lws
 * service thread except the park/wake/cut ops, which run under the bus
 * lock on any thread and only queue the session for that thread.
 *
 * One frame per WRITEABLE callback, written straight from the message's
 * shared buffer (its LWS_PRE headroom takes the frame header; lws rewrites
 * it with the same bytes for every subscriber). A reference is kept until
 * the next WRITEABLE or CLOSED, because lws may still hold a pointer into
 * the buffer if the socket took only part of it. */
#include "bus.h"
#include "clientid.h"
#include "cursor.h"
#include "http.h"
#include "http_reply.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "payload.h"
#include "publish.h"
#include "server.h"
#include "transport.h"
#include "ws.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "ws"
#define WS_BATCH 8
#define WS_BATCH_BYTES (256u << 10)
#define URI_MAX 8192

struct ws_session {
	struct subscriber sub;
	struct ws_ready_link link;
	struct ws *ws;
	struct lws *wsi;
	char *path; /* the channel list; chs points into it */
	struct channel_list chs;
	uint64_t cursor[CHANNELS_PER_SUBSCRIPTION_MAX];
	bool attached, welcomed;
	bool cut; /* set under the bus lock, read on the service thread */
	struct message *inflight;
	struct bus_item items[WS_BATCH];
	size_t nitems, next;
	unsigned char *rx;
	size_t rx_len;
	bool rx_binary;
};

static struct ws_session *from_link(struct ws_ready_link *link)
{
	return (struct ws_session *)((char *)link -
				     offsetof(struct ws_session, link));
}

/* ---- transport ops (any thread, under the bus lock) ---- */

static void ws_wake(struct subscriber *sub)
{
	struct ws_session *s = (struct ws_session *)sub;

	ws_ready(s->ws, &s->link);
}

static void ws_cut(struct subscriber *sub)
{
	struct ws_session *s = (struct ws_session *)sub;

	s->cut = true;
	ws_ready(s->ws, &s->link);
}

/* ?transport=ws that reached libmicrohttpd: it carried no upgrade. */
static int ws_serve_http(struct http_request *req)
{
	return http_reply_error(req->conn, 400, "upgrade_required",
				"transport=ws needs a WebSocket upgrade with "
				"Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
}

static void ws_finish_http(struct http_request *req)
{
	(void)req;
}

const struct transport transport_ws = {
	.name = "ws",
	.id = TRANSPORT_WS,
	.serve = ws_serve_http,
	.finish = ws_finish_http,
	.park = transport_no_op,
	.wake = ws_wake,
	.cut = ws_cut,
};

/* ---- service thread ---- */

void transport_ws_service(struct ws_ready_link *link)
{
	struct ws_session *s = from_link(link);

	if (s->cut) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"slow consumer", 13);
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	lws_callback_on_writable(s->wsi);
}

static int write_text(struct ws_session *s, unsigned char *buf, int len)
{
	return lws_write(s->wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_TEXT) <
			       len ?
		       -1 :
		       0;
}

static int write_welcome(struct ws_session *s)
{
	unsigned char buf[LWS_PRE + CURSOR_TEXT_MAX + 128];
	char cursor[CURSOR_TEXT_MAX];
	int n;

	cursor_format(s->cursor, s->chs.count, cursor);
	n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
		     "{\"type\":\"welcome\",\"client\":\"%s\",\"heartbeat\":%lu,"
		     "\"cursor\":\"%s\"}",
		     s->sub.client, ws_server(s->ws)->cfg->heartbeat, cursor);
	s->welcomed = true;
	return write_text(s, buf, n);
}

static int write_item(struct ws_session *s, struct bus_item *it)
{
	unsigned char buf[LWS_PRE + CHANNEL_NAME_MAX + 128];
	struct message *m = it->msg;
	int n;

	s->cursor[it->tap] = it->cursor;
	if (m == NULL) {
		n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
			     "{\"type\":\"gap\",\"channel\":\"%.*s\","
			     "\"last_seen\":%llu,\"cursor\":%llu}",
			     (int)s->chs.len[it->tap], s->chs.name[it->tap],
			     (unsigned long long)it->gap_last,
			     (unsigned long long)it->cursor);
		return write_text(s, buf, n);
	}
	s->inflight = m;
	it->msg = NULL;
	return lws_write(s->wsi, (unsigned char *)message_json(m),
			 m->json_len, LWS_WRITE_TEXT) < (int)m->json_len ?
		       -1 :
		       0;
}

static int close_for(struct ws_session *s, enum sub_end why)
{
	if (why == SUB_END_SLOW)
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"slow consumer", 13);
	else if (why == SUB_END_SHUTDOWN)
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_GOINGAWAY,
				 (unsigned char *)"restarting", 10);
	log_debug("closing ws subscriber %llu (end %d)",
		  (unsigned long long)s->sub.id, (int)why);
	return -1;
}

static int on_writable(struct ws_session *s)
{
	unsigned char ping[LWS_PRE + 16];
	struct bus_pull got;
	int r;

	message_unref(s->inflight);
	s->inflight = NULL;
	if (!s->welcomed) {
		r = write_welcome(s);
	} else if (s->next < s->nitems) {
		r = write_item(s, &s->items[s->next++]);
	} else {
		bus_pull(ws_server(s->ws)->bus, &s->sub, s->items, WS_BATCH,
			 WS_BATCH_BYTES, true, &got);
		s->nitems = got.count;
		s->next = 0;
		if (got.end != SUB_END_NONE)
			return close_for(s, got.end);
		if (got.parked)
			return 0;
		if (got.count == 0) {
			memcpy(ping + LWS_PRE, "{\"type\":\"ping\"}", 15);
			r = write_text(s, ping, 15);
		} else {
			r = write_item(s, &s->items[s->next++]);
		}
	}
	/* ask again: the next round writes, or parks when there is nothing */
	lws_callback_on_writable(s->wsi);
	return r;
}

/* Parse /channels/LIST?since=&client= as lws decoded it. 0 or -1. */
static int parse_request(struct ws_session *s, uint64_t *since, bool *has)
{
	static const char prefix[] = "/channels/";
	char *uri = xmalloc(URI_MAX), arg[CURSOR_TEXT_MAX + 16];
	const char *v;
	int r = -1;

	if (lws_hdr_copy(s->wsi, uri, URI_MAX, WSI_TOKEN_GET_URI) <= 0 ||
	    strncmp(uri, prefix, sizeof prefix - 1) != 0)
		goto out;
	s->path = xstrdup(uri + sizeof prefix - 1);
	if (channel_list_parse(s->path, strlen(s->path), &s->chs) < 0)
		goto out;
	v = lws_get_urlarg_by_name(s->wsi, "since=", arg, sizeof arg);
	*has = v != NULL;
	if (v && cursor_parse(v, strlen(v), s->chs.count, since) < 0)
		goto out;
	v = lws_get_urlarg_by_name(s->wsi, "client=", arg, sizeof arg);
	if (v && !client_id_valid(v, strlen(v)))
		goto out;
	if (v)
		snprintf(s->sub.client, sizeof s->sub.client, "%s", v);
	else
		clientid_new(s->sub.client);
	r = 0;
out:
	free(uri);
	return r;
}

static int on_established(struct ws_session *s, struct lws *wsi)
{
	struct ws *ws = lws_context_user(lws_get_context(wsi));
	uint64_t since[CHANNELS_PER_SUBSCRIPTION_MAX];
	uint64_t hb = ws_server(ws)->cfg->heartbeat * 1000;
	bool has_since = false;

	s->ws = ws;
	s->wsi = wsi;
	if (parse_request(s, since, &has_since) < 0) {
		log_debug("ws request refused after routing");
		return -1;
	}
	s->sub.transport = &transport_ws;
	s->sub.conn = s;
	s->sub.period_ms = hb;
	s->sub.deadline_ms = bus_now_ms() + hb;
	if (bus_attach(ws_server(ws)->bus, &s->sub, &s->chs,
		       has_since ? since : NULL, s->cursor) != BUS_OK) {
		lws_close_reason(wsi, (enum lws_close_status)1013,
				 (unsigned char *)"unavailable", 11);
		return -1;
	}
	s->attached = true;
	metrics_add(&metrics.subscriptions[TRANSPORT_WS], 1);
	lws_callback_on_writable(wsi);
	return 0;
}

static void publish_rx(struct ws_session *s)
{
	struct payload p;
	uint64_t id;

	if (s->rx_binary)
		payload_from_binary(s->rx, s->rx_len, &p);
	else if (payload_from_any((const char *)s->rx, s->rx_len, &p) !=
		 PAYLOAD_OK)
		return;
	if (publish_message(ws_server(s->ws), s->chs.name[0], s->chs.len[0],
			    NULL, s->sub.client, false, &p, &id) != 0)
		log_debug("publish from ws refused");
	payload_free(&p);
}

static int on_receive(struct ws_session *s, const void *in, size_t len)
{
	size_t max = ws_server(s->ws)->cfg->max_message;

	if (lws_is_first_fragment(s->wsi)) {
		s->rx_len = 0;
		s->rx_binary = lws_frame_is_binary(s->wsi);
	}
	if (s->chs.count != 1) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"publish on one channel", 22);
		return -1;
	}
	/* the frame header announces the rest: refuse early, not at the end */
	if (s->rx_len + len + lws_remaining_packet_payload(s->wsi) > max) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"too big", 7);
		return -1;
	}
	s->rx = xrealloc(s->rx, s->rx_len + len + 1);
	memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (lws_is_final_fragment(s->wsi) &&
	    lws_remaining_packet_payload(s->wsi) == 0) {
		publish_rx(s);
		free(s->rx);
		s->rx = NULL;
		s->rx_len = 0;
	}
	return 0;
}

static void on_closed(struct ws_session *s)
{
	if (s->attached)
		bus_detach(ws_server(s->ws)->bus, &s->sub);
	s->attached = false;
	if (s->ws)
		ws_unready(s->ws, &s->link);
	bus_items_release(s->items + s->next, s->nitems - s->next);
	s->nitems = s->next = 0;
	message_unref(s->inflight);
	s->inflight = NULL;
	free(s->path);
	s->path = NULL;
	free(s->rx);
	s->rx = NULL;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct ws_session *s = user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(s, wsi);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s->attached ? on_writable(s) : -1;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(s, in, len);
	case LWS_CALLBACK_CLOSED:
		on_closed(s);
		return 0;
	case LWS_CALLBACK_HTTP:
		return -1; /* the router sends only upgrades here */
	default:
		return 0;
	}
}

const struct lws_protocols *transport_ws_protocols(void)
{
	static const struct lws_protocols protocols[] = {
		{ .name = "anypush.v1",
		  .callback = ws_callback,
		  .per_session_data_size = sizeof(struct ws_session),
		  .rx_buffer_size = 4096 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};
	return protocols;
}
