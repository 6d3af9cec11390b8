/* Server-Sent Events on a libmicrohttpd content reader, for the SSE
 * requests the router does not give to libwebsockets (transport_sse_lws.c
 * holds the valid ones): it answers their JSON errors, and serves those
 * that are valid after all (past --max-streams, the 503). Each event's data
 * is the message's shared envelope, the same bytes WebSocket and poll
 * clients get, so every transport carries channel, ts, from and binary. The reader is
 * called when MHD has room in the connection's write buffer; it copies as
 * many events as fit (batching under load comes free), and when there is
 * nothing to send it suspends the connection and returns 0, which MHD
 * allows only together with a suspend (without it, MHD spins). */
#include "auth.h"
#include "capacity.h"
#include "cost.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "server.h"
#include "sse_format.h"
#include "sse_out.h"
#include "transport.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_BATCH 16
#define SSE_BATCH_BYTES (64u << 10)
#define PING ": ping\nevent: ping\ndata: {}\n\n"
/* MHD allocates the response with a buffer of this size. Over HTTP/1.1
 * (chunked) libmicrohttpd 0.9.75 never uses it: the reader writes into
 * the connection's own write buffer (try_ready_chunked_body), so a large
 * one only costs memory on every held stream (4 KiB each, measured with
 * bench/idle_mem.py). HTTP/1.0 gets an unchunked body read through this
 * buffer, one block per call, so it keeps a buffer worth a send. Neither
 * size caps a message: the reader continues it in the next call. */
#define SSE_BLOCK_CHUNKED 64
#define SSE_BLOCK_HTTP10 4096

/* What only a stream with something to write needs: allocated when the
 * reader is called and freed when it parks the stream, so an idle stream
 * does not hold 3.5 KiB it is not using (bench/idle_mem.py). */
struct sse_busy {
	struct bus_item items[SSE_BATCH]; /* pulled, not yet written */
	char scratch[SSE_FORMAT_MAX];
};

struct sse {
	struct http_sub hs;
	struct sse_busy *busy; /* NULL while idle */
	struct sse_out out;    /* what is staged, of busy->items */
	bool named; /* messages as events of their own name (?sse_events) */
	/* the last event (token expired, admin) is staged: end once sent */
	bool ending;
};

/* Stage the next thing to send; false if nothing is ready. */
static bool stage_next(struct sse *st)
{
	struct http_request *req = st->hs.req;
	const struct sse_out_src src = {
		.items = st->busy->items,
		.scratch = st->busy->scratch,
		.cursor = st->hs.cursor,
		.chs = &req->channels,
		.client = st->hs.sub.client,
		.heartbeat = config_live(req->srv->cfg, heartbeat),
		.named = st->named,
		.sent = &req->sent,
		.bus = req->srv->bus,
		.sub = &st->hs.sub,
	};

	return sse_out_next(&st->out, &src);
}

/* Parked, so nothing is staged and every pulled item is written. */
static void go_idle(struct sse *st)
{
	free(st->busy);
	st->busy = NULL;
}

static ssize_t fill(struct sse *st, char *buf, size_t max)
{
	struct bus_pull got;
	size_t n = 0;

	if (st->busy == NULL)
		st->busy = xmalloc(sizeof *st->busy);
	for (;;) {
		n += sse_out_drain(&st->out, buf + n, max - n);
		if (sse_out_staged(&st->out) || n == max)
			return (ssize_t)n;
		/* the last event is sent: nothing after it, not even a
		 * welcome whose sync lands after redis_unavailable */
		if (st->ending)
			return n ? (ssize_t)n :
				   MHD_CONTENT_READER_END_OF_STREAM;
		if (stage_next(st))
			continue;
		if (st->hs.req->token_exp &&
		    (long long)time(NULL) >= st->hs.req->token_exp) {
			st->ending = true;
			sse_out_stage(&st->out, AUTH_SSE_EXPIRED,
				      sizeof AUTH_SSE_EXPIRED - 1);
			continue;
		}
		if (sse_out_late(&st->out)) {
			st->ending = true;
			sse_out_stage(&st->out, SSE_FORMAT_REDIS_DOWN,
				      sizeof SSE_FORMAT_REDIS_DOWN - 1);
			continue;
		}
		/* nothing goes before the welcome: while it waits on Redis,
		 * pull nothing and park until the sync's wake or the timer */
		if (sse_out_waiting(&st->out))
			bus_wait_sync(st->hs.req->srv->bus, &st->hs.sub, &got);
		else
			bus_pull(st->hs.req->srv->bus, &st->hs.sub,
				 st->busy->items, SSE_BATCH, SSE_BATCH_BYTES,
				 n == 0, &got);
		sse_out_pulled(&st->out, got.count);
		if (got.end == SUB_END_SHUTDOWN)
			return n ? (ssize_t)n :
				   MHD_CONTENT_READER_END_OF_STREAM;
		/* the documented end, as transport_sse_lws.c sends it */
		if (got.end == SUB_END_ADMIN) {
			st->ending = true;
			sse_out_stage(&st->out, SSE_FORMAT_ADMIN_ENDED,
				      sizeof SSE_FORMAT_ADMIN_ENDED - 1);
			continue;
		}
		if (got.end != SUB_END_NONE)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		/* the comment keeps proxies from timing out; the event is for
		 * EventSource, which never shows comments to scripts, so a
		 * client can tell an idle stream from a dead one */
		if (sse_out_waiting(&st->out) && !got.parked) {
			continue; /* synced, or the timer: look again */
		} else if (got.count == 0 && got.timer) {
			sse_out_stage(&st->out, PING, sizeof PING - 1);
		} else if (got.count == 0) {
			/* 0 only when parked (suspended): idle until the wake.
			 * With n copied, MHD calls again once it is sent; the
			 * buffer is kept for that call, which often has more */
			if (n == 0)
				go_idle(st);
			return (ssize_t)n;
		}
	}
}

