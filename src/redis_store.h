/* redis_store.h: how a channel lives in Redis, for the Redis engine
 * (--redis; docs/internals/redis.md). The keys, the two Lua scripts that
 * make a publish and a read atomic, the commands that run them and the
 * parsing of their replies, and the record a message is stored as. No
 * connection and no thread here: the engine's thread sends what these
 * build, on whatever hiredis context it owns, and the tests send them on
 * a blocking one.
 *
 * A channel "c" is three keys (the braces keep them together on a Redis
 * Cluster slot, should one ever be used):
 *   ap:{c}:m  hash: epoch (decimal), last (the last id given)
 *   ap:{c}:s  stream of the retained messages, entry id "<id>-0", one
 *             field "m": the record
 *   ap:{c}:k:<key>  an idempotency key: "<epoch> <id> <hash>"
 * and its notifications go to the pub/sub channel ap:{c}:n as
 * "<epoch>\n<id>\n<record>". */
#ifndef ANYPUSH_REDIS_STORE_H
#define ANYPUSH_REDIS_STORE_H

#include "validate.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct message;

/* Room for any key or argument the commands below format. */
#define REDIS_KEY_MAX (CHANNEL_NAME_MAX + 80)
#define REDIS_CMD_ARGS 16

/* A command as hiredis' *CommandArgv take it. The strings point into
 * bufs, or at what the caller passed (valid while the command is). */
struct redis_cmd {
	int argc;
	const char *argv[REDIS_CMD_ARGS];
	size_t argvlen[REDIS_CMD_ARGS];
	char bufs[REDIS_CMD_ARGS - 4][REDIS_KEY_MAX]; /* publish uses 11 */
	char *record; /* owned: the encoded message, or NULL */
};

/* Building a command: an argument the caller keeps alive while the
 * command is, or one formatted into the command's next buffer (*buf
 * counts the buffers used). */
void redis_cmd_arg(struct redis_cmd *cmd, const char *s, size_t len);
void redis_cmd_argf(struct redis_cmd *cmd, unsigned *buf, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One publish. The strings are the caller's, valid while the command is. */
struct redis_publish {
	const char *channel;
	size_t channel_len;
	const char *event; /* "message" and the like, never NULL */
	const char *from;  /* "" when none */
	bool exclude_sender;
	bool binary; /* data is the raw bytes, else the JSON text */
	const void *data;
	size_t data_len;
	int64_t ts_ms;           /* wall clock, as on the wire */
	uint64_t new_epoch;      /* the epoch if the channel has none */
	uint64_t history_size;   /* entries the stream keeps */
	uint64_t history_age_ms; /* the stream's TTL */
	const char *idem_key;    /* NULL: none */
	uint64_t idem_hash;      /* of the message, the same on every node */
	uint64_t idem_window_ms; /* the key's TTL */
};

enum redis_published_kind {
	REDIS_STORED,   /* appended: epoch, id */
	REDIS_REPLAYED, /* the key stored this message before: epoch, id */
	REDIS_CONFLICT, /* the key stored another message */
};

struct redis_published {
	enum redis_published_kind kind;
	uint64_t epoch, id;
};

/* A stored message, decoded. Points into the reply it came from. */
struct redis_record {
	uint64_t epoch, id;
	int64_t ts_ms;
	bool exclude_sender, binary;
	char event[EVENT_NAME_MAX + 1];
	char from[CLIENT_ID_MAX + 1];
	const char *data;
	size_t data_len;
};

/* A channel's head and the stored messages after a cursor. */
struct redis_range {
	bool exists; /* false: Redis knows nothing of the channel */
	uint64_t epoch, last_id;
	size_t count; /* entries in reply order, ids rising */
	const redisReply *entries;
};

/* Scripts */
/* Build a command running a script by its SHA1 (EVALSHA), or, with
 * full_text, by its text (EVAL: after a NOSCRIPT error, or the first
 * time). */
void redis_store_publish_cmd(const struct redis_publish *p, bool full_text,
			     struct redis_cmd *cmd);
/* new_epoch: 0 to leave a channel Redis does not know alone, else the
 * epoch to create it under (the meta's TTL from history_age_ms). */
void redis_store_read_cmd(const char *channel, size_t len, uint64_t after_id,
			  size_t count, uint64_t new_epoch,
			  uint64_t history_age_ms, bool full_text,
			  struct redis_cmd *cmd);
/* A read, in full: what redis_store_read_cmd takes, and what this node
 * holds of the channel, so that Redis behind it (same epoch, a last id
 * before held_last_id: writes lost) moves the channel to new_epoch (when
 * not 0) in the same step. held_epoch 0: nothing held, nothing checked.
 * newest: the last count entries after after_id, not the first. */
struct redis_read {
	uint64_t after_id;
	size_t count;
	uint64_t new_epoch;
	uint64_t history_age_ms;
	uint64_t held_epoch, held_last_id;
	bool newest;
};
void redis_store_read_held_cmd(const char *channel, size_t len,
			       const struct redis_read *rd, bool full_text,
			       struct redis_cmd *cmd);
/* Free what a command owns. */
void redis_cmd_free(struct redis_cmd *cmd);
/* The reply is Redis' NOSCRIPT error: send it again with full_text. */
bool redis_store_noscript(const redisReply *r);

/* Replies */
/* 0, or -1 when the reply is an error or not the script's shape. */
int redis_store_publish_reply(const redisReply *r, uint64_t idem_hash,
			      struct redis_published *out);
int redis_store_read_reply(const redisReply *r, struct redis_range *out);
/* Entry i of a range: 0, or -1 when it is not a record of ours. */
int redis_store_range_entry(const struct redis_range *range, size_t i,
			    struct redis_record *out);

/* Records */
/* A notification from ap:{c}:n: "<epoch>\n<id>\n<record>". 0 or -1. */
int redis_store_decode_notice(const char *s, size_t len,
			      struct redis_record *out);
/* The pub/sub channel of a channel's notifications, into buf
 * (REDIS_KEY_MAX); its length. And back: the channel's name in a
 * notification channel (0, or -1 when it is not one of ours). */
size_t redis_store_notice_channel(const char *channel, size_t len, char *buf);
int redis_store_channel_of_notice(const char *s, size_t len, const char **name,
				  size_t *name_len);
/* What an idempotency key's retry must repeat (as bus.c's message_hash:
 * the data, event, binary and exclude_sender), under a fixed key: every
 * node must compute the same hash for the same message. */
uint64_t redis_store_message_hash(const struct message *m);
/* The message a record stands for, built as the publishing node built
 * it (the same envelope bytes), not sealed; refcount 1. NULL when the
 * record cannot be one (bad JSON text, say). */
struct message *redis_store_message(const char *channel, size_t len,
				    const struct redis_record *r,
				    uint64_t mono_ms);

#endif
