/* The Redis engine's thread: its libev loop, the connections of every
 * shard, the channels in use here and the publishes in flight. Only this
 * thread touches hiredis; the bus and other threads reach it through one
 * locked queue and an ev_async. It calls into the bus (bus_sync,
 * bus_ingest, bus_info), never while holding its own queue lock, so the
 * lock order stays: bus lock, then the queue lock (activate and
 * deactivate are queued from under the bus lock). */
#include "redis_engine.h"

#include "bus.h"
#include "cursor.h"
#include "idem.h"
#include "log.h"
#include "message.h"
#include "redis_nodes.h"
#include "redis_store.h"
#include "siphash.h"
#include "transport.h"
#include "validate.h"
#include "xalloc.h"

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <hiredis/adapters/libev.h>
#pragma GCC diagnostic pop

#define LOG_PREFIX "redis"
#define ACTIVE_BUCKETS 4096 /* grows by doubling past one per bucket */
/* A command connection that owes replies and answers no PING for this
 * long is dropped (see watch_shard). */
#define REPLY_TIMEOUT_MS 4000

struct redis_engine;

struct shard {
	struct redis_engine *e;
	struct redis_target target;
	redisAsyncContext *cmd, *sub; /* NULL: not connected nor trying */
	bool cmd_up, sub_up;
	bool down_logged;
	bool probe_owed; /* a PING of watch_shard awaits its reply */
	bool hung; /* dropped by watch_shard; until a reply comes, degraded */
	uint64_t probe_sent_ms; /* when it was sent */
	char name[REDIS_HOST_MAX + 8];
};

/* A channel in use here: subscribed (or to be) on its shard. */
struct active {
	struct active *hnext;
	struct shard *shard;
	bool subscribed; /* SUBSCRIBE sent on the current connection */
	bool reading;    /* a read is in flight */
	bool reread;     /* read again (after the last id) when it returns */
	bool full;       /* ... from the start of what Redis keeps */
	/* this node's counts as last written to Redis (redis_nodes.h) */
	size_t counts[TRANSPORT_COUNT];
	bool dirty;           /* in the engine's dirty list */
	struct active *dnext; /* that list */
	bool synced;     /* a full read reached bus_sync */
	uint64_t ticket; /* the latest head check asked (bus_heard) */
	size_t len;
	char name[];
};

enum op_kind {
	OP_ACTIVATE,
	OP_DEACTIVATE,
	OP_PUBLISH,
	OP_COUNTS,     /* the bus's counts of a channel changed */
	OP_INFO,       /* redis_engine_info */
	OP_DELETE,     /* redis_engine_delete */
	OP_DISCONNECT, /* redis_engine_disconnect (channel: the client id) */
	OP_CHECK,      /* bus remote check: Redis' head, after a ticket */
	OP_BACKFILL,   /* bus remote backfill: older ids for one subscriber */
};

struct op {
	struct op *next;
	enum op_kind kind;
	struct message *m; /* OP_PUBLISH */
	char key[IDEM_KEY_MAX + 1];
	bool has_key;
	uint64_t hash;
	redis_engine_done_fn *done;
	redis_engine_info_fn *info_done;   /* OP_INFO */
	redis_engine_admin_fn *admin_done; /* OP_DELETE, OP_DISCONNECT */
	long long n;                       /* OP_DELETE: keys deleted */
	void *cls;
	bool retried; /* sent again with the script's text (NOSCRIPT) */
	uint64_t ticket;          /* OP_CHECK */
	uint64_t sub_id, after, count; /* OP_BACKFILL */
	struct shard *shard;
	size_t len;
	char channel[CHANNEL_NAME_MAX + 1];
};

/* A read in flight. */
struct read {
	struct redis_engine *e;
	bool full;
	bool retried;
	uint64_t after;
	uint64_t ticket; /* the head check it answers (0: none) */
	/* what the ring held when it was sent: Redis behind it in that
	 * epoch lost writes, and the read moves the channel to a new one */
	uint64_t held_epoch, held_last_id;
	size_t len;
	char channel[CHANNEL_NAME_MAX + 1];
};

/* A backfill in flight: older messages for one subscriber. */
struct fill {
	struct redis_engine *e;
	uint64_t sub_id;
	size_t len;
	char channel[CHANNEL_NAME_MAX + 1];
};

struct redis_engine {
	struct redis_engine_config cfg;
	struct shard shards[REDIS_SHARDS_MAX];
	struct bus *bus;
	struct ev_loop *loop;
	ev_async wake;
	ev_timer retry;
	pthread_t thread;
	pthread_mutex_t lock; /* guards the queue and stop */
	struct op *head, *tail;
	bool stop;
	/* the engine thread's own */
	struct active **buckets;
	size_t nbuckets, nactive;
	struct siphash_key key;
	atomic_bool healthy;
	char node[REDIS_NODE_ID_MAX + 1]; /* this node's id in Redis */
	ev_timer beat;                    /* its heartbeat */
	struct active *dirty;             /* channels whose counts to write */
};

static void done_noop(void *cls, enum redis_engine_status st, uint64_t epoch,
		      uint64_t id)
{
	(void)cls;
	(void)st;
	(void)epoch;
	(void)id;
}

/* ---- the queue (any thread) ---- */

/* Answer an op that will not reach Redis (stopped, or its shard down),
 * as its caller expects: DOWN, NULL or -1. Frees nothing but m. */
