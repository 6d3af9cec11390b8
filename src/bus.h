/* bus.h: the message bus. Channels keep bounded histories of sealed
 * messages; subscribers are cursors into them ("the socket asks, the bus
 * never pushes"). Every function takes the bus lock itself and is safe
 * from any thread. No function writes to a socket. */
#ifndef ANYPUSH_BUS_H
#define ANYPUSH_BUS_H

#include "cursor.h"
#include "dheap.h"
#include "sub_host.h"
#include "transport.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct channel;
struct message;

struct bus_config {
	size_t history_size;     /* messages kept per channel */
	uint64_t history_age_ms; /* and for how long */
	size_t history_bytes;    /* bytes history holds, all channels */
	size_t max_channels;
	size_t lag_limit;            /* bytes a subscriber may fall behind */
	uint64_t presence_window_ms; /* a poller is present this long */
	size_t max_pollers; /* (channel, client) pollers remembered, at most */
	uint64_t idem_window_ms; /* idempotency keys kept this long; 0: none */
	size_t max_idem_keys;    /* (channel, key) pairs remembered, at most */
};

/* Why the bus wants a subscriber closed. */
enum sub_end {
	SUB_END_NONE,
	SUB_END_SLOW,
	SUB_END_DEAD,
	SUB_END_SHUTDOWN,
	SUB_END_ADMIN /* the admin API deleted a channel or the client */
};

/* One channel a subscriber reads. Guarded by the bus lock. */
struct tap {
	struct channel *ch;
	uint64_t cursor;   /* last id handed out */
	bool stale;        /* the cursor is of another incarnation: a gap */
	bool announce;     /* publish join/leave for this subscriber here */
	uint64_t lag_base; /* channel byte count the subscriber has reached */
	uint64_t want_epoch; /* remote: the epoch its cursor named (0: none) */
	bool tail;           /* joined with no cursor: "from now on" */
	/* remote: a cursor past the ring asked Redis for its head (ticket
	 * ask, 0: not asked); past: Redis' head is before the cursor, a gap */
	uint64_t ask;
	bool past;
	/* remote: a cursor before the ring asked Redis for the ids between
	 * (filling); nofill: Redis has none of them, a gap. back[] holds
	 * what it answered, delivered before the ring; back_gap: Redis
	 * lacks the first ones, a gap up to back_gap_to comes first */
	bool filling, nofill, back_gap;
	uint64_t back_gap_to;
	struct message **back;
	size_t nback, back_next;
	struct tap *prev, *next; /* the channel's taps */
	struct subscriber *sub;
};

/* A connection reading one or more channels. The transport embeds it and
 * fills the first block before bus_attach. */
struct subscriber {
	const struct transport *transport; /* the technique, for counting */
	const struct sub_host *host; /* the library holding it: park, wake, cut */
	void *conn;                  /* the host's connection */
	char client[CLIENT_ID_MAX + 1]; /* its client id */
	uint64_t period_ms; /* >0: deadline = last output + period (heartbeat) */
	bool announce;      /* taps made by bus_attach publish join/leave */
	/* park while a channel waits on Redis, though may_park is not set
	 * (a short poll: it waits for Redis, not for news) */
	bool wait_redis;
	/* Guarded by the bus lock from bus_attach to bus_detach. */
	uint64_t id; /* handle for bus_kill */
	bool attached;
	size_t ntaps, taps_cap;
	struct tap **taps;    /* in subscription order; item.tap indexes it */
	bool parked;          /* parked by the transport, wants a wake */
	bool timer_due;       /* deadline passed, not yet reported */
	uint64_t deadline_ms; /* monotonic; 0 = none */
	/* in the bus's deadline heap, under a key never after deadline_ms */
	struct dheap_node deadline_node;
	enum sub_end end;
	struct subscriber *prev, *next, *id_next;
};

/* One step of a subscriber's stream. */
struct bus_item {
	struct message *msg; /* a reference the caller must drop; NULL: gap
			      * or skip */
	unsigned tap;        /* index of the channel in the subscription */
	uint64_t epoch;      /* that channel's incarnation */
	uint64_t cursor;     /* and its cursor (an id) after this item */
	uint64_t gap_last;   /* gap: last id the subscriber had seen */
	bool skip;           /* no message: one this subscriber is excluded
			      * from (its own broadcast) moved the cursor */
};

