/* Long polls on the libwebsockets loops. The router sends here only
 * long-poll heads it has checked in full (router_head_longpoll), over
 * HTTP/1.1, with nothing queued after the head, an allowed Origin or
 * none, and a stream slot taken; anything doubtful goes to
 * libmicrohttpd (http_longpoll.c). The token is checked here as
 * http_auth.c checks it there, so a held poll costs the same with
 * --token-secret-file as without.
 *
 * Why here and not on libmicrohttpd: MHD 0.9.75 keeps its connection
 * struct and two touched pages of its pool for a held request, 6.3 KB of
 * RSS per idle long poll (bench/idle_mem.py); here a held poll keeps the
 * wsi and this struct (lws's header table is given back once the head is
 * parsed), as an idle SSE stream does.
 *
 * A reply ends the request, not the connection: the browser sends its
 * next request (a publish, a poll, anything) on the same socket, which
 * only the router may route. So once the reply is sent the socket goes
 * back to the router (ws_release, router_take_back) and its next head is
 * routed as a new connection's first. The router hands over exactly the
 * head, and lws reads nothing more while a transaction is open, so a
 * byte that follows it stays in the kernel: the watcher ends a poll
 * whose client sends anything while it is held (pipelining, which
 * browsers do not do), and after the reply the router peeks it.
 *
 * Everything runs on the poll's loop thread except the wake and cut ops,
 * which run under the bus lock on any thread and only queue the poll. */
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
#include "message.h"
#include "metrics.h"
#include "poll_format.h"
#include "router.h"
#include "server.h"
#include "transport.h"
#include "transport_longpoll.h"
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

#define LOG_PREFIX "longpoll"
#define HEAD_MAX 1024

/* lws's per-session data of a long-poll wsi; zeroed by lws. The
 * subscriber comes first: its transport tells the wsi's kind. */
struct lp_poll {
	struct lws_sub h; /* first: the bus's subscriber is this */
	struct lws *wsi;
	unsigned retry_after; /* seconds, for a 429 reply_error; 0: none */
	char *path;           /* the channel list */
	char *origin;         /* the request's Origin, echoed; NULL: none */
	size_t nch;
	struct cursor *cursor; /* as the client will have it */
	int fd;
	bool opened;   /* the HTTP callback came */
	bool attached; /* to the bus */
	bool watched;  /* fd is registered with the watcher */
	bool given;    /* ?client= was sent: presence may be recorded */
	bool killing;  /* cut seen: the wsi is ending */
	bool replied;  /* the reply is written: hand back once it is sent */
	bool keep;     /* hand the socket back (not at shutdown, not errors) */
};

static struct lp_poll *from_link(struct ws_ready_link *link)
{
	return (struct lp_poll *)lws_sub_of_link(link);
}

/* ---- loop thread ---- */

static void unwatch(struct lp_poll *lp)
{
	/* before the fd is closed or given away */
	if (lp->watched)
		watcher_remove(ws_server(lp->h.loop)->watcher, lp->fd);
	lp->watched = false;
}

static void detach(struct lp_poll *lp)
{
	unwatch(lp);
	if (lp->attached)
		bus_detach(ws_server(lp->h.loop)->bus, &lp->h.sub);
	lp->attached = false;
}

/* The head libmicrohttpd sends with a reply (http_reply_queue), then the
 * body: one write, which lws finishes sending if the socket does not
 * take it whole. */
static int write_reply(struct lp_poll *lp, unsigned status,
		       const char *status_text, const char *body, size_t len,
		       bool close)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	unsigned char *buf;
	int n, r;

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	buf = xmalloc(LWS_PRE + HEAD_MAX + len);
	n = snprintf((char *)buf + LWS_PRE, HEAD_MAX,
		     "HTTP/1.1 %u %s\r\nDate: %s\r\n"
		     "Content-Type: application/json\r\n"
		     "%s%s%s"
		     "%s%s%s"
		     "Vary: Origin\r\n"
		     "Access-Control-Expose-Headers: X-Client-Id, "
		     "Idempotent-Replayed\r\n"
		     "Cache-Control: no-cache\r\n%s%s%.0u%s"
		     "Content-Length: %zu\r\n\r\n",
		     status, status_text, date,
		     status == 200 ? "X-Client-Id: " : "",
		     status == 200 ? lp->h.sub.client : "",
		     status == 200 ? "\r\n" : "",
		     lp->origin ? "Access-Control-Allow-Origin: " : "",
		     lp->origin ? lp->origin : "", lp->origin ? "\r\n" : "",
		     close ? "Connection: close\r\n" : "",
		     lp->retry_after ? "Retry-After: " : "", lp->retry_after,
		     lp->retry_after ? "\r\n" : "", len);
	memcpy(buf + LWS_PRE + n, body, len);
	r = lws_write(lp->wsi, buf + LWS_PRE, (size_t)n + len, LWS_WRITE_HTTP) <
			    (int)((size_t)n + len) ?
		    -1 :
		    0;
	free(buf);
	/* all of the reply's bytes are these: lws adds nothing to a raw
	 * LWS_WRITE_HTTP, and sends what the socket did not take later */
	if (r == 0)
		cost_sent(TRANSPORT_LONGPOLL, (size_t)n + len);
	lp->replied = true;
	lws_callback_on_writable(lp->wsi);
	return r;
}