static void op_refuse(struct redis_engine *e, struct op *op)
{
	switch (op->kind) {
	case OP_BACKFILL:
		/* the subscriber gets its gap rather than waiting */
		bus_backfill(e->bus, op->channel, op->len, op->sub_id, 0, NULL,
			     NULL, 0);
		break;
	case OP_PUBLISH:
		op->done(op->cls, REDIS_ENGINE_DOWN, 0, 0);
		message_unref(op->m);
		op->m = NULL;
		break;
	case OP_INFO:
		op->info_done(op->cls, NULL);
		break;
	case OP_DELETE:
	case OP_DISCONNECT:
		op->admin_done(op->cls, -1);
		break;
	default:
		break;
	}
}

static void enqueue(struct redis_engine *e, struct op *op)
{
	bool stopped;

	pthread_mutex_lock(&e->lock);
	stopped = e->stop;
	if (!stopped) {
		if (e->tail)
			e->tail->next = op;
		else
			e->head = op;
		e->tail = op;
	}
	pthread_mutex_unlock(&e->lock);
	if (!stopped) {
		ev_async_send(e->loop, &e->wake);
		return;
	}
	op_refuse(e, op);
	free(op);
}

static struct op *op_new(enum op_kind kind, const char *channel, size_t len)
{
	struct op *op = xcalloc(1, sizeof *op);

	op->kind = kind;
	op->len = len > CHANNEL_NAME_MAX ? CHANNEL_NAME_MAX : len;
	memcpy(op->channel, channel, op->len);
	return op;
}

static void remote_activate(void *cls, const char *channel, size_t len)
{
	enqueue(cls, op_new(OP_ACTIVATE, channel, len));
}

static void remote_deactivate(void *cls, const char *channel, size_t len)
{
	enqueue(cls, op_new(OP_DEACTIVATE, channel, len));
}

void redis_engine_publish(struct redis_engine *e, const char *channel,
			  size_t len, struct message *m, const char *key,
			  uint64_t hash, redis_engine_done_fn *done, void *cls)
{
	struct op *op = op_new(OP_PUBLISH, channel, len);

	op->m = m;
	op->done = done ? done : done_noop;
	op->cls = cls;
	op->hash = hash;
	if (key) {
		op->has_key = true;
		snprintf(op->key, sizeof op->key, "%s", key);
	}
	enqueue(e, op);
}

static void remote_publish(void *cls, const char *channel, size_t len,
			   struct message *m)
{
	redis_engine_publish(cls, channel, len, m, NULL, 0, NULL, NULL);
}

static void remote_counts(void *cls, const char *channel, size_t len)
{
	enqueue(cls, op_new(OP_COUNTS, channel, len));
}

void redis_engine_info(struct redis_engine *e, const char *channel, size_t len,
		       redis_engine_info_fn *done, void *cls)
{
	struct op *op = op_new(OP_INFO, channel, len);

	op->info_done = done;
	op->cls = cls;
	enqueue(e, op);
}

void redis_engine_delete(struct redis_engine *e, const char *channel,
			 size_t len, redis_engine_admin_fn *done, void *cls)
{
	struct op *op = op_new(OP_DELETE, channel, len);

	op->admin_done = done;
	op->cls = cls;
	enqueue(e, op);
}

void redis_engine_disconnect(struct redis_engine *e, const char *client,
			     redis_engine_admin_fn *done, void *cls)
{
	struct op *op = op_new(OP_DISCONNECT, client, strlen(client));

	op->admin_done = done;
	op->cls = cls;
	enqueue(e, op);
}

static void remote_check(void *cls, const char *channel, size_t len,
			 uint64_t ticket)
{
	struct op *op = op_new(OP_CHECK, channel, len);

	op->ticket = ticket;
	enqueue(cls, op);
}

static void remote_backfill(void *cls, const char *channel, size_t len,
			    uint64_t sub_id, uint64_t after, uint64_t count)
{
	struct op *op = op_new(OP_BACKFILL, channel, len);

	op->sub_id = sub_id;
	op->after = after;
	op->count = count;
	enqueue(cls, op);
}

static const struct bus_remote_ops engine_ops = {
	.activate = remote_activate,
	.deactivate = remote_deactivate,
	.publish = remote_publish,
	.counts = remote_counts,
	.check = remote_check,
	.backfill = remote_backfill,
};

bool redis_engine_healthy(const struct redis_engine *e)
{
	return atomic_load(&e->healthy);
}

static void update_health(struct redis_engine *e)
{
	bool up = true;

	for (size_t i = 0; i < e->cfg.nshards; i++)
		up = up && e->shards[i].cmd_up && e->shards[i].sub_up &&
		     !e->shards[i].hung;
	atomic_store(&e->healthy, up);
}

/* ---- channels in use (engine thread) ---- */

static struct active **active_slot(struct redis_engine *e, const char *name,
				   size_t len)
{
	struct active **p =
		&e->buckets[siphash13(&e->key, name, len) & (e->nbuckets - 1)];

	while (*p && !((*p)->len == len && memcmp((*p)->name, name, len) == 0))
		p = &(*p)->hnext;
	return p;
}

