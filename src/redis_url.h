/* redis_url.h: where the Redis engine's shards are (--redis), and which
 * shard owns a channel. Pure: no connection is made here. Every node given
 * the same list must send a channel to the same shard, so the hash is a
 * fixed one (not the bus's secret key) and the list's order matters. */
#ifndef ANYPUSH_REDIS_URL_H
#define ANYPUSH_REDIS_URL_H

#include <stddef.h>

/* Shards one --redis list may name. */
#define REDIS_SHARDS_MAX 16
/* Longest host name or unix socket path kept. */
#define REDIS_HOST_MAX 255
#define REDIS_PATH_MAX 107 /* sun_path less its NUL */

/* One Redis instance: TCP (host, port, db) or a unix socket (path, db). */
struct redis_target {
	char host[REDIS_HOST_MAX + 1]; /* "" for a unix socket */
	char path[REDIS_PATH_MAX + 1]; /* "" for TCP */
	unsigned port;
	unsigned db;
};

/* Parsing */
/* One URL: redis://host[:port][/db] (port 6379, db 0 by default) or
 * unix:/path[?db=N]. 0, or -1 with a one-line reason in why. */
int redis_url_parse(const char *url, size_t len, struct redis_target *out,
		    char *why, size_t why_len);
/* A comma-separated list of URLs, at most REDIS_SHARDS_MAX, no URL twice.
 * The count, or -1 with a reason in why. */
int redis_url_list_parse(const char *list, struct redis_target *out, char *why,
			 size_t why_len);

/* Sharding */
/* The shard (0..nshards-1) that owns the channel: the same on every node
 * and every run for the same list. */
size_t redis_shard_of(const char *channel, size_t len, size_t nshards);

#endif