/* What bus_pull found. */
struct bus_pull {
	size_t count;     /* items filled */
	bool timer;       /* the deadline passed (heartbeat or timeout) */
	bool parked;      /* nothing at all: the transport was parked */
	bool more;        /* stopped at a limit with more pending */
	bool waiting;     /* a channel waits on Redis (its sync, a head
			   * check, older messages): more will come */
	enum sub_end end; /* close the connection; no items */
};

struct bus_channel_info {
	uint64_t epoch; /* the incarnation; 0 when there is no channel */
	uint64_t last_id, oldest_id;
	size_t retained;
	size_t subscribers[TRANSPORT_COUNT];
};

struct bus_stats {
	size_t channels, retained, retained_bytes, subscribers;
	size_t pollers;         /* (channel, client) pollers remembered */
	uint64_t poller_visits; /* pollers expiry has looked at, ever */
	/* subscribers and channels bus_tick has looked at, ever (tests:
	 * a tick costs what is due, not what exists) */
	uint64_t tick_visits;
	size_t idem_keys;       /* idempotency keys remembered */
};

enum bus_error {
	BUS_OK = 0,
	BUS_SHUTTING_DOWN = -1,     /* 503 */
	BUS_TOO_MANY_CHANNELS = -2, /* 503 */
	BUS_IDEM_CONFLICT = -3,     /* 422: the key stored another message */
	BUS_NOT_HERE = -4, /* with --redis: the answer comes from Redis,
			    * later (publish_message_remote) */
};

/* Life cycle */
struct bus *bus_new(const struct bus_config *config);
void bus_free(struct bus *bus);
/* Take the limits that may change while running (SIGHUP): history_age_ms,
 * lag_limit, presence_window_ms and idem_window_ms; the others are
 * ignored. Each is read
 * under the bus lock when it is enforced, so the next publish, wake or
 * tick uses the new value. */
void bus_set_limits(struct bus *bus, const struct bus_config *config);
/* End every subscriber (SUB_END_SHUTDOWN) and refuse new ones. */
void bus_shutdown(struct bus *bus);
/* bus_shutdown ran: with --redis, publishes are refused with this
 * (shutting_down) before they reach the engine, as the bus refuses its
 * own. */
bool bus_shutting_down(struct bus *bus);

/* How many of the channels do not exist now, that a publish or subscribe
 * to them would create (--new-channels-per-ip). A look, not a promise:
 * another thread may create or reclaim one right after. */
size_t bus_channels_missing(struct bus *bus, const struct channel_list *chs);

/* Publishing */
/* Seal and append m to the channel, creating it, and wake its parked
 * subscribers. Takes over the caller's reference. *at is where the
 * message stands: the channel's epoch and the message's id. */
enum bus_error bus_publish(struct bus *bus, const char *channel, size_t len,
			   struct message *m, struct cursor *at);
/* bus_publish with an idempotency key (valid: idem_key_valid; NULL: none).
 * If the channel stored a message under that key within the window, m is
 * dropped and nothing is delivered: *at is where the first one stood and
 * *replayed is set, or, when m differs from it (event, data, binary,
 * exclude_sender), BUS_IDEM_CONFLICT. Check and store are one step under
 * the lock, so concurrent publishes with one key store one message. */
enum bus_error bus_publish_keyed(struct bus *bus, const char *channel,
				 size_t len, struct message *m,
				 const char *key, size_t key_len,
				 struct cursor *at, bool *replayed);

/* Subscribing */
/* Join the listed channels at the given cursors (NULL: the tail), filling
 * start[] with the cursors the subscriber begins from: a plain id gets
 * the channel's epoch; a cursor of another epoch is kept as it is, and
 * the first pull reports the gap. */
enum bus_error bus_attach(struct bus *bus, struct subscriber *sub,
			  const struct channel_list *channels,
			  const struct cursor *since, struct cursor *start);
/* Add one more channel to an attached subscriber (the multiplexed
 * WebSocket); it becomes the last tap. start as in bus_attach. */
enum bus_error bus_tap_add(struct bus *bus, struct subscriber *sub,
			   const char *channel, size_t len,
			   const struct cursor *since, bool announce,
			   struct cursor *start);
/* Drop tap i; the taps after it move down by one. */
void bus_tap_remove(struct bus *bus, struct subscriber *sub, size_t i);
/* Leave all channels; the subscriber is never touched by the bus again. */
void bus_detach(struct bus *bus, struct subscriber *sub);
/* Take the next items in publish order, at most max_items and about
 * max_bytes (at least one item). With nothing to report and may_park set,
 * the transport's park runs under the lock. */
