/* WebSocket subscribers on libwebsockets, in two modes: one connection per
 * channel list (/channels/a,b?transport=ws) and the multiplexed /ws, where
 * the client subscribes, unsubscribes and publishes with acknowledgements.
 * Everything here runs on the session's lws loop thread except host_lws's
 * wake and cut, which run under the bus lock on any thread and only queue
 * the session for that thread.
 *
 * Pulled items go out several frames to a send: each frame's header and
 * body copied into the loop's buffer, one lws_write for all of them
 * (write_pulled), several sends per WRITEABLE callback while the socket
 * takes them (on_writable). A message too large for the buffer goes out
 * alone, straight from its shared buffer (its LWS_PRE headroom takes the
 * frame header, the same bytes for every subscriber); lws copies what
 * the socket does not take, and the reference is kept until the next
 * write or CLOSED. */
#include "abuse.h"
#include "auth.h"
#include "bus.h"
#include "clientid.h"
#include "cost.h"
#include "cursor.h"
#include "frame_format.h"
#include "host_lws.h"
#include "log.h"
#include "lws_auth.h"
#include "lws_guests.h"
#include "message.h"
#include "metrics.h"
#include "payload.h"
#include "publish.h"
#include "server.h"
#include "transport.h"
#include "ws.h"
#include "ws_alive.h"
#include "ws_mux.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define LOG_PREFIX "ws"
#define WS_BATCH 8
#define WS_WRITES_PER_CALLBACK 16
#define WS_BATCH_BYTES (256u << 10)
#define URI_MAX 8192
/* queued acks/errors: past HIGH the session stops reading (the client
 * waits for its answers), below LOW it reads again */
#define CTL_HIGH 64
#define CTL_LOW 16
/* How long a welcome or a /ws subscribe ack waits on Redis for the
 * channel's first sync */
#define WS_WELCOME_WAIT_MS 5000

/* An ack or error frame waiting to be written. */
struct ctl {
	struct ctl *next;
	/* --redis: a subscribe ack waiting for its channel's first sync
	 * (formatted when it is written, at the head of the queue); NULL
	 * for a frame already written out */
	struct mux_op *wait_op;
	uint64_t wait_by;    /* monotonic ms: redis_unavailable past it */
	struct cursor start; /* where bus_tap_add started it */
	size_t len;
	unsigned char buf[]; /* LWS_PRE, then the text */
};

struct ws_session {
	struct lws_sub h;           /* first: the bus's subscriber is this */
	struct ws_alive_link alive; /* keepalive, on the loop's wheel */
	bool ping_due;              /* the keepalive asked for a PING */
	struct lws *wsi;
	bool mux;
	bool attached, welcomed;
	/* --redis: the welcome waits for the sync until then (monotonic
	 * ms), closes past it; 0: no wait */
	uint64_t welcome_by;
	bool binary_frames; /* hello asked for raw binary frames */
	bool raw_next;      /* inflight's raw bytes go out next */
	/* the subscription, parallel to sub.taps: item.tap indexes both */
	size_t nch, cap;
	char **names;
	struct cursor *cursor;
	struct message *inflight;
	struct bus_item items[WS_BATCH];
	size_t nitems, next;
	struct ctl *ctl_head, *ctl_tail;
	size_t nctl;
	/* --redis: acks of /ws publishes Redis answered, not yet moved to
	 * the control queue; guarded by the bus lock (queue_ack) */
	struct ctl *acks_head, *acks_tail;
	size_t nremote; /* publishes waiting for Redis (loop thread) */
	bool rx_paused;
	struct mux_op pending; /* a binary publish waiting for its frame */
	bool awaiting_binary;
	unsigned char *rx;
	size_t rx_len;
	bool rx_binary;
	bool refused; /* a frame was refused: close on the next writable */
	/* lws is ending the wsi (a callback returned -1, or a kill is
	 * set): nothing more may be written outside WRITEABLE, where lws
	 * knows its state (a close frame may be out already) */
	bool ending;
	struct cost_tally bytes; /* written to the socket, counted */
	/* for the debug line on close */
	uint64_t opened_ms;
	unsigned long sent;      /* messages, not control frames */
	const char *why;         /* NULL: the peer closed or the link broke */
	struct auth_grant grant; /* what the token allows; auth op renews */
	char ip[LIMITS_IP_MAX];  /* the client's, for the per-IP limits */
};

static struct ws_session *from_link(struct ws_ready_link *link)
{
	return (struct ws_session *)lws_sub_of_link(link);
}

static struct ws_session *from_alive(struct ws_alive_link *link)
{
	return (struct ws_session *)((char *)link -
				     offsetof(struct ws_session, alive));
}

static struct server *srv_of(struct ws_session *s)
{
	return ws_server(s->h.loop);
}

/* ---- the channel list ---- */

static void channel_push(struct ws_session *s, const char *name, size_t len,
			 struct cursor cursor)
{
	if (s->nch == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->names = xrealloc(s->names, s->cap * sizeof *s->names);
		s->cursor = xrealloc(s->cursor, s->cap * sizeof *s->cursor);
	}
	s->names[s->nch] = xstrndup(name, len);
	s->cursor[s->nch] = cursor;
	s->nch++;
}

static long channel_find(const struct ws_session *s, const char *name)
{
	for (size_t i = 0; i < s->nch; i++)
		if (strcmp(s->names[i], name) == 0)
			return (long)i;
	return -1;
}

/* Forget channel i: drop staged items of it, renumber the others. */
static void channel_drop(struct ws_session *s, size_t i)
{
	size_t k = s->next;

	for (size_t j = s->next; j < s->nitems; j++) {
		struct bus_item it = s->items[j];

		if (it.tap == i) {
			bus_items_release(&it, 1);
			continue;
		}
		if (it.tap > i)
			it.tap--;
		s->items[k++] = it;
	}
	s->nitems = k;
	free(s->names[i]);
	memmove(&s->names[i], &s->names[i + 1],
		(s->nch - i - 1) * sizeof *s->names);
	memmove(&s->cursor[i], &s->cursor[i + 1],
		(s->nch - i - 1) * sizeof *s->cursor);
	s->nch--;
}

/* ---- control frames ---- */