/* {"error":{"code","message"}}, as http_reply_error sends it, then
 * close once it is sent. */
static int reply_error(struct lp_poll *lp, unsigned status, const char *text,
		       const char *code, const char *message)
{
	char body[512];
	int n = snprintf(body, sizeof body,
			 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			 code, message);

	metrics_add(&metrics.http_errors, 1);
	detach(lp);
	lp->keep = false;
	return write_reply(lp, status, text, body, (size_t)n, true);
}

/* The reply of pollreply.c: the message's shared single reply when it
 * is the only one on the only channel, else the list. */
static int reply(struct lp_poll *lp, struct bus_item *items, size_t count,
		 bool more)
{
	struct bus *bus = ws_server(lp->h.loop)->bus;
	char cursor[CURSOR_TEXT_MAX];
	struct channel_list chs;
	size_t cap, len = 0, tlen;
	char *body, *tail;
	int r;

	for (size_t i = 0; i < count; i++) {
		lp->cursor[items[i].tap].epoch = items[i].epoch;
		lp->cursor[items[i].tap].id = items[i].cursor;
	}
	if (count == 1 && items[0].msg && !more && lp->nch == 1) {
		const char *one = bus_single_reply(bus, items[0].msg, &len);

		return write_reply(lp, 200, "OK", one, len, !lp->keep);
	}
	(void)channel_list_parse(lp->path, strlen(lp->path), &chs);
	cursor_format(lp->cursor, lp->nch, cursor);
	cap = poll_format_tail_cap(count);
	tail = xmalloc(cap);
	tlen = poll_format_tail(tail, cap, cursor, &chs, items, count, more);
	len = sizeof POLL_FORMAT_HEAD - 1 + tlen;
	for (size_t i = 0; i < count; i++)
		if (items[i].msg)
			len += items[i].msg->json_len + 1;
	body = xmalloc(len);
	len = 0;
	memcpy(body, POLL_FORMAT_HEAD, sizeof POLL_FORMAT_HEAD - 1);
	len = sizeof POLL_FORMAT_HEAD - 1;
	for (size_t i = 0, k = 0; i < count; i++) {
		struct message *m = items[i].msg;

		if (m == NULL)
			continue;
		if (k++)
			body[len++] = ',';
		memcpy(body + len, message_json(m), m->json_len);
		len += m->json_len;
	}
	memcpy(body + len, tail, tlen);
	len += tlen;
	r = write_reply(lp, 200, "OK", body, len, !lp->keep);
	free(body);
	free(tail);
	return r;
}

/* Pull; reply if there is anything or the hold is over. */
static int answer(struct lp_poll *lp)
{
	struct server *srv = ws_server(lp->h.loop);
	struct bus_item items[LONGPOLL_MAX_ITEMS];
	struct channel_list chs;
	struct bus_pull got;
	int r;

	switch (longpoll_step(srv->bus, &lp->h.sub, lp->nch, lp->cursor, items,
			      &got)) {
	case LONGPOLL_GONE:
		return -1;
	case LONGPOLL_HOLD:
		return 0;
	case LONGPOLL_ADMIN:
		return reply_error(lp, 410, "Gone", "closed_by_admin",
				   POLL_FORMAT_ADMIN_ENDED);
	case LONGPOLL_REDIS:
		return reply_error(lp, 503, "Service Unavailable",
				   "redis_unavailable",
				   "Redis did not answer in time; retry");
	case LONGPOLL_REPLY:
		break;
	}
	/* seen again on the way out: a long hold is still presence */
	if (lp->given) {
		(void)channel_list_parse(lp->path, strlen(lp->path), &chs);
		bus_poll_seen(srv->bus, &chs, lp->h.sub.client,
			      TRANSPORT_LONGPOLL, false);
	}
	/* the gateway stops: the reply, then the end of the connection */
	lp->keep = got.end != SUB_END_SHUTDOWN;
	detach(lp);
	r = reply(lp, items, got.count, got.more);
	bus_items_release(items, got.count);
	return r;
}

