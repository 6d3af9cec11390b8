/* Server-Sent Events on the libwebsockets loops. The router sends here
 * only SSE subscribes it has checked in full (router_head.c), with a
 * stream slot already taken; anything doubtful goes to libmicrohttpd,
 * whose http_sse.c answers the JSON error or serves it.
 *
 * Why here and not on libmicrohttpd: MHD 0.9.75 keeps its whole
 * connection pool (--http-memory) for as long as a reply streams, so a
 * held SSE stream cost 15 KB of RSS (bench/idle_mem.py). Here an idle
 * stream keeps the wsi and this struct: lws's header table (8 KiB) is
 * given back once the head is answered, and the write buffer exists only
 * while there is something to write.
 *
 * The bytes are the technique's (transport_sse.c), in chunked
 * encoding over HTTP/1.1 and as a plain body over HTTP/1.0. Everything
 * runs on the stream's loop thread except host_lws's wake and cut, which run
 * under the bus lock on any thread and only queue the stream for it. */
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
#include "sse_format.h"
#include "sse_out.h"
#include "transport.h"
#include "transport_sse.h"
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

#define LOG_PREFIX "sse"
/* one write: the body of one chunk */
#define SSE_WRITE_MAX (16u << 10)
#define SSE_WRITES_PER_CALLBACK 8
/* room before a chunk's data for its size line: 8 hex digits, CRLF */
#define CHUNK_HEAD 10
#define HEAD_MAX 1024

/* What only a stream with something to write needs: allocated when it
 * is asked to write and freed when it parks, so an idle stream does not
 * hold it (bench/idle_mem.py). */
struct sse_busy {
	struct bus_item items[SSE_BATCH]; /* pulled, not yet written */
	char scratch[SSE_FORMAT_MAX];
	struct channel_list chs; /* names point into the stream's path */
	unsigned char buf[LWS_PRE + CHUNK_HEAD + SSE_WRITE_MAX + 2];
};

/* lws's per-session data of an SSE wsi; zeroed by lws. The subscriber
 * comes first: its transport tells an SSE wsi from a WebSocket one. */
struct sse_stream {
	struct lws_sub h; /* first: the bus's subscriber is this */
	struct lws *wsi;
	unsigned retry_after; /* seconds, for a 429 reply_error; 0: none */
	char *path;           /* the channel list */
	size_t nch;
	struct cursor *cursor; /* as the client has it, one per channel */
	struct sse_busy *busy; /* NULL while idle */
	struct sse_out out;    /* what is staged, of busy->items */
	uint64_t bytes_base;   /* written to the socket, counted (cost_bytes) */
	uint64_t opened_ms;
	unsigned long sent; /* messages */
	const char *why;    /* for the close line; NULL: the peer or the link */
	bool opened;        /* the HTTP callback came */
	bool attached;      /* to the bus */
	bool detached;      /* lws's header table given back */
	bool named;         /* messages as events of their own name */
	bool chunked;       /* HTTP/1.1: the body is chunked */
	bool killing;       /* cut seen on the loop thread: the wsi is ending */
	bool closing;       /* the last bytes are written: close when sent */
	bool watched;       /* fd is registered with the watcher */
	int fd;
	long long exp_s; /* the token's exp: the stream ends then; 0: none */
};

static struct sse_stream *from_link(struct ws_ready_link *link)
{
	return (struct sse_stream *)lws_sub_of_link(link);
}

/* ---- loop thread: the text ---- */

static void go_busy(struct sse_stream *st)
{
	if (st->busy)
		return;
	st->busy = xmalloc(sizeof *st->busy);
	/* the path parsed when the stream opened */
	(void)channel_list_parse(st->path, strlen(st->path), &st->busy->chs);
}

