/* redis_nodes.h: what the nodes of one gateway tell each other through
 * Redis besides messages (--redis; docs/internals/redis.md): each node's
 * subscriber counts, kept alive by a heartbeat, summed by the info
 * script; and control messages (the admin API's deletes and
 * disconnects) that every node's engine listens to. Like redis_store.h,
 * only commands and replies: the engine's thread sends them.
 *
 * On every shard:
 *   ap:nodes        set of node ids that wrote counts there
 *   ap:node:<id>    hash: channel name -> "<poll> <longpoll> <sse> <ws>",
 *                   that node's channels of this shard; PEXPIRE
 *                   REDIS_NODE_TTL_MS, renewed every REDIS_NODE_BEAT_MS,
 *                   so a killed node's counts vanish within the TTL
 *   ap:ctl          pub/sub channel of control messages: "d <channel>"
 *                   (deleted: end its subscribers, read it again),
 *                   "c <client id>" (end that client's connections) */
#ifndef ANYPUSH_REDIS_NODES_H
#define ANYPUSH_REDIS_NODES_H

#include "redis_store.h"
#include "transport.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_NODE_TTL_MS 6000
#define REDIS_NODE_BEAT_MS 2000
#define REDIS_NODE_ID_MAX 16 /* hex digits */
#define REDIS_CONTROL_CHANNEL "ap:ctl"

/* What Redis knows of a channel, for /channels/{ch}/info. */
struct redis_info {
	bool exists; /* false: no epoch (never published, or lost) */
	uint64_t epoch, last_id, oldest_id;
	size_t retained;
	size_t subscribers[TRANSPORT_COUNT]; /* other nodes', summed */
};

/* Node ids */
/* A fresh random id, REDIS_NODE_ID_MAX hex digits and a NUL. */
void redis_nodes_id_new(char *out);

/* Counts (engine thread) */
/* One channel's counts of this node: HSET, or HDEL when all are 0. */
void redis_nodes_counts_cmd(const char *node, const char *channel, size_t len,
			    const size_t *counts, struct redis_cmd *cmd);
/* The heartbeat: renew the TTL of this node's hash (a reply of 0 means
 * Redis lost it: write every count again), and join ap:nodes. */
void redis_nodes_expire_cmd(const char *node, struct redis_cmd *cmd);
void redis_nodes_join_cmd(const char *node, struct redis_cmd *cmd);

/* Info */
/* The info script (EVAL, it runs seldom): the channel's head and
 * history, and the counts of every live node but `node`; nodes whose
 * hash expired are dropped from ap:nodes on the way. */
void redis_nodes_info_cmd(const char *channel, size_t len, const char *node,
			  struct redis_cmd *cmd);
/* 0, or -1 when the reply is not the script's. */
int redis_nodes_info_reply(const redisReply *r, struct redis_info *out);

/* Control */
/* DEL of a channel's meta and stream (the reply: keys removed). */
void redis_nodes_delete_cmd(const char *channel, size_t len,
			    struct redis_cmd *cmd);
/* PUBLISH of a control message: kind 'd' (a channel) or 'c' (a client). */
void redis_nodes_control_cmd(char kind, const char *name, size_t len,
			     struct redis_cmd *cmd);
/* A control message's kind and name; 0, or -1 when it is not one. */
int redis_nodes_control_decode(const char *s, size_t len, char *kind,
			       const char **name, size_t *name_len);

#endif