static void active_grow(struct redis_engine *e)
{
	size_t n = e->nbuckets * 2;
	struct active **b = xcalloc(n, sizeof *b);

	for (size_t i = 0; i < e->nbuckets; i++) {
		struct active *a = e->buckets[i], *next;

		for (; a; a = next) {
			size_t k = siphash13(&e->key, a->name, a->len) &
				   (n - 1);

			next = a->hnext;
			a->hnext = b[k];
			b[k] = a;
		}
	}
	free(e->buckets);
	e->buckets = b;
	e->nbuckets = n;
}

/* ---- reads: sync a channel, fill a hole ---- */

static void send_read(struct redis_engine *e, struct active *a, bool full,
		      uint64_t after);

static uint64_t born_of(int64_t ts_ms)
{
	int64_t age = bus_wall_ms() - ts_ms;
	uint64_t now = bus_now_ms();

	if (age < 0)
		age = 0;
	return (uint64_t)age < now ? now - (uint64_t)age : 0;
}

/* Hand a stored message to the bus; what to read next, if anything. */
static void ingest(struct redis_engine *e, struct active *a,
		   const struct redis_record *rec)
{
	struct message *m = redis_store_message(a->name, a->len, rec,
						born_of(rec->ts_ms));
	uint64_t last = 0;

	if (m == NULL) {
		log_warn("channel %.*s: a record of id %llu is not ours; "
			 "skipped",
			 (int)a->len, a->name, (unsigned long long)rec->id);
		return;
	}
	switch (bus_ingest(e->bus, a->name, a->len, m, rec->epoch, rec->id,
			   &last)) {
	case BUS_INGESTED:
	case BUS_INGEST_DUPLICATE:
		break;
	case BUS_INGEST_HOLE:
		send_read(e, a, false, last);
		break;
	case BUS_INGEST_RESYNC:
	case BUS_INGEST_UNSYNCED:
		/* not synced yet, or another epoch: read it all (again) once
		 * the read in flight, if any, is back */
		send_read(e, a, true, 0);
		break;
	}
}

/* The read script for rd. A full read takes the newest --history-size
 * entries (a ring starts at Redis' head, not at its oldest entries); both
 * tell Redis what the ring holds, so that a Redis that came back with
 * older data gives the channel a new epoch (the gap) instead of giving
 * ids this node already has to other messages. */
static void read_cmd(struct redis_engine *e, const struct active *a,
		     const struct read *rd, bool full_text,
		     struct redis_cmd *cmd)
{
	const struct redis_read r = {
		.after_id = rd->after,
		.count = e->cfg.history_size,
		.new_epoch = cursor_epoch_new(),
		.history_age_ms = e->cfg.history_age_ms,
		.held_epoch = rd->held_epoch,
		.held_last_id = rd->held_last_id,
		.newest = rd->full,
	};

	redis_store_read_held_cmd(a->name, a->len, &r, full_text, cmd);
}

static void on_read(redisAsyncContext *ac, void *r, void *privdata)
{
	struct read *rd = privdata;
	struct redis_engine *e = rd->e;
	struct active *a = *active_slot(e, rd->channel, rd->len);
	struct redis_range range;
	struct redis_record rec;
	uint64_t first;

	(void)ac;
	if (a == NULL)
		goto out; /* no longer in use here */
	a->reading = false;
	if (r == NULL)
		goto out; /* disconnected: the reconnect reads again */
	if (redis_store_noscript(r) && !rd->retried) {
		a->reading = true;
		rd->retried = true;
		{
			struct redis_cmd cmd;

			read_cmd(e, a, rd, true, &cmd);
			if (redisAsyncCommandArgv(a->shard->cmd, on_read, rd,
						  cmd.argc, cmd.argv,
						  cmd.argvlen) == REDIS_OK)
				rd = NULL;
			else
				a->reading = false;
			redis_cmd_free(&cmd);
		}
		goto out;
	}
	if (redis_store_read_reply(r, &range) < 0 || !range.exists) {
		log_warn("channel %.*s: unexpected read reply", (int)a->len,
			 a->name);
		goto out;
	}
	if (!rd->full && range.count > 0 &&
	    redis_store_range_entry(&range, 0, &rec) == 0 &&
	    rec.id != rd->after + 1) {
		/* what we asked for is gone, or of another epoch */
		a->reread = a->full = true;
		goto again;
	}
	first = range.count > 0 &&
				redis_store_range_entry(&range, 0, &rec) == 0 ?
			rec.id :
			range.last_id + 1;
	if (!rd->full) {
		struct bus_channel_info info;

		/* an empty answer says nothing of the epoch by itself */
		if (bus_info(e->bus, a->name, a->len, &info) < 0 ||
		    info.epoch != range.epoch) {
			a->reread = a->full = true;
			goto again;
		}
	}
	if (rd->full && bus_sync(e->bus, a->name, a->len, range.epoch,
				 range.last_id, first) < 0)
		goto out;
	if (rd->full)
		a->synced = true;
	for (size_t i = 0; i < range.count; i++)
		if (redis_store_range_entry(&range, i, &rec) == 0)
			ingest(e, a, &rec);
	/* after the ingests: a cursor up to here is one the ring reaches */
	if (rd->ticket)
		bus_heard(e->bus, a->name, a->len, range.epoch, range.last_id,
			  rd->ticket);
again:
	if (a->reread && !a->reading) {
		bool full = a->full;

		a->reread = a->full = false;
		send_read(e, a, full, 0);
	}
out:
	free(rd);
}

/* Read the channel: full (sync, from what Redis keeps) or after an id.
 * One read per channel in flight; more asks make one more read after. */
