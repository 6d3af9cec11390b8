/* A hash for lookup (every poll asks "is this client here?") and a list
 * for expiry. Pollers that send no client id cannot be told apart from
 * one request to the next, so callers record only explicit ids. */
#include "pollers.h"

#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pollers {
	struct poller *all;
	struct poller **buckets;
	size_t nbuckets, count;
};

static size_t slot(const struct pollers *set, const char *client,
		   enum transport_id t)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)t;

	for (const char *c = client; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	return (size_t)h & (set->nbuckets - 1);
}

static void rehash(struct pollers *set, size_t n)
{
	free(set->buckets);
	set->buckets = xcalloc(n, sizeof *set->buckets);
	set->nbuckets = n;
	for (struct poller *p = set->all; p; p = p->next) {
		size_t k = slot(set, p->client, p->transport);

		p->hnext = set->buckets[k];
		set->buckets[k] = p;
	}
}

static struct poller *find(const struct pollers *set, const char *client,
			   enum transport_id t)
{
	struct poller *p = set->buckets[slot(set, client, t)];

	while (p && !(p->transport == t && strcmp(p->client, client) == 0))
		p = p->hnext;
	return p;
}

/* Take p out of the hash chain and the list (pp points at it there). */
static void unlink_poller(struct pollers *set, struct poller **pp)
{
	struct poller *p = *pp;
	struct poller **h = &set->buckets[slot(set, p->client, p->transport)];

	while (*h != p)
		h = &(*h)->hnext;
	*h = p->hnext;
	*pp = p->next;
	set->count--;
}

static void drop_stalest(struct pollers *set)
{
	struct poller **stalest = &set->all, *gone;

	for (struct poller **p = &set->all; *p; p = &(*p)->next)
		if ((*p)->seen_ms < (*stalest)->seen_ms)
			stalest = p;
	gone = *stalest;
	unlink_poller(set, stalest);
	free(gone);
}

bool pollers_seen(struct pollers **setp, const char *client,
		  enum transport_id t, bool announce, uint64_t now)
{
	struct pollers *set = *setp;
	struct poller *p;
	bool fresh = false;

	if (set == NULL) {
		set = *setp = xcalloc(1, sizeof *set);
		rehash(set, 16);
	}
	p = find(set, client, t);
	if (p == NULL) {
		if (set->count == POLLERS_MAX)
			drop_stalest(set);
		p = xcalloc(1, sizeof *p);
		p->transport = t;
		snprintf(p->client, sizeof p->client, "%s", client);
		p->next = set->all;
		set->all = p;
		if (++set->count > set->nbuckets * 2)
			rehash(set, set->nbuckets * 2);
		else {
			size_t k = slot(set, client, t);

			p->hnext = set->buckets[k];
			set->buckets[k] = p;
		}
		fresh = true;
	}
	p->announce |= announce;
	p->seen_ms = now;
	return fresh;
}

void pollers_expire(struct pollers *set, uint64_t before, uint64_t now,
		    bool (*keep)(const struct poller *p, void *cls),
		    void (*gone)(const struct poller *p, void *cls), void *cls)
{
	struct poller **pp = set ? &set->all : NULL;

	while (pp && *pp) {
		struct poller *p = *pp;

		if (p->seen_ms > before) {
			pp = &p->next;
		} else if (keep(p, cls)) {
			p->seen_ms = now;
			pp = &p->next;
		} else {
			gone(p, cls);
			unlink_poller(set, pp);
			free(p);
		}
	}
}

void pollers_count(const struct pollers *set, size_t *counts)
{
	for (const struct poller *p = set ? set->all : NULL; p; p = p->next)
		counts[p->transport]++;
}

bool pollers_empty(const struct pollers *set)
{
	return set == NULL || set->count == 0;
}

void pollers_free(struct pollers *set)
{
	if (set == NULL)
		return;
	while (set->all) {
		struct poller *p = set->all;

		set->all = p->next;
		free(p);
	}
	free(set->buckets);
	free(set);
}
