/* siphash.h: SipHash-1-3, a keyed 64-bit hash for hash tables whose keys
 * come from the network. With a secret random key, nobody outside the
 * process can pick names that land in the same bucket. */
#ifndef ANYPUSH_SIPHASH_H
#define ANYPUSH_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* 128 bits of key, as the two little-endian words of its 16 bytes. */
struct siphash_key {
	uint64_t k0, k1;
};

/* A fresh random key (getrandom; a weaker mix of clock, pid and address
 * if that fails, with a warning). */
void siphash_key_random(struct siphash_key *key);
/* SipHash-1-3 of len bytes. */
uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len);

#endif