static void send_read(struct redis_engine *e, struct active *a, bool full,
		      uint64_t after)
{
	struct redis_cmd cmd;
	struct bus_channel_info info;
	struct read *rd;

	if (a->reading || !a->shard->cmd_up) {
		a->reread = true;
		a->full = a->full || full;
		return;
	}
	/* what the ring has: "after" it, and what Redis must not be behind */
	if (bus_info(e->bus, a->name, a->len, &info) < 0 && !full)
		return;
	if (!full && after == 0)
		after = info.last_id;
	rd = xcalloc(1, sizeof *rd);
	rd->e = e;
	rd->full = full;
	rd->after = full ? 0 : after;
	rd->ticket = a->ticket;
	rd->held_epoch = info.epoch;
	rd->held_last_id = info.last_id;
	rd->len = a->len;
	memcpy(rd->channel, a->name, a->len);
	read_cmd(e, a, rd, false, &cmd);
	if (redisAsyncCommandArgv(a->shard->cmd, on_read, rd, cmd.argc,
				  cmd.argv, cmd.argvlen) == REDIS_OK)
		a->reading = true;
	else
		free(rd);
	redis_cmd_free(&cmd);
}

/* ---- backfill: older messages for one subscriber ---- */

static void on_fill(redisAsyncContext *ac, void *r, void *privdata)
{
	struct fill *f = privdata;
	struct redis_range range;
	struct redis_record rec;
	struct message **msgs = NULL;
	uint64_t *ids = NULL;
	size_t n = 0;

	(void)ac;
	if (r && redis_store_read_reply(r, &range) == 0 && range.exists &&
	    range.count > 0) {
		msgs = xcalloc(range.count, sizeof *msgs);
		ids = xcalloc(range.count, sizeof *ids);
		for (size_t i = 0; i < range.count; i++) {
			if (redis_store_range_entry(&range, i, &rec) < 0)
				break;
			msgs[n] = redis_store_message(f->channel, f->len, &rec,
						      born_of(rec.ts_ms));
			if (msgs[n] == NULL)
				break;
			ids[n++] = rec.id;
		}
	}
	/* n 0 (nothing, an error, Redis gone): the subscriber's gap */
	bus_backfill(f->e->bus, f->channel, f->len, f->sub_id,
		     n ? range.epoch : 0, msgs, ids, n);
	free(msgs);
	free(ids);
	free(f);
}

/* Read ids after op->after for one subscriber whose cursor is before
 * the ring. The script's text goes every time: backfills are rare, and
 * a NOSCRIPT round trip would cost more. */
static void send_fill(struct redis_engine *e, struct shard *s, struct op *op)
{
	struct fill *f;
	struct redis_cmd cmd;

	if (!s->cmd_up) {
		bus_backfill(e->bus, op->channel, op->len, op->sub_id, 0, NULL,
			     NULL, 0);
		return;
	}
	f = xcalloc(1, sizeof *f);
	f->e = e;
	f->sub_id = op->sub_id;
	f->len = op->len;
	memcpy(f->channel, op->channel, op->len);
	redis_store_read_cmd(op->channel, op->len, op->after,
			     (size_t)op->count, 0, e->cfg.history_age_ms, true,
			     &cmd);
	if (redisAsyncCommandArgv(s->cmd, on_fill, f, cmd.argc, cmd.argv,
				  cmd.argvlen) != REDIS_OK)
		on_fill(NULL, NULL, f);
	redis_cmd_free(&cmd);
}

/* ---- pub/sub ---- */