/* MHD asks for more when it has written what the last call gave it, so
 * the bytes written since are this stream's. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *st = cls;
	struct http_request *req = st->hs.req;
	uint64_t cpu = cost_cpu_now();
	ssize_t r;

	(void)pos;
	cost_bytes(TRANSPORT_SSE, req->fd, &req->bytes_base);
	r = fill(st, buf, max);
	cost_cpu(TRANSPORT_SSE, cpu);
	return r;
}

/* ?sse_events=0 sends every message unnamed; 1 (the default) under its
 * event name. -1 if malformed. */
static int read_sse_events(struct http_request *req)
{
	const char *s = http_arg(req, "sse_events");

	if (s == NULL || strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
		return 1;
	if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0)
		return 0;
	return -1;
}

static int sse_serve(struct http_request *req)
{
	uint64_t hb = config_live(req->srv->cfg, heartbeat) * 1000;
	struct MHD_Response *resp;
	uint64_t deadline;
	struct sse *st;
	int named;
	int r;

	if (req->tstate)
		return MHD_YES;
	named = read_sse_events(req);
	if (named < 0)
		return http_reply_error(req->conn, 400, "bad_sse_events",
					"sse_events is 0 or 1");
	/* given back in sse_finish, which runs only if tstate is set */
	if (!capacity_take_stream(req->srv->cap))
		return http_reply_over_capacity(
			req->conn, "the gateway holds as many streams as it "
				   "takes (--max-streams); retry");
	st = xcalloc(1, sizeof *st);
	st->named = named;
	req->tstate = st;
	deadline = bus_now_ms() + hb;
	if (req->srv->cfg->redis[0]) {
		/* the first timer also bounds the welcome's wait on Redis */
		st->out.welcome_by = bus_now_ms() + SSE_OUT_WELCOME_WAIT_MS;
		if (hb == 0 || hb > SSE_OUT_WELCOME_WAIT_MS)
			deadline = st->out.welcome_by;
	}
	r = http_sub_open(&st->hs, req, deadline, hb, req->presence);
	if (r != -1)
		return r;
	resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN,
		req->http_1_0 ? SSE_BLOCK_HTTP10 : SSE_BLOCK_CHUNKED, sse_read,
		st, NULL);
	/* st stays in req->tstate: sse_finish frees it when MHD closes */
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "X-Client-Id", req->client);
	r = http_reply_queue(req->conn, 200, resp);
	return r;
}

static void sse_finish(struct http_request *req)
{
	struct sse *st = req->tstate;

	if (st == NULL)
		return;
	http_sub_close(&st->hs);
	sse_out_free(&st->out, st->busy ? st->busy->items : NULL);
	free(st->busy);
	free(st);
	req->tstate = NULL;
	capacity_give_stream(req->srv->cap);
}

const struct transport transport_sse = {
	.name = "sse",
	.id = TRANSPORT_SSE,
	.serve = sse_serve,
	.finish = sse_finish,
	.park = http_sub_park,
	.wake = http_sub_wake,
	.cut = http_sub_cut,
};