void bus_pull(struct bus *bus, struct subscriber *sub, struct bus_item *items,
	      size_t max_items, size_t max_bytes, bool may_park,
	      struct bus_pull *out);
/* The cursors taps [from, from + n) stand at, into out[0..n): false,
 * and nothing filled, while one of their channels waits for its first
 * sync (remote: its epoch is not known yet). What a welcome, an ack or
 * a poll's next hands out before anything is pulled. */
bool bus_start(struct bus *bus, struct subscriber *sub, size_t from,
	       size_t n, struct cursor *out);
/* bus_start for a welcome or an ack: false while one of the channels
 * waits for its first sync; then the cursors in inout[0..n) that have no
 * epoch (attached before the sync) become where their taps stand, the
 * others are left as they are. */
bool bus_welcome(struct bus *bus, struct subscriber *sub, size_t from,
		 size_t n, struct cursor *inout);
/* What a welcome or ack bus_welcome refused waits with: pull nothing,
 * park while a channel still waits on Redis (the sync wakes it), else
 * return unparked (look again); the timer and the end as bus_pull. */
void bus_wait_sync(struct bus *bus, struct subscriber *sub,
		   struct bus_pull *out);
/* bus_start for a poll's reply, whose next must carry every channel's
 * epoch: while a channel waits for its first sync, wait as
 * bus_wait_sync does, and start again when that returns unparked. */
enum bus_start_wait {
	BUS_START_GO,     /* started, or the end is for bus_pull to tell */
	BUS_START_PARKED, /* parked until the sync's wake or the timer */
	BUS_START_GONE,   /* the subscriber is dead or was cut (slow) */
	BUS_START_LATE,   /* the wait is over and Redis never synced */
};
enum bus_start_wait bus_start_synced(struct bus *bus, struct subscriber *sub,
				     size_t n, struct cursor *out);
/* Drop the references of pulled items. */
void bus_items_release(struct bus_item *items, size_t count);
/* message_single_reply of a pulled message, its bytes counted in the
 * history budget while the message is in history. */
const char *bus_single_reply(struct bus *bus, struct message *m, size_t *len);
/* Set a subscriber's deadline (monotonic ms, 0 = none). */
void bus_set_deadline(struct bus *bus, struct subscriber *sub,
		      uint64_t deadline_ms);
/* Run fn on the attached subscriber with that id, under the bus lock
 * (fn must be short and must not call the bus); false if there is none.
 * For work from another thread that must not outlive the subscriber (a
 * /ws publish's ack from the Redis engine). */
bool bus_with_subscriber(struct bus *bus, uint64_t sub_id,
			 void (*fn)(struct subscriber *sub, void *cls),
			 void *cls);
/* Ask the subscriber with that id to end (a watcher saw its peer go). */
void bus_kill(struct bus *bus, uint64_t sub_id, enum sub_end why);

/* Presence */
/* A poll or long-poll client asked for these channels now. It counts as
 * present for the presence window; with announce, a join is published
 * when it was not present, and a leave when the window passes or when it
 * is forgotten for max_pollers (the least recently seen goes first). */
void bus_poll_seen(struct bus *bus, const struct channel_list *channels,
		   const char *client, enum transport_id t, bool announce);

/* Housekeeping */
/* Expire history by age, fire due deadlines, reclaim idle channels. */
void bus_tick(struct bus *bus, uint64_t now_ms);
/* A channel's counters; -1 if it does not exist (a reclaimed one still
 * fills in its epoch and last id: see channel_reclaim). */
int bus_info(struct bus *bus, const char *channel, size_t len,
	     struct bus_channel_info *out);
void bus_stats(struct bus *bus, struct bus_stats *out);
/* Subscribers currently attached with this transport. */
size_t bus_subscribers_of(struct bus *bus, enum transport_id id);
/* Channels in the longest chain of the channel table (for tests: how
 * well names spread over the buckets). */
size_t bus_channel_chain_max(struct bus *bus);

/* Remote mode (the Redis engine, docs/internals/redis.md) */
/* The engine's side. The bus calls these under its lock: they must only
 * queue work for the engine's thread, never block or call the bus. */