static void on_notice(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct shard *s = ac->data;
	redisReply *r = reply;
	struct redis_record rec;
	const char *name;
	size_t len;
	struct active *a;

	(void)privdata;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		return;
	if (redis_store_channel_of_notice(r->element[1]->str,
					  r->element[1]->len, &name, &len) < 0)
		return;
	a = *active_slot(s->e, name, len);
	if (a == NULL)
		return;
	if (strcmp(r->element[0]->str, "subscribe") == 0) {
		/* from now on every publish reaches us: read what came
		 * before, after what the activation's read gave */
		send_read(s->e, a, !a->synced, 0);
		return;
	}
	if (strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	if (redis_store_decode_notice(r->element[2]->str, r->element[2]->len,
				      &rec) < 0) {
		log_warn("channel %.*s: a notification that is not ours",
			 (int)len, name);
		return;
	}
	if (a->reading) {
		/* the read in flight may or may not hold it: read after
		 * the ring once more when it returns */
		a->reread = true;
		return;
	}
	ingest(s->e, a, &rec);
}

static void subscribe(struct active *a)
{
	char chan[REDIS_KEY_MAX];
	const char *argv[2] = { "SUBSCRIBE", chan };
	size_t argvlen[2] = { 9, 0 };

	argvlen[1] = redis_store_notice_channel(a->name, a->len, chan);
	if (redisAsyncCommandArgv(a->shard->sub, on_notice, NULL, 2, argv,
				  argvlen) == REDIS_OK)
		a->subscribed = true;
}

static void unsubscribe(struct active *a)
{
	char chan[REDIS_KEY_MAX];
	const char *argv[2] = { "UNSUBSCRIBE", chan };
	size_t argvlen[2] = { 11, 0 };

	argvlen[1] = redis_store_notice_channel(a->name, a->len, chan);
	redisAsyncCommandArgv(a->shard->sub, on_notice, NULL, 2, argv, argvlen);
}

/* ---- publish ---- */

static void send_publish(struct op *op);

static void on_published(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *op = privdata;
	struct redis_engine *e = op->shard->e;
	struct redis_published at;
	enum redis_engine_status st = REDIS_ENGINE_DOWN;

	(void)ac;
	if (reply && redis_store_noscript(reply) && !op->retried &&
	    op->shard->cmd_up) {
		op->retried = true;
		send_publish(op);
		return;
	}
	if (reply && redis_store_publish_reply(reply, op->hash, &at) == 0) {
		st = at.kind == REDIS_STORED   ? REDIS_ENGINE_STORED :
		     at.kind == REDIS_REPLAYED ? REDIS_ENGINE_REPLAYED :
						 REDIS_ENGINE_CONFLICT;
	} else if (reply) {
		log_warn("publish to %s: unexpected reply%s%s", op->channel,
			 ((redisReply *)reply)->type == REDIS_REPLY_ERROR ?
				 ": " :
				 "",
			 ((redisReply *)reply)->type == REDIS_REPLY_ERROR ?
				 ((redisReply *)reply)->str :
				 "");
	}
	if (st == REDIS_ENGINE_STORED) {
		struct active *a = *active_slot(e, op->channel, op->len);
		uint64_t last;

		/* ours: no need to wait for the notification to rebuild it */
		if (a && !a->reading) {
			switch (bus_ingest(e->bus, op->channel, op->len, op->m,
					   at.epoch, at.id, &last)) {
			case BUS_INGEST_HOLE:
				send_read(e, a, false, last);
				break;
			case BUS_INGEST_DUPLICATE:
				/* the notification came first, or Redis gave
				 * an id the ring has to another message (it
				 * came back with older data): a read after
				 * the ring tells the two apart, and moves a
				 * lost channel to a new epoch */
				send_read(e, a, false, 0);
				break;
			default:
				break;
			}
		} else {
			message_unref(op->m);
		}
		op->m = NULL;
	}
	message_unref(op->m);
	op->done(op->cls, st, st == REDIS_ENGINE_DOWN ? 0 : at.epoch,
		 st == REDIS_ENGINE_DOWN ? 0 : at.id);
	free(op);
}

static void send_publish(struct op *op)
{
	const struct message *m = op->m;
	struct redis_publish p = {
		.channel = op->channel,
		.channel_len = op->len,
		.event = m->event,
		.from = m->from,
		.exclude_sender = m->exclude_sender,
		.binary = m->binary && m->raw_len > 0,
		.ts_ms = m->ts,
		.new_epoch = cursor_epoch_new(),
		.history_size = op->shard->e->cfg.history_size,
		.history_age_ms = op->shard->e->cfg.history_age_ms,
		.idem_key = op->has_key ? op->key : NULL,
		.idem_hash = op->hash,
		.idem_window_ms = op->shard->e->cfg.idem_window_ms,
	};
	struct redis_cmd cmd;

	if (p.binary) {
		p.data = message_raw(m);
		p.data_len = m->raw_len;
	} else {
		p.data = message_json(m) + m->data_off;
		p.data_len = m->data_len;
	}
	redis_store_publish_cmd(&p, op->retried, &cmd);
	if (redisAsyncCommandArgv(op->shard->cmd, on_published, op, cmd.argc,
				  cmd.argv, cmd.argvlen) != REDIS_OK)
		on_published(NULL, NULL, op);
	redis_cmd_free(&cmd);
}

/* ---- this node in Redis: counts, info, control (redis_nodes.h) ---- */

static void for_shard_actives(struct shard *s, void (*fn)(struct active *));

static void send_cmd(redisAsyncContext *ac, redisCallbackFn *fn, void *priv,
		     struct redis_cmd *cmd)
{
	if (redisAsyncCommandArgv(ac, fn, priv, cmd->argc, cmd->argv,
				  cmd->argvlen) != REDIS_OK &&
	    fn)
		fn(ac, NULL, priv);
	redis_cmd_free(cmd);
}

static void mark_dirty(struct active *a)
{
	struct redis_engine *e = a->shard->e;

	if (a->dirty)
		return;
	a->dirty = true;
	a->dnext = e->dirty;
	e->dirty = a;
}

static void undirty(struct redis_engine *e, struct active *a)
{
	struct active **p = &e->dirty;

	if (!a->dirty)
		return;
	while (*p != a)
		p = &(*p)->dnext;
	*p = a->dnext;
	a->dirty = false;
}

static void write_counts(struct redis_engine *e, struct active *a,
			 const size_t *counts)
{
	struct redis_cmd cmd;

	redis_nodes_counts_cmd(e->node, a->name, a->len, counts, &cmd);
	send_cmd(a->shard->cmd, NULL, NULL, &cmd);
	/* a new hash has no TTL yet; a renewed one loses nothing */
	redis_nodes_expire_cmd(e->node, &cmd);
	send_cmd(a->shard->cmd, NULL, NULL, &cmd);
	redis_nodes_join_cmd(e->node, &cmd);
	send_cmd(a->shard->cmd, NULL, NULL, &cmd);
	memcpy(a->counts, counts, sizeof a->counts);
}

/* After a batch of ops: the counts that changed, once per channel,
 * read from the bus (its lock only; the engine holds none). A shard
 * that is down keeps them dirty-free: its reconnect writes them all. */
static void flush_counts(struct redis_engine *e)
{
	while (e->dirty) {
		struct active *a = e->dirty;
		struct bus_channel_info info;

		e->dirty = a->dnext;
		a->dirty = false;
		if (!a->shard->cmd_up)
			continue;
		bus_info(e->bus, a->name, a->len, &info);
		if (memcmp(info.subscribers, a->counts, sizeof a->counts))
			write_counts(e, a, info.subscribers);
	}
}

/* Redis may not have what we wrote (it restarted, or our hash
 * expired): forget it, so the next flush writes every count again. */
static void recount(struct active *a)
{
	memset(a->counts, 0, sizeof a->counts);
	mark_dirty(a);
}

/* A reply on the command connection: a shard dropped as hung answers
 * again (a stopped Redis still accepts connections, so connecting is
 * not enough to call it back). */
static void answered(struct shard *s)
{
	if (s->hung) {
		s->hung = false;
		update_health(s->e);
	}
}

static void on_beat_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct shard *s = privdata;
	redisReply *r = reply;

	(void)ac;
	if (r)
		answered(s);
	if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
		for_shard_actives(s, recount);
		flush_counts(s->e);
	}
}