/* The reply is sent: the socket goes back to the router, or closes. */
static int on_sent(struct lp_poll *lp)
{
	int fd;

	if (!lp->keep)
		return -1;
	fd = ws_release(lp->wsi);
	if (fd >= 0)
		router_take_back(fd);
	return -1;
}

static int on_writable(struct lp_poll *lp)
{
	if (lp->killing)
		return -1;
	if (lp->replied)
		return on_sent(lp);
	return answer(lp); /* write_reply counts the bytes */
}

static enum transport_id service(struct ws_ready_link *link)
{
	struct lp_poll *lp = from_link(link);

	if (lp->h.cut && !lp->replied) {
		lp->killing = true;
		lws_set_timeout(lp->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
	} else if (!lp->replied && !lp->killing &&
		   !lws_partial_buffered(lp->wsi)) {
		/* answer at once, as WRITEABLE would, saving the round trip
		 * through lws's poll loop (lws_ws.c's write_now); the socket
		 * goes back to the router (or closes) from the WRITEABLE
		 * write_reply asks for, as a close does (killing) */
		if (answer(lp) < 0) {
			lp->killing = true;
			lws_callback_on_writable(lp->wsi);
		}
	} else {
		lws_callback_on_writable(lp->wsi);
	}
	return TRANSPORT_LONGPOLL;
}

/* The request as lws decoded it, checked again (the router checked the
 * raw head). The hold in seconds, or -1. */
static long parse_request(struct lp_poll *lp, struct cursor *since,
			  bool *has_since, bool *presence)
{
	char buf[CURSOR_TEXT_MAX + 16];
	struct channel_list chs;
	const char *v;

	if (lws_held_path(lp->wsi, &lp->path, &chs) < 0)
		return -1;
	lp->nch = chs.count;
	v = lws_held_arg(lp->wsi, "since=", buf, sizeof buf);
	*has_since = v != NULL;
	if (v && cursor_parse(v, strlen(v), chs.count, since) < 0)
		return -1;
	v = lws_held_arg(lp->wsi, "client=", buf, sizeof buf);
	if (v && !client_id_valid(v, strlen(v)))
		return -1;
	lp->given = v != NULL;
	if (v)
		snprintf(lp->h.sub.client, sizeof lp->h.sub.client, "%s", v);
	else
		clientid_new(lp->h.sub.client);
	*presence = lws_held_flag(
		lws_held_arg(lp->wsi, "presence=", buf, sizeof buf));
	return longpoll_timeout(
		lws_held_arg(lp->wsi, "timeout=", buf, sizeof buf),
		ws_server(lp->h.loop)->cfg->longpoll_timeout);
}

/* The credential against the channels and ?client=, as http_auth.c
 * checks a long poll on libmicrohttpd; a token's sub is the client id
 * when none was asked for. The Origin is kept to be echoed: the router
 * let only an allowed one through (router.c). Before the head table is
 * given back. */
static int authorize(struct lp_poll *lp, const struct channel_list *chs,
		     struct auth_error *err)
{
	struct auth_grant g;
	char origin[256];
	int r = 0;

