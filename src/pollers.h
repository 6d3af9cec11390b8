/* pollers.h: the poll and long-poll clients a channel has seen lately,
 * keyed by (client id, transport), for presence. Not thread-safe: the
 * bus calls it under its lock. */
#ifndef ANYPUSH_POLLERS_H
#define ANYPUSH_POLLERS_H

#include "transport.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pollers;

struct poller {
	struct poller *next, *hnext; /* all of them; the hash chain */
	uint64_t seen_ms;
	enum transport_id transport;
	bool announce; /* it asked for join/leave */
	char client[CLIENT_ID_MAX + 1];
};

/* Past this many per channel, the least recently seen is forgotten. */
#define POLLERS_MAX 4096

/* Mark the client seen at now; true if it was not there (a join).
 * *set is created on first use. */
bool pollers_seen(struct pollers **set, const char *client, enum transport_id t,
		  bool announce, uint64_t now);
/* Remove those last seen at or before `before`, unless keep() says the
 * client is still there (a held long poll): then it is seen at now.
 * gone() is called for each removed one before it is freed. */
void pollers_expire(struct pollers *set, uint64_t before, uint64_t now,
		    bool (*keep)(const struct poller *p, void *cls),
		    void (*gone)(const struct poller *p, void *cls), void *cls);
/* Add how many of each transport are present to counts[]. */
void pollers_count(const struct pollers *set, size_t *counts);
bool pollers_empty(const struct pollers *set);
void pollers_free(struct pollers *set);

#endif