static void beat_shard(struct shard *s)
{
	struct redis_cmd cmd;

	redis_nodes_join_cmd(s->e->node, &cmd);
	send_cmd(s->cmd, NULL, NULL, &cmd);
	redis_nodes_expire_cmd(s->e->node, &cmd);
	send_cmd(s->cmd, on_beat_reply, s, &cmd);
}

static void on_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct redis_engine *e = w->data;

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < e->cfg.nshards; i++)
		if (e->shards[i].cmd_up)
			beat_shard(&e->shards[i]);
}

static void on_info(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *op = privdata;
	struct redis_info in;

	(void)ac;
	if (reply && redis_nodes_info_reply(reply, &in) == 0) {
		op->info_done(op->cls, &in);
	} else {
		if (reply)
			log_warn("info of %s: unexpected reply", op->channel);
		op->info_done(op->cls, NULL);
	}
	free(op);
}

static void on_deleted(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *op = privdata;
	redisReply *r = reply;

	(void)ac;
	op->n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

/* The control message's reply: the delete's (or the disconnect's)
 * answer. */
static void on_told(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct op *op = privdata;
	redisReply *r = reply;
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	(void)ac;
	if (op->kind == OP_DELETE)
		n = n < 0 ? -1 : op->n;
	op->admin_done(op->cls, n);
	free(op);
}

/* A control message from any node (this one too). */
static void on_control(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct shard *s = ac->data;
	redisReply *r = reply;
	char kind, name[CHANNEL_NAME_MAX + 1];
	const char *n;
	size_t len;

	(void)privdata;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING ||
	    redis_nodes_control_decode(r->element[2]->str, r->element[2]->len,
				       &kind, &n, &len) < 0 ||
	    len > CHANNEL_NAME_MAX)
		return;
	memcpy(name, n, len);
	name[len] = '\0';
	if (kind == 'c') {
		if (client_id_valid(name, len))
			bus_disconnect_client(s->e->bus, name);
		return;
	}
	if (!channel_name_valid(name, len))
		return;
	if (bus_channel_delete(s->e->bus, name, len) == 0)
		log_info("channel %s deleted by the admin API of a node", name);
	{
		struct active *a = *active_slot(s->e, name, len);

		/* Redis has it no more: the next read gives it a new epoch,
		 * and every cursor of the old one is a gap */
		if (a)
			send_read(s->e, a, true, 0);
	}
}

static void subscribe_control(struct shard *s)
{
	const char *argv[2] = { "SUBSCRIBE", REDIS_CONTROL_CHANNEL };
	size_t argvlen[2] = { 9, sizeof REDIS_CONTROL_CHANNEL - 1 };

	redisAsyncCommandArgv(s->sub, on_control, NULL, 2, argv, argvlen);
}

/* The node ops of run_op; false if op was handed to hiredis (its
 * callback frees it). */
static bool run_node_op(struct redis_engine *e, struct op *op, struct shard *s,
			struct active *a)
{
	struct redis_cmd cmd;

	switch (op->kind) {
	case OP_COUNTS:
		if (a)
			mark_dirty(a);
		return true;
	case OP_INFO:
		if (!s->cmd_up)
			break;
		redis_nodes_info_cmd(op->channel, op->len, e->node, &cmd);
		send_cmd(s->cmd, on_info, op, &cmd);
		return false;
	case OP_DELETE:
		if (!s->cmd_up)
			break;
		redis_nodes_delete_cmd(op->channel, op->len, &cmd);
		send_cmd(s->cmd, on_deleted, op, &cmd);
		redis_nodes_control_cmd('d', op->channel, op->len, &cmd);
		send_cmd(s->cmd, on_told, op, &cmd);
		return false;
	case OP_DISCONNECT:
		/* one shard carries it, or a node would hear it twice */
		s = &e->shards[0];
		if (!s->cmd_up)
			break;
		redis_nodes_control_cmd('c', op->channel, op->len, &cmd);
		send_cmd(s->cmd, on_told, op, &cmd);
		return false;
	default:
		return true;
	}
	op_refuse(e, op);
	return true;
}

/* ---- the queue (engine thread) ---- */