	if (lws_hdr_copy(lp->wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) > 0)
		lp->origin = xstrdup(origin);
	if (auth_open())
		return 0;
	if (lws_auth_check(lp->wsi, &g, err) < 0 ||
	    auth_subscribe_check(&g, chs, lp->given ? lp->h.sub.client : NULL,
				 err) < 0) {
		r = -1;
		goto out;
	}
	if (g.sub[0] && !lp->given)
		snprintf(lp->h.sub.client, sizeof lp->h.sub.client, "%s",
			 g.sub);
out:
	auth_grant_free(&g);
	return r;
}

static const char *status_text(unsigned status)
{
	return status == 401 ? "Unauthorized" : "Forbidden";
}

static int on_http(struct lp_poll *lp, struct lws *wsi)
{
	struct auth_error aerr;
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	bool has_since = false, presence = false;
	struct channel_list chs;
	struct server *srv;
	enum bus_error err;
	char ip[LIMITS_IP_MAX] = "";
	long t;

	if (lp->opened)
		return -1;
	lp->opened = true;
	lp->wsi = wsi;
	lws_sub_init(&lp->h, ws_loop_of(wsi), service);
	lp->h.sub.transport = &transport_longpoll;
	lp->fd = lws_get_socket_fd(wsi);
	srv = ws_server(lp->h.loop);
	cost_request(TRANSPORT_LONGPOLL);
	t = parse_request(lp, since, &has_since, &presence);
	/* X-Forwarded-For is in the table detached below */
	if (limits_new_channels_on())
		ws_client_ip(wsi, ip);
	if (t >= 0)
		(void)channel_list_parse(lp->path, strlen(lp->path), &chs);
	if (t >= 0 && authorize(lp, &chs, &aerr) < 0) {
		lws_http_headers_detach(wsi);
		lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
		return reply_error(lp, aerr.status, status_text(aerr.status),
				   aerr.code, aerr.message);
	}
	/* the head is read: its 8 KiB table is not needed again */
	lws_http_headers_detach(wsi);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (t < 0) {
		log_debug("long poll refused after routing");
		return reply_error(lp, 400, "Bad Request", "bad_request",
				   "the request did not parse as it was "
				   "routed");
	}
	metrics_add(&metrics.subscriptions[TRANSPORT_LONGPOLL], 1);
	/* --new-channels-per-ip: the channels it names that do not exist
	 * are created */
	if (limits_new_channels_on() &&
	    !limits_new_channels(ip, bus_channels_missing(srv->bus, &chs),
				 bus_now_ms(), &lp->retry_after)) {
		metrics_add(&metrics.channel_rate_limited, 1);
		return reply_error(lp, 429, "Too Many Requests",
				   "channel_rate_limited",
				   LIMITS_CHANNELS_TEXT);
	}
	lp->cursor = xcalloc(lp->nch, sizeof *lp->cursor);
	lp->h.sub.deadline_ms = bus_now_ms() + (uint64_t)t * 1000;
	/* presence is the pollers' (bus_poll_seen), not the taps' */
	lp->h.sub.announce = false;
	err = bus_attach(srv->bus, &lp->h.sub, &chs, has_since ? since : NULL,
			 lp->cursor);
	if (err == BUS_SHUTTING_DOWN)
		return reply_error(lp, 503, "Service Unavailable",
				   "shutting_down",
				   "the gateway is restarting; retry");
	if (err != BUS_OK)
		return reply_error(lp, 503, "Service Unavailable",
				   "over_capacity", "too many channels");
	lp->attached = true;
	/* only a client that brings its id back can be seen again */
	if (lp->given)
		bus_poll_seen(srv->bus, &chs, lp->h.sub.client,
			      TRANSPORT_LONGPOLL, presence);
	/* lws reads nothing while the poll is held: the watcher notices a
	 * client that leaves, or sends more */
	lp->watched = watcher_add_quiet(srv->watcher, lp->fd, lp->h.sub.id) ==
		      0;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Idempotent: lws may close a wsi from several places. */
static void on_closed(struct lp_poll *lp)
{
	if (!lp->opened)
		return;
	detach(lp);
	ws_unready(lp->h.loop, &lp->h.link);
	free(lp->cursor);
	lp->cursor = NULL;
	free(lp->path);
	lp->path = NULL;
	free(lp->origin);
	lp->origin = NULL;
	lp->opened = false;
	lp->wsi = NULL;
}

/* A long poll's LWS_CALLBACK_HTTP names ?transport=longpoll; the router
 * sends no other plain HTTP with it. Found after any argument however
 * long (a token, a cursor of many channels): else the poll would be
 * served as an event stream. */
static bool is_longpoll(struct lws *wsi)
{
	char buf[32];
	const char *v = lws_auth_urlarg(wsi, "transport=", buf, sizeof buf);

	return v && strcmp(v, "longpoll") == 0;
}

static bool callback(struct lws *wsi, int reason, void *user, void *in,
		     size_t len, int *ret)
{
	struct lp_poll *lp = user;
	uint64_t cpu;

	(void)in;
	(void)len;
	if (lp == NULL)
		return false;
	if (reason == LWS_CALLBACK_HTTP ?
		    !is_longpoll(wsi) :
		    lp->h.sub.transport != &transport_longpoll)
		return false;
	*ret = 0;
	/* the thread clock is a system call: around work only */
	if (!lws_held_is_work(reason, lp->opened))
		return true;
	cpu = cost_cpu_now();
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		*ret = on_http(lp, wsi);
		break;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		*ret = lp->opened ? on_writable(lp) : -1;
		break;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_WSI_DESTROY:
		on_closed(lp);
		break;
	default:
		break;
	}
	cost_cpu(TRANSPORT_LONGPOLL, cpu);
	return true;
}

const struct ws_http_guest lws_longpoll_guest = {
	.name = "longpoll",
	.session_size = sizeof(struct lp_poll),
	.callback = callback,
};