/* Up to max bytes into buf (*len), as the technique has them. */
static enum sse_fill fill(struct sse_stream *st, char *buf, size_t max,
			  size_t *len)
{
	struct server *srv = ws_server(st->h.loop);
	const struct sse_out_src src = {
		.items = st->busy->items,
		.scratch = st->busy->scratch,
		.cursor = st->cursor,
		.chs = &st->busy->chs,
		.client = st->h.sub.client,
		.heartbeat = config_live(srv->cfg, heartbeat),
		.named = st->named,
		.sent = &st->sent,
		.bus = srv->bus,
		.sub = &st->h.sub,
		.exp_s = st->exp_s,
	};

	return sse_fill(&st->out, &src, buf, max, len);
}

/* ---- loop thread: writing ---- */

/* n body bytes at body (which has CHUNK_HEAD bytes of room before it and
 * two after), as one chunk over HTTP/1.1. */
static int write_body(struct sse_stream *st, char *body, size_t n)
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
static int write_some(struct sse_stream *st)
{
	char *body;
	size_t n;
	enum sse_fill end;

	go_busy(st);
	body = (char *)st->busy->buf + LWS_PRE + CHUNK_HEAD;
	end = fill(st, body, SSE_WRITE_MAX, &n);
	if (end == SSE_FILL_ERROR) {
		st->why = st->out.why;
		return -1;
	}
	if (n > 0 && write_body(st, body, n) < 0)
		return -1;
	if (end == SSE_FILL_PARKED) {
		/* nothing staged, every pulled item written */
		free(st->busy);
		st->busy = NULL;
		return 1;
	}
	if (end == SSE_FILL_MORE)
		return 0;
	/* the last bytes are written: end the body properly, then close */
	st->why = st->out.why;
	if (st->chunked &&
	    lws_write(st->wsi, (unsigned char *)memcpy(body, "0\r\n\r\n", 5), 5,
		      LWS_WRITE_HTTP) < 5)
		return -1;
	st->closing = true;
	lws_callback_on_writable(st->wsi);
	return 1;
}

/* Several writes per WRITEABLE while the socket takes them. A write the
 * socket did not take whole is kept by lws, which then holds back
 * WRITEABLE until it is sent: if that takes --http-timeout, the reader
 * has stopped and the stream is closed, as libmicrohttpd closes a
 * stalled one. */