static void run_op(struct redis_engine *e, struct op *op)
{
	struct shard *s =
		&e->shards[redis_shard_of(op->channel, op->len, e->cfg.nshards)];
	struct active **slot = active_slot(e, op->channel, op->len);
	struct active *a = *slot;

	switch (op->kind) {
	case OP_ACTIVATE:
		if (a)
			break;
		a = xcalloc(1, sizeof *a + op->len + 1);
		a->shard = s;
		a->len = op->len;
		memcpy(a->name, op->channel, op->len);
		*slot = a;
		if (++e->nactive > e->nbuckets)
			active_grow(e);
		if (s->sub_up)
			subscribe(a);
		/* read at once, on the command connection, ahead of any
		 * publish queued after this: the head it gives is where a
		 * tap that joined "from now" starts, so a message published
		 * after it joined, even from this node, is after its start */
		if (s->cmd_up)
			send_read(e, a, true, 0);
		break;
	case OP_CHECK:
		if (a == NULL)
			break;
		if (op->ticket > a->ticket)
			a->ticket = op->ticket;
		send_read(e, a, !a->synced, 0);
		break;
	case OP_BACKFILL:
		send_fill(e, s, op);
		break;
	case OP_DEACTIVATE:
		if (a == NULL)
			break;
		if (s->sub_up && a->subscribed)
			unsubscribe(a);
		undirty(e, a);
		{
			static const size_t none[TRANSPORT_COUNT];

			if (s->cmd_up && memcmp(a->counts, none, sizeof none))
				write_counts(e, a, none);
		}
		*slot = a->hnext;
		e->nactive--;
		free(a);
		break;
	case OP_PUBLISH:
		op->shard = s;
		if (!s->cmd_up) {
			op->done(op->cls, REDIS_ENGINE_DOWN, 0, 0);
			message_unref(op->m);
			break;
		}
		send_publish(op);
		return; /* on_published frees it */
	default:
		if (!run_node_op(e, op, s, a))
			return;
		break;
	}
	free(op);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct redis_engine *e = w->data;
	struct op *list;
	bool stop;

	(void)revents;
	pthread_mutex_lock(&e->lock);
	list = e->head;
	e->head = e->tail = NULL;
	stop = e->stop;
	pthread_mutex_unlock(&e->lock);
	while (list) {
		struct op *next = list->next;

		run_op(e, list);
		list = next;
	}
	flush_counts(e);
	if (stop)
		ev_break(loop, EVBREAK_ALL);
}

/* ---- connections ---- */

static void for_shard_actives(struct shard *s, void (*fn)(struct active *))
{
	struct redis_engine *e = s->e;

	for (size_t i = 0; i < e->nbuckets; i++)
		for (struct active *a = e->buckets[i]; a; a = a->hnext)
			if (a->shard == s)
				fn(a);
}

static void mark_unsubscribed(struct active *a)
{
	a->subscribed = false;
}

static void read_all(struct active *a)
{
	if (a->subscribed)
		send_read(a->shard->e, a, true, 0);
}

/* For the log: host:port or the socket's path. */
static const char *shard_name(struct shard *s)
{
	if (s->target.path[0])
		return s->target.path;
	snprintf(s->name, sizeof s->name, "%s:%u", s->target.host,
		 s->target.port);
	return s->name;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct shard *s = ac->data;

	(void)status;
	if (s->cmd == ac) {
		s->cmd = NULL;
		s->cmd_up = false;
	} else if (s->sub == ac) {
		s->sub = NULL;
		s->sub_up = false;
		for_shard_actives(s, mark_unsubscribed);
	}
	update_health(s->e);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct shard *s = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees it */
		if (s->cmd == ac)
			s->cmd = NULL;
		else if (s->sub == ac)
			s->sub = NULL;
		return;
	}
	if (s->cmd == ac) {
		s->cmd_up = true;
		/* reads asked for while it was down */
		for_shard_actives(s, read_all);
		/* counts changed meanwhile, or Redis restarted empty */
		for_shard_actives(s, recount);
		flush_counts(s->e);
		beat_shard(s);
	} else if (s->sub == ac) {
		s->sub_up = true;
		subscribe_control(s);
		for_shard_actives(s, subscribe);
	}
	if (s->cmd_up && s->sub_up && s->down_logged) {
		log_info("shard %s is back", shard_name(s));
		s->down_logged = false;
	}
	update_health(s->e);
}

