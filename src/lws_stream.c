/* Streams on the libwebsockets loops: the host of any stream technique
 * (stream.h; Server-Sent Events is the one today) for the requests the
 * router has checked in full (router_head.c) and sent here with a stream
 * slot already taken; anything doubtful goes to libmicrohttpd, whose
 * http_stream.c answers the JSON error or serves it.
 *
 * Why here and not on libmicrohttpd: MHD 0.9.75 keeps its whole
 * connection pool (--http-memory) for as long as a reply streams, so a
 * held SSE stream cost 15 KB of RSS (bench/idle_mem.py). Here an idle
 * stream keeps the wsi, this struct and the technique's state: lws's
 * header table (8 KiB) is given back once the head is answered, and the
 * write buffer is the loop's (ws_send_buffer).
 *
 * The body is what the technique gives, in chunked encoding over HTTP/1.1
 * and as a plain body over HTTP/1.0. Everything runs on the stream's loop
 * thread except host_lws's wake and cut, which run under the bus lock on
 * any thread and only queue the stream for it. */
#include "auth.h"
#include "bus.h"
#include "clientid.h"
#include "cost.h"
#include "cursor.h"
#include "host_lws.h"
#include "log.h"
#include "lws_auth.h"
#include "lws_guests.h"
#include "lws_held.h"
#include "metrics.h"
#include "server.h"
#include "stream.h"
#include "transport.h"
#include "validate.h"
#include "watcher.h"
#include "ws.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_PREFIX "stream"
/* writes per WRITEABLE, each at most the loop's buffer */
#define WRITES_PER_CALLBACK 8
/* room before a chunk's data for its size line: 8 hex digits, CRLF */
#define CHUNK_HEAD 10
#define HEAD_MAX 1024

/* lws's per-session data of a stream's wsi; zeroed by lws. The subscriber
 * comes first: its transport (one with a stream_of) tells a stream's wsi
 * from a WebSocket one. */
struct lws_stream {
	struct lws_sub h; /* first: the bus's subscriber is this */
	struct lws *wsi;
	unsigned retry_after; /* seconds, for a 429 reply_error; 0: none */
	char *path;           /* the channel list */
	size_t nch;
	struct cursor *cursor; /* as the client has it, one per channel */
	const struct stream_ops *ops; /* the technique */
	void *state;                  /* its state: ops->state_size */
	struct cost_tally bytes; /* written to the socket, counted */
	uint64_t opened_ms;
	unsigned long sent; /* messages */
	const char *why;    /* for the close line; NULL: the peer or the link */
	bool opened;        /* the HTTP callback came */
	bool attached;      /* to the bus */
	bool detached;      /* lws's header table given back */
	bool chunked;       /* HTTP/1.1: the body is chunked */
	bool killing;       /* cut seen on the loop thread: the wsi is ending */
	bool closing;       /* the last bytes are written: close when sent */
	bool watched;       /* fd is registered with the watcher */
	int fd;
	long long exp_s; /* the token's exp: the stream ends then; 0: none */
};

static struct lws_stream *from_link(struct ws_ready_link *link)
{
	return (struct lws_stream *)lws_sub_of_link(link);
}

/* ---- loop thread: the text ---- */

/* Up to max bytes into buf (*len), as the technique has them. */
static enum stream_fill fill(struct lws_stream *st, char *buf, size_t max,
			     size_t *len)
{
	struct server *srv = ws_server(st->h.loop);
	struct channel_list chs;
	struct stream_env env = {
		.bus = srv->bus,
		.sub = &st->h.sub,
		.cursor = st->cursor,
		.chs = &chs,
		.client = st->h.sub.client,
		.heartbeat = config_live(srv->cfg, heartbeat),
		.sent = &st->sent,
		.exp_s = st->exp_s,
	};

	/* the path parsed when the stream opened; not kept, so an idle
	 * stream does not hold it */
	(void)channel_list_parse(st->path, strlen(st->path), &chs);
	return st->ops->fill(st->state, &env, buf, max, len);
}

/* ---- loop thread: writing ---- */

/* n body bytes at body (which has CHUNK_HEAD bytes of room before it and
 * two after), as one chunk over HTTP/1.1. */
