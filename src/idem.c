/* A hash for lookup (every keyed publish asks "was this stored?") and one
 * list over all channels in the order keys were stored, for expiry and
 * the cap: the oldest is always at one end, so the tick pops only what
 * has expired and the cap drops the oldest in O(1). The same shape as
 * pollers.c.
 *
 * Each entry is also on its channel's own list. A channel whose tomb is
 * forgotten (bus.c, trim_tombs) is freed, and a new channel could get
 * the same address: its keys must go with it, or a publish to the new
 * channel could be answered with an id of the old one.
 *
 * Keys are chosen by clients, hence the keyed hash. */
#include "idem.h"

#include "siphash.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

struct idem {
	struct siphash_key key;
	struct idem_entry *oldest, *newest; /* by born_ms */
	struct idem_entry **buckets;
	size_t nbuckets, count, max;
};

static size_t slot(const struct idem *set, const void *owner, const char *key,
		   size_t len)
{
	unsigned char k[sizeof owner + IDEM_KEY_MAX];

	memcpy(k, &owner, sizeof owner);
	memcpy(k + sizeof owner, key, len);
	return (size_t)siphash13(&set->key, k, sizeof owner + len) &
	       (set->nbuckets - 1);
}

static void rehash(struct idem *set, size_t n)
{
	free(set->buckets);
	set->buckets = xcalloc(n, sizeof *set->buckets);
	set->nbuckets = n;
	for (struct idem_entry *e = set->oldest; e; e = e->newer) {
		size_t k = slot(set, e->owner, e->key, e->key_len);

		e->hnext = set->buckets[k];
		set->buckets[k] = e;
	}
}

struct idem *idem_new(size_t max, const struct siphash_key *key)
{
	struct idem *set = xcalloc(1, sizeof *set);

	set->key = *key;
	set->max = max ? max : 1;
	rehash(set, 64);
	return set;
}

void idem_free(struct idem *set)
{
	if (set == NULL)
		return;
	while (set->oldest) {
		struct idem_entry *e = set->oldest;

		set->oldest = e->newer;
		free(e);
	}
	free(set->buckets);
	free(set);
}

bool idem_key_valid(const char *s, size_t len)
{
	if (len == 0 || len > IDEM_KEY_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == ':' || c == '-'))
			return false;
	}
	return true;
}

static struct idem_entry **find_slot(struct idem *set, const void *owner,
				     const char *key, size_t len)
{
	struct idem_entry **p = &set->buckets[slot(set, owner, key, len)];

	while (*p && !((*p)->owner == owner && (*p)->key_len == len &&
		       memcmp((*p)->key, key, len) == 0))
		p = &(*p)->hnext;
	return p;
}

static void drop(struct idem *set, struct idem_entry *e)
{
	struct idem_entry **p = find_slot(set, e->owner, e->key, e->key_len);

	*p = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		set->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		set->newest = e->older;
	*e->oprev = e->onext;
	if (e->onext)
		e->onext->oprev = e->oprev;
	set->count--;
	free(e);
}

const struct idem_entry *idem_find(struct idem *set, const void *owner,
				   const char *key, size_t len, uint64_t after)
{
	struct idem_entry *e = *find_slot(set, owner, key, len);

	if (e && e->born_ms <= after) {
		drop(set, e);
		return NULL;
	}
	return e;
}

void idem_add(struct idem *set, const void *owner, struct idem_entry **list,
	      const char *key, size_t len, uint64_t hash, uint64_t epoch,
	      uint64_t id, uint64_t now)
{
	struct idem_entry *e = xcalloc(1, sizeof *e + len);
	size_t k;

	if (set->count >= set->max)
		drop(set, set->oldest);
	if (set->count >= set->nbuckets)
		rehash(set, set->nbuckets * 2);
	e->owner = owner;
	e->hash = hash;
	e->epoch = epoch;
	e->id = id;
	e->born_ms = now;
	e->key_len = (unsigned char)len;
	memcpy(e->key, key, len);
	k = slot(set, owner, key, len);
	e->hnext = set->buckets[k];
	set->buckets[k] = e;
	e->older = set->newest;
	if (set->newest)
		set->newest->newer = e;
	else
		set->oldest = e;
	set->newest = e;
	e->onext = *list;
	if (e->onext)
		e->onext->oprev = &e->onext;
	e->oprev = list;
	*list = e;
	set->count++;
}

void idem_expire(struct idem *set, uint64_t before)
{
	while (set->oldest && set->oldest->born_ms <= before)
		drop(set, set->oldest);
}

void idem_forget_owner(struct idem *set, struct idem_entry **list)
{
	while (*list)
		drop(set, *list);
}

size_t idem_count(const struct idem *set)
{
	return set->count;
}
