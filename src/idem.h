/* idem.h: the idempotency keys publishers sent lately, over the whole
 * bus: one entry per (channel, key), with what the first publish stored,
 * so a retry is answered with the original id instead of a second
 * message. Bounded in number, kept in the order they were stored, so
 * expiry and the cap look only at the oldest. Not thread-safe: the bus
 * calls it under its lock, which makes check-and-store one step. */
#ifndef ANYPUSH_IDEM_H
#define ANYPUSH_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key: 1 to 64 of [A-Za-z0-9_.:-]. */
#define IDEM_KEY_MAX 64

struct idem;
struct siphash_key;

struct idem_entry {
	struct idem_entry *older, *newer; /* all of them, by born_ms */
	struct idem_entry *hnext;         /* the hash chain */
	struct idem_entry *onext;         /* the owner's list */
	struct idem_entry **oprev;        /* what points at this one there */
	const void *owner;                /* the channel published to */
	uint64_t hash;  /* of the message (message_hash in bus.c) */
	uint64_t epoch; /* where the first publish stood */
	uint64_t id;
	uint64_t born_ms; /* monotonic */
	unsigned char key_len;
	char key[];
};

/* Life cycle */
/* At most max entries; lookups hashed with key (copied). */
struct idem *idem_new(size_t max, const struct siphash_key *key);
void idem_free(struct idem *set);

/* Keys */
/* Whether s is a well-formed key (network input: explicit length). */
bool idem_key_valid(const char *s, size_t len);
/* The entry for (owner, key) born after `after` (monotonic ms), or NULL;
 * an older one found on the way is removed. */
const struct idem_entry *idem_find(struct idem *set, const void *owner,
				   const char *key, size_t len, uint64_t after);
/* Remember (owner, key) with what it stored; the entry is also linked at
 * the head of *list, the owner's own list, so idem_forget_owner can drop
 * them all when the owner goes. Past the cap the oldest is dropped. The
 * key must be valid and not already there. */
void idem_add(struct idem *set, const void *owner, struct idem_entry **list,
	      const char *key, size_t len, uint64_t hash, uint64_t epoch,
	      uint64_t id, uint64_t now);
/* Drop the entries born at or before `before`, oldest first; the cost is
 * what expires. */
void idem_expire(struct idem *set, uint64_t before);
/* Drop every entry of the owner whose list this is. */
void idem_forget_owner(struct idem *set, struct idem_entry **list);

/* Counts */
size_t idem_count(const struct idem *set);

#endif