static int write_body(struct lws_stream *st, char *body, size_t n)
{
	char head[CHUNK_HEAD + 1];
	char *start = body;
	size_t total = n;

	if (st->chunked) {
		int h = snprintf(head, sizeof head, "%zx\r\n", n);

		start = body - h;
		memcpy(start, head, (size_t)h);
		memcpy(body + n, "\r\n", 2);
		total = (size_t)h + n + 2;
	}
	return lws_write(st->wsi, (unsigned char *)start, total,
			 LWS_WRITE_HTTP) < (int)total ?
		       -1 :
		       0;
}

/* One write. 0: written, ask again; 1: stop here (parked, or the end is
 * written and the stream closes once it is sent); -1: close. */
static int write_some(struct lws_stream *st, bool *wrote)
{
	/* the loop's buffer, with room for a chunk's head and tail */
	char *body = (char *)ws_send_buffer(st->h.loop) + CHUNK_HEAD;
	size_t n;
	enum stream_fill end;

	end = fill(st, body, WS_SEND_BUFFER - CHUNK_HEAD - 2, &n);
	if (end == STREAM_ERROR) {
		st->why = st->ops->why(st->state);
		return -1;
	}
	if (n > 0 && write_body(st, body, n) < 0)
		return -1;
	*wrote = *wrote || n > 0;
	if (end == STREAM_PARKED)
		return 1;
	if (end == STREAM_MORE)
		return 0;
	/* the last bytes are written: end the body properly, then close */
	st->why = st->ops->why(st->state);
	if (st->chunked &&
	    lws_write(st->wsi, (unsigned char *)memcpy(body, "0\r\n\r\n", 5), 5,
		      LWS_WRITE_HTTP) < 5)
		return -1;
	st->closing = true;
	*wrote = true;
	lws_callback_on_writable(st->wsi);
	return 1;
}

/* Several writes per WRITEABLE while the socket takes them. A write the
 * socket did not take whole is kept by lws, which then holds back
 * WRITEABLE until it is sent: if that takes --http-timeout, the reader
 * has stopped and the stream is closed, as libmicrohttpd closes a
 * stalled one. */
static int on_writable(struct lws_stream *st)
{
	bool wrote = false;
	int r = 0;

	/* cut is read only after the ready list (service): a write may
	 * race it, and the kill's timeout must not be cleared below */
	if (st->closing || st->killing)
		return -1;
	lws_set_timeout(st->wsi, NO_PENDING_TIMEOUT, 0);
	if (!st->detached) {
		/* the head is answered: its 8 KiB table is not needed again */
		lws_http_headers_detach(st->wsi);
		st->detached = true;
		/* lws 4.1.6 reads nothing in this state (DOING_TRANSACTION):
		 * it would find the peer gone only at a failed write, and the
		 * level-triggered loop spins on a readable socket meanwhile.
		 * Turning POLLIN off (lws_rx_flow_control) stops its h1
		 * POLLOUT handling too. So the watcher ends the stream at
		 * once when the peer leaves or sends anything more */
		st->fd = lws_get_socket_fd(st->wsi);
		st->watched = watcher_add_quiet(ws_server(st->h.loop)->watcher,
						st->fd, st->h.sub.id) == 0;
	}
	/* between writes, lws_partial_buffered: lws_send_pipe_choked asks
	 * the kernel with a poll(2) what lws mostly knows already */
	for (int i = 0; i < WRITES_PER_CALLBACK && r == 0; i++) {
		r = write_some(st, &wrote);
		if (lws_partial_buffered(st->wsi))
			break;
	}
	if (r < 0)
		return -1;
	/* a socket that took the last write whole may be full now: only
	 * the kernel knows, asked once per round that wrote. A reader that
	 * stopped must not leave the stream waiting for a WRITEABLE that
	 * never comes, more to write or not (t_limits) */
	if (lws_partial_buffered(st->wsi) ||
	    (wrote && lws_send_pipe_choked(st->wsi))) {
		st->why = "stalled for --http-timeout";
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK,
				(int)ws_server(st->h.loop)->cfg->http_timeout);
	} else if (r != 1 || !st->closing) {
		st->why = NULL;
	}
	if (r == 0)
		lws_callback_on_writable(st->wsi);
	return 0;
}

static enum transport_id service(struct ws_ready_link *link)
{
	struct lws_stream *st = from_link(link);