struct bus_remote_ops {
	/* A channel is in use here (created or revived): subscribe to it in
	 * Redis, read its history and call bus_sync. */
	void (*activate)(void *cls, const char *channel, size_t len);
	/* It was reclaimed (no history, taps or pollers): unsubscribe. */
	void (*deactivate)(void *cls, const char *channel, size_t len);
	/* Publish a join or leave (takes over the reference); not under
	 * the lock. */
	void (*publish)(void *cls, const char *channel, size_t len,
			struct message *m);
	/* Its subscriber or poller counts changed (bus_info has the new
	 * ones): write them where other nodes' info sums them. */
	void (*counts)(void *cls, const char *channel, size_t len);
	/* A cursor is past the ring: read Redis' head (and what the ring
	 * lacks) with a read sent after this call, then bus_heard with
	 * this ticket or a later one. */
	void (*check)(void *cls, const char *channel, size_t len,
		      uint64_t ticket);
	/* A cursor is before the ring: read up to count ids after after
	 * from the stream, then bus_backfill (also when it failed). */
	void (*backfill)(void *cls, const char *channel, size_t len,
			 uint64_t sub_id, uint64_t after, uint64_t count);
};

enum bus_ingest {
	BUS_INGESTED,         /* appended as the next id, taps woken */
	BUS_INGEST_DUPLICATE, /* had it: dropped */
	BUS_INGEST_HOLE,      /* ids after *last_id are missing: read them */
	BUS_INGEST_RESYNC,    /* another epoch: read the channel again */
	BUS_INGEST_UNSYNCED,  /* not in use here, or no bus_sync yet */
};

/* Make this bus a node of the Redis engine, before any channel exists:
 * channels get their epoch and ids from Redis (bus_sync, bus_ingest)
 * instead of here, and are unreadable until their first bus_sync. */
void bus_set_remote(struct bus *bus, const struct bus_remote_ops *ops,
		    void *cls);
/* Redis holds the channel at this epoch, ids first_id..last_id (first_id
 * last_id + 1 when it keeps none). On a first sync, another epoch, or
 * when first_id is past what the ring has (a hole Redis no longer
 * holds), the ring restarts empty at first_id - 1, the caller then
 * ingests first_id..last_id; taps that joined "from now" start at
 * last_id, cursors of another epoch are gaps. 0, or -1 (no such live
 * channel, or nonsense ids). */
int bus_sync(struct bus *bus, const char *channel, size_t len,
	     uint64_t epoch, uint64_t last_id, uint64_t first_id);
/* A message Redis stored as (epoch, id): appended if it is the next id
 * of a synced channel. Takes over the reference in every case. *last_id:
 * the channel's last id after the call (not set when UNSYNCED). */
enum bus_ingest bus_ingest(struct bus *bus, const char *channel, size_t len,
			   struct message *m, uint64_t epoch, uint64_t id,
			   uint64_t *last_id);

/* A read sent after ticket's check found Redis' head at (epoch,
 * last_id): taps that asked with that ticket or an earlier one and
 * whose cursor is past last_id in that epoch get their gap (a cursor
 * Redis never gave); the others wait for the ring to reach them. */
void bus_heard(struct bus *bus, const char *channel, size_t len,
	       uint64_t epoch, uint64_t last_id, uint64_t ticket);
/* The answer to a backfill of subscriber sub_id: n messages (unsealed,
 * references taken over) of ids ids[0..n), rising, read from Redis at
 * epoch. Delivered to that tap before the ring, after a gap if Redis
 * no longer has the first ones. n 0 (Redis has none, or was not
 * reachable) or another epoch: the tap gets the gap. */
void bus_backfill(struct bus *bus, const char *channel, size_t len,
		  uint64_t sub_id, uint64_t epoch, struct message **msgs,
		  const uint64_t *ids, size_t n);

/* The admin API (admin.c) */
struct bus_channel_row {
	char name[CHANNEL_NAME_MAX + 1];
	uint64_t last_id;
	size_t retained, subscribers;
};
/* Every live channel into *rows (malloc'd, the caller frees); the count. */
size_t bus_channels(struct bus *bus, struct bus_channel_row **rows);
/* Drop a channel's history and end its subscribers (SUB_END_ADMIN); its
 * ids go on from where they were. -1: no such channel. */
int bus_channel_delete(struct bus *bus, const char *name, size_t len);
/* End every subscriber with that client id (SUB_END_ADMIN), and forget
 * it as a poller (its announced presence gets its leave); how many
 * subscribers were ended. */
size_t bus_disconnect_client(struct bus *bus, const char *client);

/* Monotonic and wall clocks in milliseconds. */
uint64_t bus_now_ms(void);
int64_t bus_wall_ms(void);

#endif