static struct ctl *ctl_new(void)
{
	struct ctl *c = xmalloc(sizeof *c + LWS_PRE + FRAME_CTL_MAX);

	c->next = NULL;
	c->wait_op = NULL;
	return c;
}

/* Queue c, an ack or error whose text and length the caller wrote, and
 * ask to write (loop thread). */
static void ctl_append(struct ws_session *s, struct ctl *c)
{
	if (s->ctl_tail)
		s->ctl_tail->next = c;
	else
		s->ctl_head = c;
	s->ctl_tail = c;
	if (++s->nctl >= CTL_HIGH && !s->rx_paused) {
		lws_rx_flow_control(s->wsi, 0);
		s->rx_paused = true;
	}
	lws_callback_on_writable(s->wsi);
}

static void reply_error(struct ws_session *s, const struct mux_op *op,
			const char *code, const char *message)
{
	struct ctl *c = ctl_new();

	c->len = frame_format_error((char *)c->buf + LWS_PRE, FRAME_CTL_MAX, op,
				    code, message);
	ctl_append(s, c);
}

/* start: after a subscribe; stored: after a publish; else NULL. */
static void reply_ack(struct ws_session *s, const struct mux_op *op,
		      const struct cursor *start, const struct cursor *stored,
		      bool replayed)
{
	struct ctl *c = ctl_new();

	c->len = frame_format_ack((char *)c->buf + LWS_PRE, FRAME_CTL_MAX, op,
				  start, stored, replayed);
	ctl_append(s, c);
}

static int close_for(struct ws_session *s, enum sub_end why);

/* The subscribe ack at the head of the control queue, once its channel
 * is synced: its cursor then carries Redis' epoch. Until then it holds
 * the queue and the messages back (none of its channel can be pulled
 * before it), parked; past wait_by it becomes the error frame
 * redis_unavailable and the subscription is dropped. >0: parked, 0:
 * the frame is ready, <0: close. */
static int ack_ready(struct ws_session *s, struct ctl *c)
{
	struct bus *bus = srv_of(s)->bus;
	struct bus_pull got;
	long i;

	for (;;) {
		i = channel_find(s, c->wait_op->channel);
		if (i >= 0 &&
		    !bus_welcome(bus, &s->h.sub, (size_t)i, 1, &s->cursor[i])) {
			if (bus_now_ms() < c->wait_by) {
				bus_wait_sync(bus, &s->h.sub, &got);
				if (got.end != SUB_END_NONE)
					return close_for(s, got.end);
				if (got.parked)
					return 1;
				/* the timer moved to a heartbeat away */
				if (got.timer)
					bus_set_deadline(bus, &s->h.sub,
							 c->wait_by);
				continue; /* synced, or the timer */
			}
			c->len = frame_format_error(
				(char *)c->buf + LWS_PRE, FRAME_CTL_MAX,
				c->wait_op, "redis_unavailable",
				"Redis did not answer in time; subscribe "
				"again");
			channel_drop(s, (size_t)i);
			bus_tap_remove(bus, &s->h.sub, (size_t)i);
		} else {
			/* an unsubscribe that came after it is answered
			 * after it: its cursor as the subscribe left it */
			c->len = frame_format_ack(
				(char *)c->buf + LWS_PRE, FRAME_CTL_MAX,
				c->wait_op, i >= 0 ? &s->cursor[i] : &c->start,
				NULL, false);
		}
		free(c->wait_op);
		c->wait_op = NULL;
		return 0;
	}
}

static int write_ctl(struct ws_session *s)
{
	struct ctl *c = s->ctl_head;
	int r;

	if (c->wait_op) {
		r = ack_ready(s, c);
		if (r != 0)
			return r;
	}

	s->ctl_head = c->next;
	if (s->ctl_head == NULL)
		s->ctl_tail = NULL;
	s->nctl--;
	if (s->rx_paused && s->nctl < CTL_LOW) {
		lws_rx_flow_control(s->wsi, 1);
		s->rx_paused = false;
	}
	r = lws_write(s->wsi, c->buf + LWS_PRE, c->len, LWS_WRITE_TEXT) <
			    (int)c->len ?
		    -1 :
		    0;
	free(c);
	return r;
}

/* ---- loop thread: writing ---- */

/* Under the bus lock: hand over the acks Redis answered. */
static void take_acks(struct subscriber *sub, void *cls)
{
	struct ws_session *s = (struct ws_session *)sub;

	*(struct ctl **)cls = s->acks_head;
	s->acks_head = s->acks_tail = NULL;
}

static int on_writable(struct ws_session *s);

/* A wake writes at once, as the WRITEABLE callback would: asking lws
 * for WRITEABLE costs an epoll_ctl to watch for POLLOUT, an epoll_wait
 * to hear it and an epoll_ctl to stop, three system calls per delivery
 * for a socket that almost always has room. Not while lws holds bytes
 * the socket did not take (they go first, from WRITEABLE), nor when a
 * ping is due or the session is ending, which WRITEABLE handles. A
 * round that must close marks the session refused and asks for
 * WRITEABLE, whose -1 closes it as lws closes there: with the close
 * frame lws_close_reason stored. */
static void write_now(struct ws_session *s)
{
	int r;

	if (s->ending)
		return;
	if (!s->attached || s->refused || s->ping_due ||
	    lws_partial_buffered(s->wsi)) {
		lws_callback_on_writable(s->wsi);
		return;
	}
	r = on_writable(s);
	cost_bytes_lazy(TRANSPORT_WS, lws_get_socket_fd(s->wsi), &s->bytes,
			bus_now_ms());
	if (r < 0) {
		/* closed from WRITEABLE, as lws does it there: with the close
		 * frame (a timeout's kill sends none) */
		s->refused = true;
		lws_callback_on_writable(s->wsi);
	}
}

static void service(struct ws_session *s)
{
	struct ctl *acks = NULL;

	if (s->nremote && s->attached)
		bus_with_subscriber(srv_of(s)->bus, s->h.sub.id, take_acks,
				    &acks);
	while (acks) {
		struct ctl *next = acks->next;

		s->nremote--;
		acks->next = NULL;
		ctl_append(s, acks);
		acks = next;
	}
	if (s->h.cut) {
		log_debug("ws subscriber %llu cut (slow consumer)",
			  (unsigned long long)s->h.sub.id);
		s->why = "slow consumer";
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)"slow consumer", 13);
		s->ending = true;
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
				LWS_TO_KILL_ASYNC);
		return;
	}
	write_now(s);
}