	if (st->h.cut) {
		log_debug("%s subscriber %llu cut (slow consumer)",
			  st->h.sub.transport->name,
			  (unsigned long long)st->h.sub.id);
		st->why = "slow consumer";
		st->killing = true;
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	} else if (st->detached && !st->closing && !st->killing &&
		   !lws_partial_buffered(st->wsi)) {
		/* write at once, as WRITEABLE would: asking lws for it costs
		 * two epoll_ctl and an epoll_wait per wake (lws_ws.c's
		 * write_now); what lws holds back, the first round (which
		 * detaches the head) and the end go through WRITEABLE, as
		 * does a close: killing makes its -1 (a timeout's kill
		 * from here was not seen to close the wsi) */
		if (on_writable(st) < 0) {
			st->killing = true;
			lws_callback_on_writable(st->wsi);
		}
		cost_bytes_lazy(st->h.sub.transport->id,
				lws_get_socket_fd(st->wsi), &st->bytes,
				bus_now_ms());
	} else {
		lws_callback_on_writable(st->wsi);
	}
	return st->h.sub.transport->id;
}

/* ---- loop thread: opening ---- */

static int add_header(struct lws *wsi, const char *name, const char *value,
		      unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value,
					   (int)strlen(value), p, end);
}

/* The status line and the headers every reply carries (as
 * http_reply_common_headers); sets chunked for HTTP/1.1. */
static int start_head(struct lws_stream *st, unsigned status,
		      unsigned char *start, unsigned char **p,
		      unsigned char *end)
{
	char origin[256];

	if (lws_add_http_header_status(st->wsi, status, p, end))
		return -1;
	/* lws answers in the request's version */
	st->chunked = memcmp(start, "HTTP/1.0", 8) != 0;
	/* the router let only an allowed Origin through (origin.h) */
	if (lws_hdr_copy(st->wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) >
		    0 &&
	    add_header(st->wsi, "Access-Control-Allow-Origin:", origin, p, end))
		return -1;
	if (add_header(st->wsi, "Vary:", "Origin", p, end) ||
	    add_header(st->wsi, "Access-Control-Expose-Headers:",
		       "X-Client-Id, Idempotent-Replayed", p, end) ||
	    add_header(st->wsi, "Cache-Control:", "no-cache", p, end))
		return -1;
	return 0;
}

/* {"error":{"code","message"}} with that status and the common headers,
 * as http_reply_error sends it, then close once it is sent. code and
 * message are our own text. */
static int reply_error(struct lws_stream *st, unsigned status, const char *code,
		       const char *message)
{
	unsigned char buf[LWS_PRE + HEAD_MAX + 512];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof buf - 512;
	char body[512], len[24], retry[16];
	int n = snprintf(body, sizeof body,
			 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			 code, message);

	metrics_add(&metrics.http_errors, 1);
	snprintf(len, sizeof len, "%d", n);
	snprintf(retry, sizeof retry, "%u", st->retry_after);
	if (start_head(st, status, start, &p, end) ||
	    (st->retry_after &&
	     add_header(st->wsi, "Retry-After:", retry, &p, end)) ||
	    add_header(st->wsi, "Content-Type:", "application/json", &p, end) ||
	    add_header(st->wsi, "Connection:", "close", &p, end) ||
	    add_header(st->wsi, "Content-Length:", len, &p, end) ||
	    lws_finalize_http_header(st->wsi, &p, end))
		return -1;
	memcpy(p, body, (size_t)n);
	p += n;
	if (lws_write(st->wsi, start, (size_t)(p - start),
		      LWS_WRITE_HTTP_HEADERS) < (int)(p - start))
		return -1;
	st->closing = true;
	lws_callback_on_writable(st->wsi);
	return 0;
}

/* The request as lws decoded it, checked again (the router checked the
 * raw head): the channels, the cursor (Last-Event-ID wins over since),
 * client, presence. */
