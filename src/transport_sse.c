/* Server-Sent Events, the technique (stream_sse, stream.h): how much one
 * pull takes, when a ping goes, how the stream ends, and the bytes of
 * each (staged by sse_out.c, formatted by sse_format.c). Its hosts
 * (http_stream.c, lws_stream.c) ask for bytes when their socket has room
 * and write what they get, so a stream sends the same bytes in the same
 * order wherever the router put it. */
#include "stream.h"

#include "auth.h"
#include "bus.h"
#include "sse_format.h"
#include "sse_out.h"
#include "transport.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One pull: at most this many items and about this many bytes, so a
 * stream behind on a busy channel catches up in large writes and one
 * stream cannot hold the bus lock for long. The items are the host's,
 * sized SSE_BATCH (struct sse_out_src). */
#define SSE_BATCH 16
#define SSE_BATCH_BYTES (64u << 10)
/* Sent when a heartbeat passes with nothing else: the comment keeps
 * proxies from timing out; the event is for EventSource, which never
 * shows comments to scripts, so a client can tell an idle stream from a
 * dead one. */
#define SSE_PING ": ping\nevent: ping\ndata: {}\n\n"

/* What only a stream with something to write needs: allocated when it is
 * asked for bytes and freed when it parks, so an idle stream does not
 * hold 3.5 KiB it is not using (bench/idle_mem.py). */
struct sse_busy {
	struct bus_item items[SSE_BATCH]; /* pulled, not yet written */
	char scratch[SSE_FORMAT_MAX];
};

/* A stream's state: what is staged and where it is. */
struct sse_state {
	struct sse_out out;    /* what is staged, of busy->items */
	struct sse_busy *busy; /* NULL while idle */
	bool named; /* messages as events of their own name (?sse_events) */
};

/* Stage the stream's last event: everything staged goes first, then it
 * ends. Staged rather than copied, so it needs no room now. */
static void last_event(struct sse_out *s, const char *event, size_t len,
		       const char *why)
{
	sse_out_stage(s, event, len);
	s->ending = true;
	s->why = why;
}

/* Up to max bytes of the stream into buf (*len of them): the welcome,
 * then events as the bus has them, a ping per quiet heartbeat, and the
 * last event when it ends (token expired, Redis never synced, closed by
 * the admin API). */
static enum stream_fill sse_fill(struct sse_out *s,
				 const struct sse_out_src *src, char *buf,
				 size_t max, size_t *len)
{
	struct bus_pull got;
	size_t n = 0;

	for (;;) {
		n += sse_out_drain(s, buf + n, max - n);
		*len = n;
		if (sse_out_staged(s) || n == max)
			return STREAM_MORE;
		/* the last event is out: nothing after it, not even a
		 * welcome whose sync lands after redis_unavailable */
		if (s->ending)
			return STREAM_END;
		if (sse_out_next(s, src))
			continue;
		if (src->exp_s && (long long)time(NULL) >= src->exp_s) {
			last_event(s, AUTH_SSE_EXPIRED,
				   sizeof AUTH_SSE_EXPIRED - 1,
				   "token expired");
			continue;
		}
		if (sse_out_late(s)) {
			last_event(s, SSE_FORMAT_REDIS_DOWN,
				   sizeof SSE_FORMAT_REDIS_DOWN - 1,
				   "redis unavailable");
			continue;
		}
		/* nothing goes before the welcome: while it waits on Redis,
		 * pull nothing and park until the sync's wake or the timer */
		if (sse_out_waiting(s))
			bus_wait_sync(src->bus, src->sub, &got);
		else
			bus_pull(src->bus, src->sub, src->items, SSE_BATCH,
				 SSE_BATCH_BYTES, n == 0, &got);
		sse_out_pulled(s, got.count);
		if (got.end == SUB_END_SHUTDOWN) {
			s->ending = true;
			s->why = "shutdown";
			continue;
		}
		if (got.end == SUB_END_ADMIN) {
			last_event(s, SSE_FORMAT_ADMIN_ENDED,
				   sizeof SSE_FORMAT_ADMIN_ENDED - 1,
				   "closed by the admin API");
			continue;
		}
		if (got.end != SUB_END_NONE) {
			s->why = got.end == SUB_END_SLOW ? "slow consumer" :
							   "peer gone";
			return STREAM_ERROR;
		}
		if (sse_out_waiting(s) && !got.parked)
			continue; /* synced, or the timer: look again */
		if (got.count == 0 && got.timer)
			sse_out_stage(s, SSE_PING, sizeof SSE_PING - 1);
		else if (got.count == 0)
			return n ? STREAM_MORE : STREAM_PARKED;
	}
}

/* ?sse_events=0 sends every message unnamed; 1 (the default) under its
 * event name. */
static int sse_open(void *state, stream_arg_fn *arg, void *ctx, bool redis,
		    uint64_t period_ms, uint64_t *deadline_ms,
		    const char **code, const char **message)
{
	struct sse_state *st = state;
	const char *v = arg(ctx, "sse_events");

	if (v == NULL || strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
		st->named = true;
	} else if (strcmp(v, "0") != 0 && strcmp(v, "false") != 0) {
		*code = "bad_sse_events";
		*message = "sse_events is 0 or 1";
		return -1;
	}
	if (redis) {
		/* the first timer also bounds the welcome's wait on Redis */
		st->out.welcome_by = bus_now_ms() + SSE_OUT_WELCOME_WAIT_MS;
		if (period_ms == 0 || period_ms > SSE_OUT_WELCOME_WAIT_MS)
			*deadline_ms = st->out.welcome_by;
	}
	return 0;
}

static enum stream_fill sse_fill_op(void *state, const struct stream_env *env,
				    char *buf, size_t max, size_t *len)
{
	struct sse_state *st = state;
	struct sse_out_src src;
	enum stream_fill r;

	if (st->busy == NULL)
		st->busy = xmalloc(sizeof *st->busy);
	src = (struct sse_out_src){
		.items = st->busy->items,
		.scratch = st->busy->scratch,
		.cursor = env->cursor,
		.chs = env->chs,
		.client = env->client,
		.heartbeat = env->heartbeat,
		.named = st->named,
		.sent = env->sent,
		.bus = env->bus,
		.sub = env->sub,
		.exp_s = env->exp_s,
	};
	r = sse_fill(&st->out, &src, buf, max, len);
	if (r == STREAM_PARKED) {
		/* nothing staged, every pulled item written */
		free(st->busy);
		st->busy = NULL;
	}
	return r;
}

static const char *sse_why(const void *state)
{
	return ((const struct sse_state *)state)->out.why;
}

static void sse_close(void *state)
{
	struct sse_state *st = state;

	sse_out_free(&st->out, st->busy ? st->busy->items : NULL);
	free(st->busy);
	st->busy = NULL;
}

const struct stream_ops stream_sse = {
	.transport = &transport_sse,
	.content_type = "text/event-stream",
	.state_size = sizeof(struct sse_state),
	.open = sse_open,
	.fill = sse_fill_op,
	.why = sse_why,
	.close = sse_close,
};