/* The loop took the session off its ready list (host_lws.c). */
static enum transport_id on_ready(struct ws_ready_link *link)
{
	service(from_link(link));
	return TRANSPORT_WS;
}

static int write_text(struct ws_session *s, unsigned char *buf, int len)
{
	return lws_write(s->wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_TEXT) <
			       len ?
		       -1 :
		       0;
}

/* With --redis, the welcome's cursor carries Redis' epoch, so it waits
 * for the channels' first sync (parked; the sync wakes it), at most
 * WS_WELCOME_WAIT_MS, then closes 1013 redis_unavailable. >0: parked,
 * 0: ready, <0: close. */
static int welcome_ready(struct ws_session *s)
{
	struct bus_pull got;

	for (;;) {
		if (bus_welcome(srv_of(s)->bus, &s->h.sub, 0, s->nch,
				s->cursor))
			return 0;
		if (s->welcome_by && bus_now_ms() >= s->welcome_by) {
			lws_close_reason(s->wsi, (enum lws_close_status)1013,
					 (unsigned char *)"redis_unavailable",
					 17);
			s->why = "redis unavailable";
			return -1;
		}
		bus_wait_sync(srv_of(s)->bus, &s->h.sub, &got);
		if (got.end != SUB_END_NONE)
			return close_for(s, got.end);
		if (got.parked)
			return 1;
		/* synced, or the timer: look again */
	}
}

static int write_welcome(struct ws_session *s)
{
	unsigned char buf[LWS_PRE + FRAME_WELCOME_MAX];
	char cursor[CURSOR_TEXT_MAX];
	size_t n;
	int r;

	if (!s->mux) {
		r = welcome_ready(s);
		if (r != 0)
			return r;
	}
	s->welcomed = true;
	if (!s->mux)
		cursor_format(s->cursor, s->nch, cursor);
	n = frame_format_welcome(
		(char *)buf + LWS_PRE, sizeof buf - LWS_PRE, s->h.sub.client,
		config_live(srv_of(s)->cfg, heartbeat), s->mux ? NULL : cursor);
	return write_text(s, buf, (int)n);
}

/* The item is on its way: the client's cursor moves past it, and a
 * message counts as sent. */
static void item_out(struct ws_session *s, const struct bus_item *it)
{
	s->cursor[it->tap].epoch = it->epoch;
	s->cursor[it->tap].id = it->cursor;
	if (it->msg)
		s->sent++;
}

/* A message too large for the loop's buffer, alone, from its own buffer
 * (a gap or cursor frame always fits: write_pulled). */
static int write_item(struct ws_session *s, struct bus_item *it)
{
	struct message *m = it->msg;

	item_out(s, it);
	s->inflight = m;
	it->msg = NULL;
	if (s->binary_frames && m->meta_len > 0) {
		s->raw_next = true; /* the envelope now, the bytes next */
		return lws_write(s->wsi, (unsigned char *)message_meta(m),
				 m->meta_len,
				 LWS_WRITE_TEXT) < (int)m->meta_len ?
			       -1 :
			       0;
	}
	return lws_write(s->wsi, (unsigned char *)message_json(m), m->json_len,
			 LWS_WRITE_TEXT) < (int)m->json_len ?
		       -1 :
		       0;
}

/* The raw bytes of a binary message whose envelope just went out. */
static int write_raw(struct ws_session *s)
{
	struct message *m = s->inflight;

	s->raw_next = false;
	return lws_write(s->wsi, (unsigned char *)message_raw(m), m->raw_len,
			 LWS_WRITE_BINARY) < (int)m->raw_len ?
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
	else if (why == SUB_END_ADMIN)
		lws_close_reason(s->wsi, (enum lws_close_status)4002,
				 (unsigned char *)"closed_by_admin", 15);
	log_debug("closing ws subscriber %llu (end %d)",
		  (unsigned long long)s->h.sub.id, (int)why);
	s->why = why == SUB_END_SLOW     ? "slow consumer" :
		 why == SUB_END_SHUTDOWN ? "shutdown" :
		 why == SUB_END_ADMIN    ? "closed by the admin API" :
					   "peer gone";
	return -1;
}

/* The frames of one item for a coalesced write: 0 and nothing written if
 * they do not fit in room (the item stays for a write of its own). */
static size_t frame_item(struct ws_session *s, struct bus_item *it,
			 unsigned char *p, size_t room)
{
	struct message *m = it->msg;
	const char *text;
	size_t tlen, n;
	bool raw;

	if (m == NULL) {
		char frame[FRAME_ITEM_MAX];

		tlen = frame_format_item(frame, sizeof frame, s->names[it->tap],
					 it);
		if (room < FRAME_HEAD_MAX + tlen)
			return 0;
		n = frame_format_head(p, false, tlen);
		memcpy(p + n, frame, tlen);
		return n + tlen;
	}
	/* the envelope (its meta form before raw bytes), then the bytes */
	raw = s->binary_frames && m->meta_len > 0;
	if (raw) {
		text = message_meta(m);
		tlen = m->meta_len;
		if (room < 2 * FRAME_HEAD_MAX + tlen + m->raw_len)
			return 0;
	} else {
		text = message_json(m);
		tlen = m->json_len;
		if (room < FRAME_HEAD_MAX + tlen)
			return 0;
	}
	n = frame_format_head(p, false, tlen);
	memcpy(p + n, text, tlen);
	n += tlen;
	if (raw) {
		n += frame_format_head(p + n, true, m->raw_len);
		memcpy(p + n, message_raw(m), m->raw_len);
		n += m->raw_len;
	}
	return n;
}

/* Pulled items, several frames to a send: each frame is copied after its
 * header into the loop's buffer (ws_send_buffer), so a session with a
 * backlog pays one system call per WS_SEND_BUFFER bytes instead of one
 * per frame. It pulls again before sending only while the bus says more
 * is waiting (bus_pull's more): at light load a pull's one frame goes out
 * at once, before the pull that parks. What does not fit waits for the
 * next send; an item larger than the whole buffer goes out alone
 * (write_item, from the message's own buffer). >0: parked, 0: written,
 * <0: close. */
