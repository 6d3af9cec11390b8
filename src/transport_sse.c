/* Server-Sent Events, the technique: the same pacing on both libraries,
 * so a stream sends the same bytes in the same order wherever the router
 * put it. What it costs on each library is the host's business (the
 * reasons are in docs/internals/transports.md). */
#include "transport_sse.h"

#include "auth.h"
#include "bus.h"
#include "sse_format.h"

#include <time.h>

/* Stage the stream's last event: everything staged goes first, then it
 * ends. Staged rather than copied, so it needs no room now. */
static void last_event(struct sse_out *s, const char *event, size_t len,
		       const char *why)
{
	sse_out_stage(s, event, len);
	s->ending = true;
	s->why = why;
}

enum sse_fill sse_fill(struct sse_out *s, const struct sse_out_src *src,
		       char *buf, size_t max, size_t *len)
{
	struct bus_pull got;
	size_t n = 0;

	for (;;) {
		n += sse_out_drain(s, buf + n, max - n);
		*len = n;
		if (sse_out_staged(s) || n == max)
			return SSE_FILL_MORE;
		/* the last event is out: nothing after it, not even a
		 * welcome whose sync lands after redis_unavailable */
		if (s->ending)
			return SSE_FILL_END;
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
			return SSE_FILL_ERROR;
		}
		if (sse_out_waiting(s) && !got.parked)
			continue; /* synced, or the timer: look again */
		if (got.count == 0 && got.timer)
			sse_out_stage(s, SSE_PING, sizeof SSE_PING - 1);
		else if (got.count == 0)
			return n ? SSE_FILL_MORE : SSE_FILL_PARKED;
	}
}