static int parse_request(struct lws_stream *st, struct cursor *since,
			 bool *has_since)
{
	char buf[CURSOR_TEXT_MAX + 16];
	struct channel_list chs;
	const char *v;
	int n;

	if (lws_held_path(st->wsi, &st->path, &chs) < 0)
		return -1;
	st->nch = chs.count;
	n = lws_hdr_custom_copy(st->wsi, buf, sizeof buf, "last-event-id:", 14);
	v = n > 0 ? buf : lws_held_arg(st->wsi, "since=", buf, sizeof buf);
	*has_since = v != NULL;
	if (v && cursor_parse(v, strlen(v), chs.count, since) < 0)
		return -1;
	v = lws_held_arg(st->wsi, "client=", buf, sizeof buf);
	if (v && !client_id_valid(v, strlen(v)))
		return -1;
	if (v)
		snprintf(st->h.sub.client, sizeof st->h.sub.client, "%s", v);
	else
		clientid_new(st->h.sub.client);
	st->h.sub.announce = lws_held_flag(
		lws_held_arg(st->wsi, "presence=", buf, sizeof buf));
	return 0;
}

/* The credential against the channels and ?client=; a token's sub is
 * the client id when none was asked for, and its exp ends the stream. */
static int authorize(struct lws_stream *st, const struct channel_list *chs,
		     struct auth_error *err)
{
	struct auth_grant g;
	char buf[CLIENT_ID_MAX + 16];
	const char *client = lws_auth_urlarg(st->wsi, "client=", buf,
					     sizeof buf);
	int r = 0;

	if (auth_open())
		return 0;
	if (lws_auth_check(st->wsi, &g, err) < 0 ||
	    auth_subscribe_check(&g, chs, client, err) < 0) {
		r = -1;
		goto out;
	}
	/* the sub even if a long ?token= hid ?client= from parse_request */
	if (g.sub[0])
		snprintf(st->h.sub.client, sizeof st->h.sub.client, "%s",
			 g.sub);
	st->exp_s = g.exp;
out:
	auth_grant_free(&g);
	return r;
}

static int send_head(struct lws_stream *st)
{
	unsigned char buf[LWS_PRE + HEAD_MAX];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof buf;

	if (start_head(st, 200, start, &p, end) ||
	    add_header(st->wsi, "Content-Type:", st->ops->content_type, &p,
		       end) ||
	    add_header(st->wsi, "X-Accel-Buffering:", "no", &p, end) ||
	    add_header(st->wsi, "X-Client-Id:", st->h.sub.client, &p, end) ||
	    (st->chunked &&
	     add_header(st->wsi, "Transfer-Encoding:", "chunked", &p, end)))
		return -1;
	return lws_finalize_write_http_header(st->wsi, start, &p, end) ? -1 : 0;
}

/* The stream technique the request names with ?transport=, else the one
 * an Accept header picks (the router sends here only those,
 * router_head.c). */
static const struct stream_ops *technique(struct lws *wsi)
{
	char buf[32];
	const char *v = lws_held_arg(wsi, "transport=", buf, sizeof buf);
	const struct transport *t = v ? transport_by_name(v, strlen(v)) : NULL;
	const struct stream_ops *ops = t ? stream_of(t) : NULL;

	return ops ? ops : &stream_sse;
}

static const char *arg_of(void *ctx, const char *name)
{
	static _Thread_local char buf[256];
	char key[32];

	snprintf(key, sizeof key, "%s=", name);
	return lws_held_arg(ctx, key, buf, sizeof buf);
}