static int write_pulled(struct ws_session *s)
{
	unsigned char *buf = ws_send_buffer(s->h.loop);
	struct bus_pull got = { 0 };
	size_t n = 0, k;

	for (;;) {
		if (s->next == s->nitems) {
			bus_pull(srv_of(s)->bus, &s->h.sub, s->items, WS_BATCH,
				 WS_BATCH_BYTES, true, &got);
			s->nitems = got.count;
			s->next = 0;
			if (got.end != SUB_END_NONE || got.parked)
				break; /* what is built goes out first */
			if (got.count == 0) {
				/* the timer with nothing to send: the
				 * heartbeat, as the frame lws makes */
				memcpy(buf, "{\"type\":\"ping\"}", 15);
				return write_text(s, buf - LWS_PRE, 15);
			}
		}
		while (s->next < s->nitems) {
			struct bus_item *it = &s->items[s->next];

			k = frame_item(s, it, buf + n, WS_SEND_BUFFER - n);
			if (k == 0 && n == 0)
				return write_item(s, &s->items[s->next++]);
			if (k == 0)
				goto send;
			n += k;
			s->next++;
			item_out(s, it);
			message_unref(it->msg);
			it->msg = NULL;
		}
		if (!got.more || WS_SEND_BUFFER - n < FRAME_HEAD_MAX + 64)
			goto send;
	}
	if (n > 0 && lws_write(s->wsi, buf, n, LWS_WRITE_HTTP) < (int)n)
		return -1;
	if (got.end != SUB_END_NONE)
		return close_for(s, got.end);
	return 1; /* parked: a wake asks again */
send:
	return lws_write(s->wsi, buf, n, LWS_WRITE_HTTP) < (int)n ? -1 : 0;
}

/* One frame: the raw half of a binary message, the welcome, an ack or
 * error, a staged item, or the next one pulled. >0: parked, 0: written,
 * <0: close. */
static int write_one(struct ws_session *s)
{
	if (s->raw_next)
		return write_raw(s); /* keeps inflight: lws may still read it */
	message_unref(s->inflight);
	s->inflight = NULL;
	if (!s->welcomed)
		return write_welcome(s);
	if (s->ctl_head)
		return write_ctl(s);
	return write_pulled(s);
}

/* Several frames per callback while the socket takes them: each WRITEABLE
 * is a trip through lws's poll loop, which costs more than a write. A
 * frame the socket did not take whole is copied by lws and chokes the
 * pipe, so we stop there and the previous buffer is no longer read. */