static int on_writable(struct sse_stream *st)
{
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
	/* lws_partial_buffered, not lws_send_pipe_choked: that one asks
	 * the kernel with a poll(2) per write what lws already knows */
	for (int i = 0; i < SSE_WRITES_PER_CALLBACK && r == 0; i++) {
		r = write_some(st);
		if (lws_partial_buffered(st->wsi))
			break;
	}
	if (r < 0)
		return -1;
	if (lws_partial_buffered(st->wsi)) {
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

static void service(struct ws_ready_link *link)
{
	struct sse_stream *st = from_link(link);
	uint64_t cpu = cost_cpu_now();

	if (st->h.cut) {
		log_debug("sse subscriber %llu cut (slow consumer)",
			  (unsigned long long)st->h.sub.id);
		st->why = "slow consumer";
		st->killing = true;
		lws_set_timeout(st->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	} else {
		lws_callback_on_writable(st->wsi);
	}
	cost_cpu(TRANSPORT_SSE, cpu);
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
static int start_head(struct sse_stream *st, unsigned status,
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
static int reply_error(struct sse_stream *st, unsigned status, const char *code,
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
 * client, presence, sse_events. */
static int parse_request(struct sse_stream *st, struct cursor *since,
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
	v = lws_held_arg(st->wsi, "sse_events=", buf, sizeof buf);
	st->named = v == NULL || lws_held_flag(v);
	if (v && !st->named && strcmp(v, "0") != 0 && strcmp(v, "false") != 0)
		return -1;
	st->h.sub.announce = lws_held_flag(
		lws_held_arg(st->wsi, "presence=", buf, sizeof buf));
	return 0;
}

/* The credential against the channels and ?client=; a token's sub is
 * the client id when none was asked for, and its exp ends the stream. */
static int authorize(struct sse_stream *st, const struct channel_list *chs,
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

static int send_head(struct sse_stream *st)
{
	unsigned char buf[LWS_PRE + HEAD_MAX];
	unsigned char *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof buf;

	if (start_head(st, 200, start, &p, end) ||
	    add_header(st->wsi, "Content-Type:", "text/event-stream", &p,
		       end) ||
	    add_header(st->wsi, "X-Accel-Buffering:", "no", &p, end) ||
	    add_header(st->wsi, "X-Client-Id:", st->h.sub.client, &p, end) ||
	    (st->chunked &&
	     add_header(st->wsi, "Transfer-Encoding:", "chunked", &p, end)))
		return -1;
	return lws_finalize_write_http_header(st->wsi, start, &p, end) ? -1 : 0;
}

static int on_http(struct sse_stream *st, struct lws *wsi)
{
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	struct server *srv;
	uint64_t hb;
	bool has_since = false;
	struct channel_list chs;
	enum bus_error err;
	struct auth_error aerr;

	if (st->opened)
		return -1; /* a second request while streaming */
	st->opened = true;
	st->wsi = wsi;
	lws_sub_init(&st->h, ws_loop_of(wsi), service);
	st->h.sub.transport = &transport_sse;
	st->opened_ms = bus_now_ms();
	srv = ws_server(st->h.loop);
	hb = config_live(srv->cfg, heartbeat) * 1000;
	cost_request(TRANSPORT_SSE);
	if (parse_request(st, since, &has_since) < 0) {
		log_debug("sse request refused after routing");
		return reply_error(st, 400, "bad_request",
				   "the request did not parse as it was "
				   "routed");
	}
	(void)channel_list_parse(st->path, strlen(st->path), &chs);
	if (authorize(st, &chs, &aerr) < 0)
		return reply_error(st, aerr.status, aerr.code, aerr.message);
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
	metrics_add(&metrics.subscriptions[TRANSPORT_SSE], 1);
	st->cursor = xcalloc(st->nch, sizeof *st->cursor);
	st->h.sub.period_ms = hb;
	st->h.sub.deadline_ms = bus_now_ms() + hb;
	if (srv->cfg->redis[0]) {
		/* the first timer also bounds the welcome's wait on Redis */
		st->out.welcome_by = bus_now_ms() + SSE_OUT_WELCOME_WAIT_MS;
		if (hb == 0 || hb > SSE_OUT_WELCOME_WAIT_MS)
			st->h.sub.deadline_ms = st->out.welcome_by;
	}
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
static void on_closed(struct sse_stream *st)
{
	if (!st->opened)
		return;
	if (st->wsi)
		cost_bytes(TRANSPORT_SSE, lws_get_socket_fd(st->wsi),
			   &st->bytes_base);
	/* the channel list, never the URL: a query may carry a secret */
	if (st->attached)
		log_debug("closed sse /channels/%s after %.3f s, %lu messages "
			  "sent: %s",
			  st->path,
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
	sse_out_free(&st->out, st->busy ? st->busy->items : NULL);
	free(st->busy);
	st->busy = NULL;
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
	struct sse_stream *st = user;
	uint64_t cpu;

	(void)in;
	(void)len;
	if (st == NULL)
		return false;
	if (reason != LWS_CALLBACK_HTTP &&
	    st->h.sub.transport != &transport_sse)
		return false;
	cpu = cost_cpu_now();
	*ret = 0;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		*ret = on_http(st, wsi);
		break;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		*ret = st->opened ? on_writable(st) : -1;
		if (st->wsi)
			cost_bytes(TRANSPORT_SSE, lws_get_socket_fd(wsi),
				   &st->bytes_base);
		break;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_WSI_DESTROY:
		on_closed(st);
		break;
	default:
		break;
	}
	cost_cpu(TRANSPORT_SSE, cpu);
	return true;
}

const struct ws_http_guest lws_sse_guest = {
	.name = "sse",
	.session_size = sizeof(struct sse_stream),
	.callback = callback,
};
