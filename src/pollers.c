/* A hash for lookup (every poll asks "is this client here?") and one
 * list over all channels in the order pollers were last seen, for expiry
 * and the cap. Seeing a poller again moves it to the newest end, so the
 * stalest is always at the other: the watcher's tick pops only what has
 * expired, and the cap drops the stalest in O(1). Before, each channel
 * had its own set and every tick walked every poller of every channel.
 *
 * Pollers that send no client id cannot be told apart from one request
 * to the next, so callers record only explicit ids. The ids are chosen by
 * clients, hence the keyed hash. */
#include "pollers.h"

#include "siphash.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pollers {
	const struct pollers_ops *ops;
	struct siphash_key key;
	struct poller *stalest, *newest; /* by seen_ms, oldest first */
	struct poller **buckets;
	size_t nbuckets, count, max;
	uint64_t visited;
};

static size_t slot(const struct pollers *set, const void *owner,
		   const char *client, enum transport_id t)
{
	unsigned char k[sizeof owner + 1 + CLIENT_ID_MAX];
	size_t n = strnlen(client, CLIENT_ID_MAX);

	memcpy(k, &owner, sizeof owner);
	k[sizeof owner] = (unsigned char)t;
	memcpy(k + sizeof owner + 1, client, n);
	return (size_t)siphash13(&set->key, k, sizeof owner + 1 + n) &
	       (set->nbuckets - 1);
}

static void rehash(struct pollers *set, size_t n)
{
	free(set->buckets);
	set->buckets = xcalloc(n, sizeof *set->buckets);
	set->nbuckets = n;
	for (struct poller *p = set->stalest; p; p = p->newer) {
		size_t k = slot(set, p->owner, p->client, p->transport);

		p->hnext = set->buckets[k];
		set->buckets[k] = p;
	}
}

struct pollers *pollers_new(size_t max, const struct siphash_key *key,
			    const struct pollers_ops *ops)
{
	struct pollers *set = xcalloc(1, sizeof *set);

	set->ops = ops;
	set->key = *key;
	set->max = max ? max : 1;
	rehash(set, 64);
	return set;
}

void pollers_free(struct pollers *set)
{
	if (set == NULL)
		return;
	while (set->stalest) {
		struct poller *p = set->stalest;

		set->stalest = p->newer;
		free(p);
	}
	free(set->buckets);
	free(set);
}

static struct poller *find(const struct pollers *set, const void *owner,
			   const char *client, enum transport_id t)
{
	struct poller *p = set->buckets[slot(set, owner, client, t)];

	while (p && !(p->owner == owner && p->transport == t &&
		      strcmp(p->client, client) == 0))
		p = p->hnext;
	return p;
}

static void list_unlink(struct pollers *set, struct poller *p)
{
	if (p->older)
		p->older->newer = p->newer;
	else
		set->stalest = p->newer;
	if (p->newer)
		p->newer->older = p->older;
	else
		set->newest = p->older;
}

/* Seen at now, so the newest. Two threads may read the clock in one
 * order and take the bus lock in the other: keep the list sorted by
 * never going back in time. */
static void list_append(struct pollers *set, struct poller *p, uint64_t now)
{
	if (set->newest && set->newest->seen_ms > now)
		now = set->newest->seen_ms;
	p->seen_ms = now;
	p->newer = NULL;
	p->older = set->newest;
	if (set->newest)
		set->newest->newer = p;
	else
		set->stalest = p;
	set->newest = p;
}

static void remove_poller(struct pollers *set, struct poller *p, void *cls)
{
	struct poller **h =
		&set->buckets[slot(set, p->owner, p->client, p->transport)];

	set->ops->gone(p, cls);
	while (*h != p)
		h = &(*h)->hnext;
	*h = p->hnext;
	list_unlink(set, p);
	set->count--;
	free(p);
}

bool pollers_seen(struct pollers *set, void *owner, const char *client,
		  enum transport_id t, bool announce, uint64_t now, void *cls)
{
	struct poller *p = find(set, owner, client, t);
	bool fresh = p == NULL;

	if (fresh) {
		if (set->count >= set->max)
			remove_poller(set, set->stalest, cls);
		p = xcalloc(1, sizeof *p);
		p->owner = owner;
		p->transport = t;
		snprintf(p->client, sizeof p->client, "%s", client);
		list_append(set, p, now);
		if (++set->count > set->nbuckets) {
			rehash(set, set->nbuckets * 2);
		} else {
			size_t k = slot(set, owner, client, t);

			p->hnext = set->buckets[k];
			set->buckets[k] = p;
		}
	} else {
		list_unlink(set, p);
		list_append(set, p, now);
	}
	p->announce |= announce;
	return fresh;
}

void pollers_expire(struct pollers *set, uint64_t before, uint64_t now,
		    void *cls)
{
	struct poller *first_kept = NULL;

	/* a kept one goes to the newest end; meeting it again means every
	 * expired one was looked at (when now <= before, as with a zero
	 * window, it would still look expired) */
	while (set->stalest && set->stalest != first_kept) {
		struct poller *p = set->stalest;

		set->visited++;
		if (p->seen_ms > before)
			break;
		if (set->ops->keep(p, cls)) {
			list_unlink(set, p);
			list_append(set, p, now);
			if (first_kept == NULL)
				first_kept = p;
		} else {
			remove_poller(set, p, cls);
		}
	}
}

void pollers_forget(struct pollers *set, const char *client, void *cls)
{
	struct poller *p = set->stalest;

	while (p) {
		struct poller *next = p->newer;

		if (strcmp(p->client, client) == 0)
			remove_poller(set, p, cls);
		p = next;
	}
}

size_t pollers_count(const struct pollers *set)
{
	return set->count;
}

uint64_t pollers_visited(const struct pollers *set)
{
	return set->visited;
}