static int on_writable(struct ws_session *s)
{
	unsigned char ping[LWS_PRE + 8] = { 0 };
	int r = 0;

	/* before the data: a link busy with a backlog still gets its ping
	 * when the socket takes anything. With a payload, as lws's own
	 * pings have: lws 4.1.6 drops an empty PONG before the callback
	 * (roles/ws/ops-ws.c), and the answer would not count. */
	if (auth_expired(&s->grant, (long long)time(NULL))) {
		/* anypush.js reconnects after a 4001 with a fresh token */
		lws_close_reason(s->wsi, (enum lws_close_status)4001,
				 (unsigned char *)"token_expired", 13);
		s->why = "token expired";
		return -1;
	}
	if (s->ping_due) {
		s->ping_due = false;
		memcpy(ping + LWS_PRE, "anypush", 8);
		if (lws_write(s->wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 8)
			return -1;
	}
	for (int i = 0; i < WS_WRITES_PER_CALLBACK; i++) {
		r = write_one(s);
		/* lws kept what the socket did not take: the socket is full
		 * (lws_send_pipe_choked would ask the kernel with a poll(2)
		 * per frame to learn what lws already knows) */
		if (r != 0 || lws_partial_buffered(s->wsi))
			break;
	}
	if (r > 0)
		return 0; /* parked: a wake asks again */
	/* ask again: the next round writes, or parks when there is nothing */
	lws_callback_on_writable(s->wsi);
	return r;
}

/* ---- loop thread: opening ---- */

/* /channels/LIST?since=&client= as lws decoded it, or /ws?client=; each
 * found after any ?token=, however long (lws_auth_urlarg). */
static int parse_request(struct ws_session *s, struct cursor *since, bool *has)
{
	static const char prefix[] = "/channels/";
	char *uri = xmalloc(URI_MAX), arg[CURSOR_TEXT_MAX + 16];
	struct channel_list chs;
	const char *v;
	int r = -1;

	if (lws_hdr_copy(s->wsi, uri, URI_MAX, WSI_TOKEN_GET_URI) <= 0)
		goto out;
	s->mux = strcmp(uri, "/ws") == 0;
	if (!s->mux) {
		if (strncmp(uri, prefix, sizeof prefix - 1) != 0 ||
		    channel_list_parse(uri + sizeof prefix - 1,
				       strlen(uri + sizeof prefix - 1),
				       &chs) < 0)
			goto out;
		for (size_t i = 0; i < chs.count; i++)
			channel_push(s, chs.name[i], chs.len[i],
				     (struct cursor){ 0, 0 });
		v = lws_auth_urlarg(s->wsi, "since=", arg, sizeof arg);
		*has = v != NULL;
		if (v && cursor_parse(v, strlen(v), s->nch, since) < 0)
			goto out;
	}
	v = lws_auth_urlarg(s->wsi, "presence=", arg, sizeof arg);
	s->h.sub.announce = v &&
			    (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
	v = lws_auth_urlarg(s->wsi, "client=", arg, sizeof arg);
	if (v && !client_id_valid(v, strlen(v)))
		goto out;
	if (v)
		snprintf(s->h.sub.client, sizeof s->h.sub.client, "%s", v);
	else
		clientid_new(s->h.sub.client);
	r = 0;
out:
	free(uri);
	return r;
}

/* The credential of the handshake against its channels and ?client=:
 * refused, a close 4001 (no or bad token) or 4003 (not allowed) with the
 * code as reason. /ws may come without a token, to send it in an auth op
 * (or to read public channels). */
static int authorize(struct ws_session *s, const struct channel_list *chs)
{
	char buf[CLIENT_ID_MAX + 16];
	const char *client = lws_auth_urlarg(s->wsi, "client=", buf,
					     sizeof buf);
	struct auth_error err;

	if (auth_open())
		return 0;
	if (lws_auth_check(s->wsi, &s->grant, &err) < 0 ||
	    auth_subscribe_check(&s->grant, chs, client, &err) < 0) {
		lws_close_reason(s->wsi,
				 (enum lws_close_status)(
					 err.status == 403 ? 4003 : 4001),
				 (unsigned char *)err.code, strlen(err.code));
		s->why = err.code;
		return -1;
	}
	/* the sub even if a long ?token= hid ?client= from parse_request */
	if (s->grant.sub[0])
		snprintf(s->h.sub.client, sizeof s->h.sub.client, "%s",
			 s->grant.sub);
	return 0;
}

#define WS_CHANNELS_TEXT                                    \
	"this address creates channels faster than it may " \
	"(--new-channels-per-ip); retry later"

/* --new-channels-per-ip: take a token for each of the channels that do
 * not exist (a publish or subscribe creates them); false when refused.
 * With --redis a publish goes to Redis and creates no channel here: the
 * caller says so with none. */
static bool channels_allowed(struct ws_session *s,
			     const struct channel_list *chs, size_t *fresh)
{
	unsigned retry;

	*fresh = 0;
	if (chs == NULL || !limits_new_channels_on())
		return true;
	*fresh = bus_channels_missing(srv_of(s)->bus, chs);
	if (limits_new_channels(s->ip, *fresh, bus_now_ms(), &retry))
		return true;
	metrics_add(&metrics.channel_rate_limited, 1);
	return false;
}

/* Take a publish to channel from the client IP's buckets and the client
 * id's; NULL when all gave one, else the error frame's code in *code and
 * message as the result. A refused publish spends nothing. */
static const char *publish_refusal(struct ws_session *s, const char *channel,
				   const char **code)
{
	struct channel_list one = { .count = 1,
				    .name = { channel },
				    .len = { strlen(channel) } };
	unsigned retry;
	size_t fresh;
	enum limits_verdict v;

	*code = "channel_rate_limited";
	if (!channels_allowed(s, srv_of(s)->redis ? NULL : &one, &fresh))
		return WS_CHANNELS_TEXT;
	v = limits_publish_from(s->ip, s->h.sub.client, bus_now_ms(), &retry);
	if (v == LIMITS_OK)
		return NULL;
	limits_new_channels_refund(s->ip, fresh, bus_now_ms());
	metrics_add(&metrics.rate_limited, 1);
	*code = "rate_limited";
	return v == LIMITS_IP ? "too many publishes from this address "
				"(--publish-rate-per-ip); retry in a second" :
				"too many publishes from this client id "
				"(--publish-rate-per-client); retry in a "
				"second";
}

static int on_established(struct ws_session *s, struct lws *wsi)
{
	struct ws_loop *loop = ws_loop_of(wsi);
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	uint64_t hb = config_live(ws_server(loop)->cfg, heartbeat) * 1000;
	struct channel_list chs = { .count = 0 };
	bool has_since = false;
	size_t fresh;

	lws_sub_init(&s->h, loop, on_ready);
	s->wsi = wsi;
	s->opened_ms = bus_now_ms();
	/* read once, for the limits (abuse.h) */
	ws_client_ip(wsi, s->ip);
	cost_request(TRANSPORT_WS);
	if (parse_request(s, since, &has_since) < 0) {
		log_debug("ws request refused after routing");
		return -1;
	}
	for (size_t i = 0; i < s->nch; i++) {
		chs.name[i] = s->names[i];
		chs.len[i] = strlen(s->names[i]);
	}
	chs.count = s->nch;
	if (authorize(s, &chs) < 0)
		return -1;
	/* after the upgrade: a close with the code as its reason */
	if (!channels_allowed(s, &chs, &fresh)) {
		lws_close_reason(wsi, (enum lws_close_status)1013,
				 (unsigned char *)"channel_rate_limited", 20);
		s->why = "--new-channels-per-ip";
		return -1;
	}
	s->h.sub.transport = &transport_ws;
	s->h.sub.period_ms = hb;
	s->h.sub.deadline_ms = bus_now_ms() + hb;
	if (srv_of(s)->cfg->redis[0] && !s->mux) {
		/* the first timer also bounds the welcome's wait on Redis */
		s->welcome_by = bus_now_ms() + WS_WELCOME_WAIT_MS;
		if (hb == 0 || hb > WS_WELCOME_WAIT_MS)
			s->h.sub.deadline_ms = s->welcome_by;
	}
	if (bus_attach(srv_of(s)->bus, &s->h.sub, &chs,
		       has_since ? since : NULL, s->cursor) != BUS_OK) {
		lws_close_reason(wsi, (enum lws_close_status)1013,
				 (unsigned char *)"unavailable", 11);
		s->why = "bus refused the subscription";
		return -1;
	}
	s->attached = true;
	ws_alive_add(ws_alive_of(loop), &s->alive, bus_now_ms());
	metrics_add(&metrics.subscriptions[TRANSPORT_WS], 1);
	lws_callback_on_writable(wsi);
	return 0;
}

/* ---- loop thread: the multiplexed /ws operations ---- */

static bool refused(struct ws_session *s, const struct mux_op *op, int err)
{
	if (err == BUS_SHUTTING_DOWN)
		reply_error(s, op, "shutting_down",
			    "the gateway is restarting");
	else if (err == BUS_TOO_MANY_CHANNELS)
		reply_error(s, op, "over_capacity", "too many channels");
	else if (err == BUS_IDEM_CONFLICT)
		reply_error(s, op, "idempotency_conflict",
			    "this key was used for another message on this "
			    "channel");
	return err != 0;
}

/* err's code and words as the op's error frame; false if err is unset */
static bool auth_refused(struct ws_session *s, const struct mux_op *op, int r,
			 const struct auth_error *err)
{
	if (r == 0)
		return false;
	reply_error(s, op, err->code, err->message);
	return true;
}

static void mux_subscribe(struct ws_session *s, const struct mux_op *op)
{
	struct cursor start;
	struct auth_error err;
	struct channel_list one = { .count = 1,
				    .name = { op->channel },
				    .len = { strlen(op->channel) } };
	size_t fresh;

	if (auth_refused(s, op,
			 auth_subscribe_check(&s->grant, &one, NULL, &err),
			 &err))
		return;

	if (channel_find(s, op->channel) >= 0) {
		reply_error(s, op, "already_subscribed",
			    "this connection is subscribed to that channel");
		return;
	}
	if (s->nch >= srv_of(s)->cfg->max_subscriptions) {
		char why[96];

		snprintf(why, sizeof why,
			 "at most %lu channels on one connection "
			 "(--max-subscriptions)",
			 srv_of(s)->cfg->max_subscriptions);
		metrics_add(&metrics.subscriptions_refused, 1);
		reply_error(s, op, "too_many_channels", why);
		return;
	}
	if (!channels_allowed(s, &one, &fresh)) {
		reply_error(s, op, "channel_rate_limited", WS_CHANNELS_TEXT);
		return;
	}
	if (refused(s, op,
		    bus_tap_add(srv_of(s)->bus, &s->h.sub, op->channel,
				strlen(op->channel),
				op->has_since ? &op->since : NULL, op->presence,
				&start)))
		return;
	channel_push(s, op->channel, strlen(op->channel), start);
	if (srv_of(s)->redis &&
	    !bus_welcome(srv_of(s)->bus, &s->h.sub, s->nch - 1, 1,
			 &s->cursor[s->nch - 1])) {
		/* the ack waits for the channel's first sync (ack_ready) */
		struct ctl *c = ctl_new();

		c->wait_op = xmalloc(sizeof *c->wait_op);
		*c->wait_op = *op;
		/* a subscribe owns neither: the copy must not free them */
		memset(&c->wait_op->data, 0, sizeof c->wait_op->data);
		c->wait_op->token = NULL;
		c->wait_by = bus_now_ms() + WS_WELCOME_WAIT_MS;
		c->start = start;
		c->len = 0;
		/* the timer bounds the wait when the heartbeat is longer */
		bus_set_deadline(srv_of(s)->bus, &s->h.sub, c->wait_by);
		ctl_append(s, c);
		return;
	}
	/* with --redis, synced since bus_tap_add: as bus_welcome filled it */
	reply_ack(s, op, &s->cursor[s->nch - 1], NULL, false);
}

static void mux_unsubscribe(struct ws_session *s, const struct mux_op *op)
{
	long i = channel_find(s, op->channel);

	if (i < 0) {
		reply_error(
			s, op, "not_subscribed",
			"this connection is not subscribed to that channel");
		return;
	}
	channel_drop(s, (size_t)i);
	bus_tap_remove(srv_of(s)->bus, &s->h.sub, (size_t)i);
	reply_ack(s, op, NULL, NULL, false);
}

/* A /ws publish waiting for Redis: what its ack needs to find the
 * session, if it is still there, and to say which publish it answers. */
struct remote_ack {
	struct bus *bus;
	uint64_t sub_id;
	struct mux_op op; /* its ref, for the answer */
};

/* Under the bus lock (the engine's thread): queue the ack for the
 * session's loop. */
static void queue_ack(struct subscriber *sub, void *cls)
{
	struct ws_session *s = (struct ws_session *)sub;
	struct ctl *c = cls;

	if (s->acks_tail)
		s->acks_tail->next = c;
	else
		s->acks_head = c;
	s->acks_tail = c;
	ws_ready(s->h.loop, &s->h.link);
}

/* The engine's thread: Redis answered a /ws publish. */
static void on_remote_ack(void *cls, enum redis_engine_status st,
			  uint64_t epoch, uint64_t id)
{
	struct remote_ack *ra = cls;
	struct ctl *c = ctl_new();
	char *text = (char *)c->buf + LWS_PRE;

	if (st == REDIS_ENGINE_STORED || st == REDIS_ENGINE_REPLAYED) {
		struct cursor at = { .epoch = epoch, .id = id };

		c->len = frame_format_ack(text, FRAME_CTL_MAX, &ra->op, NULL,
					  &at, st == REDIS_ENGINE_REPLAYED);
	} else if (st == REDIS_ENGINE_CONFLICT) {
		c->len = frame_format_error(
			text, FRAME_CTL_MAX, &ra->op, "idempotency_conflict",
			"this key was used for another message on this "
			"channel");
	} else {
		c->len = frame_format_error(
			text, FRAME_CTL_MAX, &ra->op, "redis_unavailable",
			"the message was not stored (Redis is unreachable); "
			"retry, with a key to be safe");
	}
	/* a session that is gone was detached: nobody to tell */
	if (!bus_with_subscriber(ra->bus, ra->sub_id, queue_ack, c))
		free(c);
	free(ra);
}

/* With --redis: the ack comes when Redis answers (on_remote_ack). */
static void mux_publish_remote(struct ws_session *s, const struct mux_op *op,
			       const struct payload *data)
{
	struct remote_ack *ra = xcalloc(1, sizeof *ra);

	ra->bus = srv_of(s)->bus;
	ra->sub_id = s->h.sub.id;
	ra->op.has_ref = op->has_ref;
	ra->op.ref = op->ref;
	/* the acks owed count against the control queue's bound */
	if (++s->nremote + s->nctl >= CTL_HIGH && !s->rx_paused) {
		lws_rx_flow_control(s->wsi, 0);
		s->rx_paused = true;
	}
	publish_message_remote(srv_of(s), op->channel, strlen(op->channel),
			       op->event[0] ? op->event : NULL, s->h.sub.client,
			       op->exclude_sender, data,
			       op->key[0] ? op->key : NULL, on_remote_ack, ra);
}

static void mux_publish(struct ws_session *s, const struct mux_op *op,
			const struct payload *data)
{
	bool replayed;
	struct cursor at;
	struct auth_error err;
	const char *why, *code;

	if (auth_refused(s, op,
			 auth_publish_check(&s->grant, op->channel, NULL, &err),
			 &err))
		return;
	why = publish_refusal(s, op->channel, &code);
	if (why) {
		reply_error(s, op, code, why);
		return;
	}
	if (srv_of(s)->redis) {
		/* the drain: refused here, as the embedded bus refuses it */
		if (bus_shutting_down(srv_of(s)->bus))
			refused(s, op, BUS_SHUTTING_DOWN);
		else
			mux_publish_remote(s, op, data);
		return;
	}
	if (refused(s, op,
		    publish_message_keyed(
			    srv_of(s), op->channel, strlen(op->channel),
			    op->event[0] ? op->event : NULL, s->h.sub.client,
			    op->exclude_sender, data,
			    op->key[0] ? op->key : NULL, &at, &replayed)))
		return;
	reply_ack(s, op, NULL, &at, replayed);
}

/* After a new grant: end every subscription it does not cover, each
 * with an error frame naming the channel, queued before the auth op's
 * ack. Staged items of the channel go with it (channel_drop), so nothing
 * of it is written after the frame. */
static void drop_uncovered(struct ws_session *s)
{
	for (size_t i = s->nch; i-- > 0;) {
		struct ctl *c;

		if (auth_may_read(&s->grant, s->names[i]))
			continue;
		c = ctl_new();
		c->len = frame_format_channel_error(
			(char *)c->buf + LWS_PRE, FRAME_CTL_MAX, s->names[i],
			"forbidden",
			"the new token does not cover this channel: "
			"unsubscribed");
		ctl_append(s, c);
		log_debug("ws subscriber %llu: %s no longer covered, dropped",
			  (unsigned long long)s->h.sub.id, s->names[i]);
		channel_drop(s, i);
		bus_tap_remove(srv_of(s)->bus, &s->h.sub, i);
	}
}

/* A fresh token for this socket, before the old one's exp. Its sub, if
 * any, must be the connection's client id: a socket does not change who
 * it is. Channels it no longer covers are unsubscribed (drop_uncovered);
 * the others stay. */
static void mux_auth(struct ws_session *s, const struct mux_op *op)
{
	struct auth_grant g = { .admin = false };
	struct auth_error err;

	if (auth_refused(
		    s, op,
		    auth_check_token(op->token, strlen(op->token), &g, &err),
		    &err))
		goto out;
	if (!auth_client_ok(&g, s->h.sub.client)) {
		reply_error(s, op, "client_mismatch",
			    "the token's sub is not this connection's client "
			    "id");
		goto out;
	}
	auth_grant_free(&s->grant);
	s->grant = g;
	memset(&g, 0, sizeof g);
	drop_uncovered(s);
	reply_ack(s, op, NULL, NULL, false);
out:
	auth_grant_free(&g);
}

static void mux_text(struct ws_session *s)
{
	struct mux_error err;
	struct mux_op op;

	if (ws_mux_parse((const char *)s->rx, s->rx_len, &op, &err) < 0) {
		reply_error(s, &op, err.code, err.message);
		return;
	}
	switch (op.kind) {
	case MUX_SUBSCRIBE:
		mux_subscribe(s, &op);
		break;
	case MUX_UNSUBSCRIBE:
		mux_unsubscribe(s, &op);
		break;
	case MUX_PUBLISH:
		if (op.binary) {
			if (s->awaiting_binary)
				reply_error(
					s, &s->pending, "binary_replaced",
					"another binary publish came before "
					"this one's binary frame");
			ws_mux_op_free(&s->pending);
			s->pending = op; /* its data is the next binary frame */
			s->awaiting_binary = true;
			return;
		}
		mux_publish(s, &op, &op.data);
		break;
	case MUX_HELLO:
		s->binary_frames = op.binary_frames;
		reply_ack(s, &op, NULL, NULL, false);
		break;
	case MUX_AUTH:
		mux_auth(s, &op);
		break;
	}
	ws_mux_op_free(&op);
}

static void mux_binary(struct ws_session *s)
{
	struct mux_op none = { .has_ref = false };
	struct payload p;

	if (!s->awaiting_binary) {
		reply_error(s, &none, "unexpected_binary",
			    "a binary frame needs a publish with binary:true "
			    "first");
		return;
	}
	s->awaiting_binary = false;
	payload_from_binary(s->rx, s->rx_len, &p);
	mux_publish(s, &s->pending, &p);
	payload_free(&p);
	ws_mux_op_free(&s->pending);
}

/* ---- loop thread: receiving ---- */

/* A single-channel connection publishes what the client sends. */
static void publish_rx(struct ws_session *s)
{
	struct payload p;
	struct cursor at;
	const char *why, *code;

	if (!auth_may_publish(&s->grant, s->names[0])) {
		log_debug("publish from ws refused: no grant");
		return;
	}
	/* this mode has no error frame: a refused publish is dropped */
	why = publish_refusal(s, s->names[0], &code);
	if (why) {
		log_debug("publish from ws refused: %s", why);
		return;
	}
	if (s->rx_binary)
		payload_from_binary(s->rx, s->rx_len, &p);
	else if (payload_from_any((const char *)s->rx, s->rx_len, &p) !=
		 PAYLOAD_OK)
		return;
	if (publish_message(srv_of(s), s->names[0], strlen(s->names[0]), NULL,
			    s->h.sub.client, false, &p, &at) != 0)
		log_debug("publish from ws refused");
	payload_free(&p);
}

static void message_complete(struct ws_session *s)
{
	if (!s->mux)
		publish_rx(s);
	else if (s->rx_binary)
		mux_binary(s);
	else
		mux_text(s);
	free(s->rx);
	s->rx = NULL;
	s->rx_len = 0;
}

/* Close with the reason already set, from the writable callback: a -1
 * from RECEIVE while libwebsockets still holds more of the read (a frame
 * comes in rx_buffer_size pieces) often dropped the connection before the
 * close frame went out. Nothing more is read meanwhile, and a peer that
 * never lets us write is dropped after the same 5 s lws gives a close
 * frame. */
static int refuse(struct ws_session *s)
{
	s->refused = true;
	lws_rx_flow_control(s->wsi, 0);
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
	lws_callback_on_writable(s->wsi);
	return 0;
}

static int on_receive(struct ws_session *s, const void *in, size_t len)
{
	size_t max = config_live(srv_of(s)->cfg, max_message);

	ws_alive_seen(&s->alive, bus_now_ms());
	if (s->refused)
		return 0;
	if (lws_is_first_fragment(s->wsi)) {
		s->rx_len = 0;
		s->rx_binary = lws_frame_is_binary(s->wsi);
	}
	if (!s->mux && s->nch != 1) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
				 (unsigned char *)"publish on one channel", 22);
		s->why = "publish on a multi-channel socket";
		return refuse(s);
	}
	/* the frame header announces the rest: refuse early, not at the end */
	if (s->rx_len + len + lws_remaining_packet_payload(s->wsi) > max) {
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"too big", 7);
		s->why = "frame over --max-message";
		return refuse(s);
	}
	s->rx = xrealloc(s->rx, s->rx_len + len + 1);
	memcpy(s->rx + s->rx_len, in, len);
	s->rx_len += len;
	if (lws_is_final_fragment(s->wsi) &&
	    lws_remaining_packet_payload(s->wsi) == 0)
		message_complete(s);
	return 0;
}

