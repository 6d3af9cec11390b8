/* ws_alive.h: WebSocket keepalive on a coarse timer wheel, one per loop.
 * A session is looked at when its next deadline comes (a ping, or the
 * hang-up); a frame received only stores the time, so the work is O(1)
 * per connection per event, and a turn touches the sessions due, not the
 * sessions open. Loop thread only. */
#ifndef ANYPUSH_WS_ALIVE_H
#define ANYPUSH_WS_ALIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each bucket holds the deadlines of WS_ALIVE_TICK_MS; the wheel spans
 * WS_ALIVE_BUCKETS of them. A deadline further away goes round the
 * wheel once per span, and is looked at and filed again each time. */
#define WS_ALIVE_TICK_MS 250
#define WS_ALIVE_BUCKETS 1024

/* A session's place on the wheel; the session embeds it. */
struct ws_alive_link {
	struct ws_alive_link *prev, *next; /* in its bucket; NULL: none */
	uint64_t due_ms;                   /* when it is looked at next */
	uint64_t seen_ms; /* the last frame received (or the handshake) */
	bool pinged;      /* a ping went out since seen_ms */
};

struct ws_alive_ops {
	/* send a protocol PING (the session asks for WRITEABLE) */
	void (*ping)(struct ws_alive_link *link);
	/* silent for --ws-hangup: close it; the link is already off */
	void (*hangup)(struct ws_alive_link *link);
};

struct ws_alive {
	const struct ws_alive_ops *ops;
	uint64_t ping_ms, hangup_ms;
	uint64_t turned; /* buckets up to this tick number had their turn */
	size_t visits;   /* links looked at by turns, ever (for tests) */
	struct ws_alive_link buckets[WS_ALIVE_BUCKETS]; /* circular heads */
};

void ws_alive_init(struct ws_alive *w, const struct ws_alive_ops *ops,
		   uint64_t ping_ms, uint64_t hangup_ms, uint64_t now_ms);
/* A new session, alive now. */
void ws_alive_add(struct ws_alive *w, struct ws_alive_link *link,
		  uint64_t now_ms);
/* Any frame received, PONG included: it stores the time, nothing more. */
void ws_alive_seen(struct ws_alive_link *link, uint64_t now_ms);
/* A PONG: life, and the next ping is due ping_ms from now, so it is
 * filed again (O(1)): a lazy link would wait for the hang-up deadline
 * its ping set. */
void ws_alive_pong(struct ws_alive *w, struct ws_alive_link *link,
		   uint64_t now_ms);
/* Off the wheel (closed); harmless when not on it. */
void ws_alive_remove(struct ws_alive_link *link);
/* Give every bucket up to now its turn: ping the sessions silent for
 * ping_ms, hang up those silent for hangup_ms, file the others at their
 * next deadline. */
void ws_alive_turn(struct ws_alive *w, uint64_t now_ms);

#endif