static redisAsyncContext *connect_shard(struct shard *s, bool is_cmd)
{
	redisAsyncContext *ac = s->target.path[0] ?
					redisAsyncConnectUnix(s->target.path) :
					redisAsyncConnect(s->target.host,
							  (int)s->target.port);

	if (ac == NULL)
		return NULL;
	if (ac->err) {
		if (!s->down_logged)
			log_warn("shard %s unreachable: %s", shard_name(s),
				 ac->errstr);
		s->down_logged = true;
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = s;
	redisLibevAttach(s->e->loop, ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (is_cmd && s->target.db)
		redisAsyncCommand(ac, NULL, NULL, "SELECT %u", s->target.db);
	return ac;
}

static void on_probe(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct shard *s = privdata;

	(void)ac;
	/* NULL too: the connection went, nothing is owed */
	s->probe_owed = false;
	if (reply)
		answered(s);
}

/* A Redis that hangs with its connections open (stopped, swapping, stuck
 * in a script) never closes them, and hiredis 0.14's async API has no
 * command timeout: publishes and reads would wait as long as it hangs,
 * and /healthz say ok. So while the command connection owes replies, a
 * PING goes after them; Redis answers in order, so a PING unanswered for
 * REPLY_TIMEOUT_MS means nothing behind it was answered either. Then the
 * connection is dropped: every reply still owed is answered NULL (a
 * publish gets 503 redis_unavailable; it may still have been stored if
 * Redis runs its input later, which a retry with its Idempotency-Key
 * settles), /healthz says degraded, and on_retry connects again. */
static void watch_shard(struct shard *s, uint64_t now)
{
	if (s->cmd == NULL || !s->cmd_up)
		return;
	if (s->probe_owed) {
		if (now - s->probe_sent_ms < REPLY_TIMEOUT_MS)
			return;
		log_warn("shard %s answered nothing in %d ms: dropping its "
			 "connection and connecting again",
			 shard_name(s), REPLY_TIMEOUT_MS);
		s->down_logged = true;
		s->hung = true;
		s->cmd_up = false;
		/* runs every callback owed (on_probe included), then
		 * on_disconnect, which forgets s->cmd */
		redisAsyncFree(s->cmd);
		return;
	}
	if (s->cmd->replies.head == NULL)
		return; /* nothing owed: nothing to wait for */
	if (redisAsyncCommand(s->cmd, on_probe, s, "PING") == REDIS_OK) {
		s->probe_owed = true;
		s->probe_sent_ms = now;
	}
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct redis_engine *e = w->data;
	uint64_t now = bus_now_ms();

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < e->cfg.nshards; i++) {
		struct shard *s = &e->shards[i];

		watch_shard(s, now);
		if (s->cmd == NULL)
			s->cmd = connect_shard(s, true);
		if (s->sub == NULL)
			s->sub = connect_shard(s, false);
	}
}

/* ---- life cycle ---- */

static void *engine_main(void *arg)
{
	struct redis_engine *e = arg;

	on_retry(e->loop, &e->retry, 0);
	ev_run(e->loop, 0);
	/* stopping: every reply still owed is answered (NULL) by the frees */
	for (size_t i = 0; i < e->cfg.nshards; i++) {
		struct shard *s = &e->shards[i];

		if (s->cmd)
			redisAsyncFree(s->cmd);
		if (s->sub)
			redisAsyncFree(s->sub);
	}
	return NULL;
}

struct redis_engine *redis_engine_start(const struct redis_engine_config *c,
					struct bus *bus)
{
	struct redis_engine *e = xcalloc(1, sizeof *e);
	double retry = (double)(c->retry_ms ? c->retry_ms : 250) / 1000.0;

	e->cfg = *c;
	if (e->cfg.nshards > REDIS_SHARDS_MAX)
		e->cfg.nshards = REDIS_SHARDS_MAX;
	for (size_t i = 0; i < e->cfg.nshards; i++) {
		e->shards[i].e = e;
		e->shards[i].target = c->shards[i];
	}
	e->cfg.shards = NULL;
	e->bus = bus;
	siphash_key_random(&e->key);
	e->nbuckets = ACTIVE_BUCKETS;
	e->buckets = xcalloc(e->nbuckets, sizeof *e->buckets);
	pthread_mutex_init(&e->lock, NULL);
	e->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (e->loop == NULL) {
		log_error("no event loop for the Redis engine");
		goto fail;
	}
	ev_async_init(&e->wake, on_wake);
	e->wake.data = e;
	ev_async_start(e->loop, &e->wake);
	ev_timer_init(&e->retry, on_retry, retry, retry);
	e->retry.data = e;
	ev_timer_start(e->loop, &e->retry);
	redis_nodes_id_new(e->node);
	ev_timer_init(&e->beat, on_beat, REDIS_NODE_BEAT_MS / 1000.0,
		      REDIS_NODE_BEAT_MS / 1000.0);
	e->beat.data = e;
	ev_timer_start(e->loop, &e->beat);
	bus_set_remote(bus, &engine_ops, e);
	if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
		log_error("cannot start the Redis engine's thread");
		goto fail;
	}
	return e;
fail:
	if (e->loop)
		ev_loop_destroy(e->loop);
	pthread_mutex_destroy(&e->lock);
	free(e->buckets);
	free(e);
	return NULL;
}

void redis_engine_stop(struct redis_engine *e)
{
	struct op *list;
	bool was;

	if (e == NULL)
		return;
	pthread_mutex_lock(&e->lock);
	was = e->stop;
	e->stop = true;
	pthread_mutex_unlock(&e->lock);
	if (was)
		return;
	ev_async_send(e->loop, &e->wake);
	pthread_join(e->thread, NULL);
	atomic_store(&e->healthy, false);
	/* queued after the loop's last look */
	list = e->head;
	e->head = e->tail = NULL;
	while (list) {
		struct op *next = list->next;

		op_refuse(e, list);
		free(list);
		list = next;
	}
}

void redis_engine_free(struct redis_engine *e)
{
	if (e == NULL)
		return;
	redis_engine_stop(e);
	for (size_t i = 0; i < e->nbuckets; i++) {
		struct active *a = e->buckets[i], *next;

		for (; a; a = next) {
			next = a->hnext;
			free(a);
		}
	}
	free(e->buckets);
	ev_loop_destroy(e->loop);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