static void on_closed(struct ws_session *s)
{
	/* the last frames, and the close frame */
	if (s->wsi)
		cost_bytes(TRANSPORT_WS, lws_get_socket_fd(s->wsi),
			   &s->bytes.base);
	/* names, never the request line: a query may carry a secret */
	if (s->opened_ms)
		log_debug("closed ws %s%s after %.3f s, %lu messages sent: %s",
			  s->mux ? "/ws" : "/channels/",
			  s->mux || s->nch == 0 ? "" : s->names[0],
			  (double)(bus_now_ms() - s->opened_ms) / 1000, s->sent,
			  s->why ? s->why : "peer closed or link lost");
	if (s->attached)
		bus_detach(srv_of(s)->bus, &s->h.sub);
	s->attached = false;
	ws_alive_remove(&s->alive);
	if (s->h.loop)
		ws_unready(s->h.loop, &s->h.link);
	bus_items_release(s->items + s->next, s->nitems - s->next);
	s->nitems = s->next = 0;
	message_unref(s->inflight);
	s->inflight = NULL;
	while (s->ctl_head) {
		struct ctl *c = s->ctl_head;

		s->ctl_head = c->next;
		free(c->wait_op);
		free(c);
	}
	/* detached above: no ack can be queued any more */
	while (s->acks_head) {
		struct ctl *c = s->acks_head;

		s->acks_head = c->next;
		free(c);
	}
	for (size_t i = 0; i < s->nch; i++)
		free(s->names[i]);
	free(s->names);
	free(s->cursor);
	s->names = NULL;
	s->cursor = NULL;
	s->nch = 0;
	ws_mux_op_free(&s->pending);
	free(s->rx);
	s->rx = NULL;
	auth_grant_free(&s->grant);
}

