/* pollers.h: the poll and long-poll clients seen lately, for presence,
 * over the whole bus: one entry per (channel, client id, transport).
 * Bounded in number, and kept in the order they were last seen, so
 * expiry looks only at what expires. Not thread-safe: the bus calls it
 * under its lock. */
#ifndef ANYPUSH_POLLERS_H
#define ANYPUSH_POLLERS_H

#include "transport.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pollers;
struct siphash_key;

struct poller {
	struct poller *older, *newer; /* all of them, by seen_ms */
	struct poller *hnext;         /* the hash chain */
	void *owner;                  /* the channel it polled */
	uint64_t seen_ms;
	enum transport_id transport;
	bool announce; /* it asked for join/leave */
	char client[CLIENT_ID_MAX + 1];
};

/* What the owner of the set decides. cls is the caller's, per call. */
struct pollers_ops {
	/* An expired poller is still there (a held long poll). */
	bool (*keep)(const struct poller *p, void *cls);
	/* p is being removed (expired, or dropped over the cap); it is
	 * freed after this returns. */
	void (*gone)(const struct poller *p, void *cls);
};

/* Life cycle */
/* At most max pollers; lookups hashed with key (copied). */
struct pollers *pollers_new(size_t max, const struct siphash_key *key,
			    const struct pollers_ops *ops);
void pollers_free(struct pollers *set);

/* Seeing and forgetting */
/* Mark the client seen on owner at now; true if it was not there (a
 * join). A new one past the cap first drops the least recently seen,
 * through ops->gone. */
bool pollers_seen(struct pollers *set, void *owner, const char *client,
		  enum transport_id t, bool announce, uint64_t now, void *cls);
/* Remove those last seen at or before `before`, stalest first, unless
 * ops->keep says the client is still there: then it is seen at now.
 * Stops at the first one seen later, so the cost is what expires. */
void pollers_expire(struct pollers *set, uint64_t before, uint64_t now,
		    void *cls);

/* Remove every poller with that client id, on any channel, through
 * ops->gone (the admin API disconnects a client). Walks the whole set:
 * an admin's act, not a poll's. */
void pollers_forget(struct pollers *set, const char *client, void *cls);

/* Counts */
size_t pollers_count(const struct pollers *set);
/* Entries pollers_expire has looked at, ever (tests: expiry cost). */
uint64_t pollers_visited(const struct pollers *set);

#endif
