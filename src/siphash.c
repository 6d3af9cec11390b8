/* SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012, with one compression and three finalization rounds as in Python
 * and Rust's hash tables). It replaces FNV-1a where the keys are chosen by
 * clients: FNV-1a has no secret, so anyone can compute names that share a
 * bucket and make every lookup walk one long chain under the bus lock.
 * 1-3 rather than 2-4: a table needs its key kept secret from collision
 * search, not a MAC, and names are hashed on every publish and poll. */
#include "siphash.h"

#include "log.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define LOG_PREFIX "siphash"

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

struct sipstate {
	uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sipstate *s)
{
	s->v0 += s->v1;
	s->v1 = rotl(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl(s->v2, 32);
}

/* One message word: the compression round between two xors. */
static void absorb(struct sipstate *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	s->v0 ^= m;
}

/* Up to 8 bytes as a little-endian word, whatever the host order. */
static uint64_t load_le(const unsigned char *p, size_t n)
{
	uint64_t w = 0;

	for (size_t i = 0; i < n; i++)
		w |= (uint64_t)p[i] << (8 * i);
	return w;
}

uint64_t siphash13(const struct siphash_key *key, const void *data, size_t len)
{
	const unsigned char *p = data;
	struct sipstate s = {
		.v0 = key->k0 ^ 0x736f6d6570736575ULL, /* "somepseu" */
		.v1 = key->k1 ^ 0x646f72616e646f6dULL, /* "dorandom" */
		.v2 = key->k0 ^ 0x6c7967656e657261ULL, /* "lygenera" */
		.v3 = key->k1 ^ 0x7465646279746573ULL, /* "tedbytes" */
	};
	size_t whole = len - len % 8;

	for (size_t i = 0; i < whole; i += 8)
		absorb(&s, load_le(p + i, 8));
	/* the last word carries the length in its top byte */
	absorb(&s, load_le(p + whole, len % 8) | (uint64_t)len << 56);
	s.v2 ^= 0xff;
	for (int i = 0; i < 3; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void siphash_key_random(struct siphash_key *key)
{
	unsigned char b[16];
	struct timespec ts;

	/* blocks only before the kernel's pool is first ready, at boot */
	if (getrandom(b, sizeof b, 0) == (ssize_t)sizeof b) {
		key->k0 = load_le(b, 8);
		key->k1 = load_le(b + 8, 8);
		return;
	}
	log_warn("getrandom failed; hash keys come from the clock and pid");
	clock_gettime(CLOCK_REALTIME, &ts);
	key->k0 = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
		  (uint64_t)(uintptr_t)key;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key->k1 = (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
}