static int session_callback(struct ws_session *s, struct lws *wsi,
			    enum lws_callback_reasons reason, void *in,
			    size_t len)
{
	int r;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(s, wsi);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!s->attached || s->refused)
			return -1;
		r = on_writable(s);
		cost_bytes_lazy(TRANSPORT_WS, lws_get_socket_fd(wsi), &s->bytes,
				bus_now_ms());
		return r;
	case LWS_CALLBACK_RECEIVE:
		return on_receive(s, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (s->attached)
			ws_alive_pong(ws_alive_of(s->h.loop), &s->alive,
				      bus_now_ms());
		return 0;
	case LWS_CALLBACK_CLOSED:
		on_closed(s);
		return 0;
	default:
		return 0;
	}
}

/* The session's callbacks are the WebSocket transport's CPU cost; the
 * 101 handshake lws wrote before ESTABLISHED is counted with the first
 * frames (bytes.base starts at 0). */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	struct ws_session *s = user;
	uint64_t cpu;
	int r;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_RECEIVE_PONG:
	case LWS_CALLBACK_CLOSED:
		cpu = cost_cpu_now();
		r = session_callback(s, wsi, reason, in, len);
		if (r < 0)
			s->ending = true;
		cost_cpu(TRANSPORT_WS, cpu);
		return r;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		s->ending = true; /* lws answers it; nothing more from us */
		return 0;
	case LWS_CALLBACK_HTTP:
		return -1; /* the router sends only upgrades here */
	default:
		return 0;
	}
}

