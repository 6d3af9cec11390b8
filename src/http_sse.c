/* Server-Sent Events hosted by libmicrohttpd: a content reader, for the
 * SSE requests the router does not give to libwebsockets (lws_sse.c holds
 * the valid ones): it answers their JSON errors, and serves those that
 * are valid after all (past --max-streams, the 503; or one that follows
 * another request on a kept-alive connection). What the stream says is
 * the technique's (transport_sse.c). The reader is called when MHD has
 * room in the connection's write buffer; it copies as many events as fit
 * (batching under load comes free), and when there is nothing to send it
 * suspends the connection and returns 0, which MHD allows only together
 * with a suspend (without it, MHD spins). */
#include "capacity.h"
#include "cost.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "server.h"
#include "sse_format.h"
#include "sse_out.h"
#include "transport.h"
#include "transport_sse.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

/* Parked, so nothing is staged and every pulled item is written. */
static void go_idle(struct sse *st)
{
	free(st->busy);
	st->busy = NULL;
}

static ssize_t fill(struct sse *st, char *buf, size_t max)
{
	struct http_request *req = st->hs.req;
	struct sse_out_src src;
	size_t n;

	if (st->busy == NULL)
		st->busy = xmalloc(sizeof *st->busy);
	src = (struct sse_out_src){
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
		.exp_s = req->token_exp,
	};
	switch (sse_fill(&st->out, &src, buf, max, &n)) {
	case SSE_FILL_MORE:
		/* with n copied while parked, MHD calls again once it is
		 * sent; the buffer is kept for that call, which often has
		 * more */
		return (ssize_t)n;
	case SSE_FILL_PARKED:
		/* 0 only when parked (suspended): idle until the wake */
		go_idle(st);
		return 0;
	case SSE_FILL_END:
		/* called again once the last bytes are sent: then the end */
		return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
	case SSE_FILL_ERROR:
	default:
		return MHD_CONTENT_READER_END_WITH_ERROR;
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

const struct mhd_guest mhd_sse = {
	.serve = sse_serve,
	.finish = sse_finish,
};
