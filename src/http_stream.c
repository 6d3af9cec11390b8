/* Streams hosted by libmicrohttpd: a content reader that writes what the
 * stream's technique (stream.h; Server-Sent Events is the one today)
 * gives, for the stream requests the router does not give to
 * libwebsockets (lws_stream.c holds the valid ones): it answers their JSON
 * errors, and serves those that are valid after all (past --max-streams,
 * the 503; or one that follows another request on a kept-alive
 * connection). The reader is called when MHD has room in the
 * connection's write buffer; it copies as much as fits (batching under
 * load comes free), and when there is nothing to send the technique has
 * suspended the connection (host_mhd's park) and it returns 0, which MHD
 * allows only together with a suspend (without it, MHD spins). */
#include "capacity.h"
#include "cost.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "server.h"
#include "stream.h"
#include "transport.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>

/* MHD allocates the response with a buffer of this size. Over HTTP/1.1
 * (chunked) libmicrohttpd 0.9.75 never uses it: the reader writes into
 * the connection's own write buffer (try_ready_chunked_body), so a large
 * one only costs memory on every held stream (4 KiB each, measured with
 * bench/idle_mem.py). HTTP/1.0 gets an unchunked body read through this
 * buffer, one block per call, so it keeps a buffer worth a send. Neither
 * size caps a message: the reader continues it in the next call. */
#define BLOCK_CHUNKED 64
#define BLOCK_HTTP10 4096

struct http_stream {
	struct http_sub hs;
	const struct stream_ops *ops;
	bool ended; /* the last bytes are given: END_OF_STREAM next */
	alignas(max_align_t) unsigned char state[]; /* ops->state_size */
};

static ssize_t fill(struct http_stream *st, char *buf, size_t max)
{
	struct http_request *req = st->hs.req;
	const struct stream_env env = {
		.bus = req->srv->bus,
		.sub = &st->hs.sub,
		.cursor = st->hs.cursor,
		.chs = &req->channels,
		.client = st->hs.sub.client,
		.heartbeat = config_live(req->srv->cfg, heartbeat),
		.sent = &req->sent,
		.exp_s = req->token_exp,
	};
	size_t n;

	if (st->ended)
		return MHD_CONTENT_READER_END_OF_STREAM;
	switch (st->ops->fill(st->state, &env, buf, max, &n)) {
	case STREAM_MORE:
		/* with n copied while parked, MHD calls again once it is
		 * sent */
		return (ssize_t)n;
	case STREAM_PARKED:
		return 0; /* suspended: idle until the wake */
	case STREAM_END:
		/* called again once the last bytes are sent: then the end */
		st->ended = n > 0;
		return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
	case STREAM_ERROR:
	default:
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

/* MHD asks for more when it has written what the last call gave it, so
 * the bytes written since are this stream's. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	struct http_request *req = st->hs.req;
	uint64_t cpu = cost_cpu_now();
	ssize_t r;

	(void)pos;
	cost_bytes(req->transport->id, req->fd, &req->bytes_base);
	r = fill(st, buf, max);
	cost_cpu(req->transport->id, cpu);
	return r;
}

static const char *arg_of(void *ctx, const char *name)
{
	return http_arg(ctx, name);
}

static int stream_serve(struct http_request *req)
{
	const struct stream_ops *ops = stream_of(req->transport);
	uint64_t hb = config_live(req->srv->cfg, heartbeat) * 1000;
	const char *code = NULL, *message = NULL;
	struct MHD_Response *resp;
	struct http_stream *st;
	uint64_t deadline;
	int r;

	if (req->tstate)
		return MHD_YES;
	st = xcalloc(1, sizeof *st + ops->state_size);
	st->ops = ops;
	deadline = bus_now_ms() + hb;
	if (ops->open(st->state, arg_of, req, req->srv->cfg->redis[0] != '\0',
		      hb, &deadline, &code, &message) < 0) {
		ops->close(st->state);
		free(st);
		return http_reply_error(req->conn, 400, code, message);
	}
	/* given back in stream_finish, which runs only if tstate is set */
	if (!capacity_take_stream(req->srv->cap)) {
		ops->close(st->state);
		free(st);
		return http_reply_over_capacity(
			req->conn, "the gateway holds as many streams as it "
				   "takes (--max-streams); retry");
	}
	req->tstate = st;
	r = http_sub_open(&st->hs, req, deadline, hb, req->presence);
	if (r != -1)
		return r;
	resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, req->http_1_0 ? BLOCK_HTTP10 : BLOCK_CHUNKED,
		stream_read, st, NULL);
	/* st stays in req->tstate: stream_finish frees it when MHD closes */
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ops->content_type);
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "X-Client-Id", req->client);
	return http_reply_queue(req->conn, 200, resp);
}

static void stream_finish(struct http_request *req)
{
	struct http_stream *st = req->tstate;

	if (st == NULL)
		return;
	http_sub_close(&st->hs);
	st->ops->close(st->state);
	free(st);
	req->tstate = NULL;
	capacity_give_stream(req->srv->cap);
}

const struct mhd_guest mhd_stream = {
	.serve = stream_serve,
	.finish = stream_finish,
};
