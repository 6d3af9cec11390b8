/* redis_engine.h: the Redis engine (--redis; docs/internals/redis.md).
 * One thread with its own libev loop owns every Redis connection: per
 * shard, one for commands (the scripts of redis_store.c) and one for
 * pub/sub. Other threads only queue work for it, so no HTTP or WebSocket
 * thread ever waits on Redis. It makes the bus a remote node
 * (bus_set_remote): channels in use here are subscribed, synced and fed
 * from Redis, holes are filled from the stream, and after a reconnect
 * every channel in use is read again from its last id. */
#ifndef ANYPUSH_REDIS_ENGINE_H
#define ANYPUSH_REDIS_ENGINE_H

#include "redis_nodes.h"
#include "redis_url.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct message;
struct redis_engine;

struct redis_engine_config {
	const struct redis_target *shards; /* copied */
	size_t nshards;
	uint64_t history_size;
	uint64_t history_age_ms;
	uint64_t idem_window_ms;
	uint64_t retry_ms; /* between reconnect attempts */
};

/* What became of a publish. */
enum redis_engine_status {
	REDIS_ENGINE_STORED,   /* in Redis at epoch, id */
	REDIS_ENGINE_REPLAYED, /* its key stored it before, at epoch, id */
	REDIS_ENGINE_CONFLICT, /* its key stored another message */
	REDIS_ENGINE_DOWN,     /* Redis unreachable: not known to be stored */
};

/* Called on the engine's thread, exactly once per publish. */
typedef void redis_engine_done_fn(void *cls, enum redis_engine_status st,
				  uint64_t epoch, uint64_t id);

/* Life cycle */
/* Make bus a node of the engine (before any channel exists) and start
 * the thread; NULL (logged) if it cannot start. Unreachable shards are
 * not an error: they are retried every retry_ms. */
struct redis_engine *redis_engine_start(const struct redis_engine_config *c,
					struct bus *bus);
/* Stop the thread and answer every publish still owed (DOWN); from then
 * on publishes are answered DOWN at once, on the caller's thread. The
 * engine stays allocated, since the bus may still call it (leaves).
 * NULL: nothing. */
void redis_engine_stop(struct redis_engine *e);
/* Stop it if need be, and free it (after the bus's last use of it). */
void redis_engine_free(struct redis_engine *e);

/* Publishing (any thread) */
/* Store m (unsealed, from message_new; the reference is taken over) in
 * the channel's shard, with an idempotency key (NULL: none; hash: the
 * message's, the same on every node), then call done. */
void redis_engine_publish(struct redis_engine *e, const char *channel,
			  size_t len, struct message *m, const char *key,
			  uint64_t hash, redis_engine_done_fn *done, void *cls);

/* Info and the admin API (any thread); the answers come on the engine's
 * thread, exactly once. */
/* What Redis knows of the channel, other nodes' counts summed (this
 * node's are not in them); NULL: Redis unreachable. */
typedef void redis_engine_info_fn(void *cls, const struct redis_info *in);
void redis_engine_info(struct redis_engine *e, const char *channel, size_t len,
		       redis_engine_info_fn *done, void *cls);
/* n: keys deleted, or nodes the message reached; -1: Redis unreachable. */
typedef void redis_engine_admin_fn(void *cls, long long n);
/* Delete the channel's meta and stream, then tell every node (this one
 * too) to end its subscribers and read it again: its next epoch is new. */
void redis_engine_delete(struct redis_engine *e, const char *channel,
			 size_t len, redis_engine_admin_fn *done, void *cls);
/* Tell every node (this one too) to end that client id's connections. */
void redis_engine_disconnect(struct redis_engine *e, const char *client,
			     redis_engine_admin_fn *done, void *cls);

/* State */
/* Every shard connected (both connections): /healthz. */
bool redis_engine_healthy(const struct redis_engine *e);

#endif