static int on_http(struct lws_stream *st, struct lws *wsi)
{
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	struct server *srv;
	uint64_t hb;
	bool has_since = false;
	struct channel_list chs;
	enum bus_error err;
	struct auth_error aerr;
	const char *code = NULL, *message = NULL;

	if (st->opened)
		return -1; /* a second request while streaming */
	st->opened = true;
	st->wsi = wsi;
	lws_sub_init(&st->h, ws_loop_of(wsi), service);
	st->ops = technique(wsi);
	st->h.sub.transport = st->ops->transport;
	st->state = xcalloc(1, st->ops->state_size);
	st->opened_ms = bus_now_ms();
	srv = ws_server(st->h.loop);
	hb = config_live(srv->cfg, heartbeat) * 1000;
	cost_request(st->h.sub.transport->id);
	if (parse_request(st, since, &has_since) < 0) {
		log_debug("%s request refused after routing",
			  st->h.sub.transport->name);
		return reply_error(st, 400, "bad_request",
				   "the request did not parse as it was "
				   "routed");
	}

	(void)channel_list_parse(st->path, strlen(st->path), &chs);
	if (authorize(st, &chs, &aerr) < 0)
		return reply_error(st, aerr.status, aerr.code, aerr.message);
	/* the technique's own arguments: after the credential and before
	 * --new-channels-per-ip takes its tokens, as libmicrohttpd orders
	 * them */
	st->h.sub.deadline_ms = bus_now_ms() + hb;
	if (st->ops->open(st->state, arg_of, wsi, srv->cfg->redis[0] != '\0',
			  hb, &st->h.sub.deadline_ms, &code, &message) < 0)
		return reply_error(st, 400, code, message);
	/* --new-channels-per-ip: the channels it names that do not exist
	 * are created */
	if (limits_new_channels_on()) {
		char ip[LIMITS_IP_MAX];

		ws_client_ip(wsi, ip);
		if (!limits_new_channels(ip,
					 bus_channels_missing(srv->bus, &chs),
					 bus_now_ms(), &st->retry_after)) {
			metrics_add(&metrics.channel_rate_limited, 1);
			return reply_error(st, 429, "channel_rate_limited",
					   LIMITS_CHANNELS_TEXT);
		}
	}
	metrics_add(&metrics.subscriptions[st->h.sub.transport->id], 1);
	st->cursor = xcalloc(st->nch, sizeof *st->cursor);
	st->h.sub.period_ms = hb;
	err = bus_attach(srv->bus, &st->h.sub, &chs, has_since ? since : NULL,
			 st->cursor);
	if (err == BUS_SHUTTING_DOWN)
		return reply_error(st, 503, "shutting_down",
				   "the gateway is restarting; retry");
	if (err != BUS_OK)
		return reply_error(st, 503, "over_capacity",
				   "too many channels");
	st->attached = true;
	if (send_head(st) < 0)
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Idempotent: lws may close a wsi from several places. */
static void on_closed(struct lws_stream *st)
{
	if (!st->opened)
		return;
	if (st->wsi)
		cost_bytes(st->h.sub.transport->id, lws_get_socket_fd(st->wsi),
			   &st->bytes.base);
	/* the channel list, never the URL: a query may carry a secret */
	if (st->attached)
		log_debug("closed %s /channels/%s after %.3f s, %lu messages "
			  "sent: %s",
			  st->h.sub.transport->name, st->path,
			  (double)(bus_now_ms() - st->opened_ms) / 1000,
			  st->sent,
			  st->why ? st->why : "peer closed or link lost");
	/* before lws closes the fd, which could then be reused */
	if (st->watched)
		watcher_remove(ws_server(st->h.loop)->watcher, st->fd);
	st->watched = false;
	if (st->attached)
		bus_detach(ws_server(st->h.loop)->bus, &st->h.sub);
	st->attached = false;
	ws_unready(st->h.loop, &st->h.link);
	if (st->state)
		st->ops->close(st->state);
	free(st->state);
	st->state = NULL;
	free(st->cursor);
	st->cursor = NULL;
	free(st->path);
	st->path = NULL;
	st->opened = false;
	st->wsi = NULL;
}

static bool callback(struct lws *wsi, int reason, void *user, void *in,
		     size_t len, int *ret)
{
	struct lws_stream *st = user;
	uint64_t cpu;

	(void)in;
	(void)len;
	if (st == NULL)
		return false;
	if (reason != LWS_CALLBACK_HTTP &&
	    stream_of(st->h.sub.transport) == NULL)
		return false;
	*ret = 0;
	/* the thread clock is a system call: around work only */
	if (!lws_held_is_work(reason, st->opened))
		return true;
	cpu = cost_cpu_now();
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		*ret = on_http(st, wsi);
		break;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		*ret = st->opened ? on_writable(st) : -1;
		if (st->wsi)
			cost_bytes_lazy(st->h.sub.transport->id,
					lws_get_socket_fd(wsi), &st->bytes,
					bus_now_ms());
		break;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_WSI_DESTROY:
		on_closed(st);
		break;
	default:
		break;
	}
	cost_cpu(st->h.sub.transport ? st->h.sub.transport->id : TRANSPORT_SSE,
		 cpu);
	return true;
}

const struct ws_http_guest lws_stream_guest = {
	.name = "stream",
	.session_size = sizeof(struct lws_stream),
	.callback = callback,
};