/* ---- loop thread: keepalive (ws_alive.c, from the loop's wake) ---- */

static void alive_ping(struct ws_alive_link *link)
{
	struct ws_session *s = from_alive(link);

	s->ping_due = true;
	lws_callback_on_writable(s->wsi);
}

/* Dropped without a close frame, as lws's own validity hang-up did: a
 * peer that answers nothing would not read one. Killed through a timeout
 * of 0, not WRITEABLE, which a peer with a full window never lets come;
 * one insert into lws's sorted list per connection, at its end. */
static void alive_hangup(struct ws_alive_link *link)
{
	struct ws_session *s = from_alive(link);

	log_debug("ws subscriber %llu silent for --ws-hangup: dropped",
		  (unsigned long long)s->h.sub.id);
	s->why = "no pong within --ws-hangup";
	s->ending = true;
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

const struct ws_alive_ops lws_ws_alive = {
	.ping = alive_ping,
	.hangup = alive_hangup,
};

/* One protocol serves WebSockets, SSE streams and long polls (ws.c).
 * rx_buffer_size is allocated for every connection: 1 KiB keeps an idle
 * WebSocket under 5 KB, and on_receive reassembles larger frames.
 * tx_packet_size must be set apart: left 0, lws 4.1.6 cuts every send()
 * to rx_buffer_size and sends the rest from later writable callbacks, so
 * a 4 KiB message took four system calls and as many loop turns (with 1
 * KiB: SSE at 4 KiB x 10,000/s cost 120 us per delivery instead of 13,
 * and 64 KiB messages fell seconds behind). It only bounds one send(); lws
 * allocates nothing of that size. */
#define WS_TX_PACKET_MAX (1u << 20)

const struct lws_protocols lws_ws_protocol = {
	.name = "anypush.v1",
	.callback = ws_callback,
	.per_session_data_size = sizeof(struct ws_session),
	.rx_buffer_size = 1024,
	.tx_packet_size = WS_TX_PACKET_MAX,
};
