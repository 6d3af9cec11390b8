/* Token buckets per client IP and per client id, in a set-associative
 * table: a key ("i:" and an IP for its publishes, "n:" and an IP for its
 * new channels, "c:" and a client id) hashes to a set of WAYS slots, and
 * a new key takes the slot of the set's least recently seen one. An
 * evicted key starts again with a full bucket, which only lets a client
 * that spreads over more IPs or ids than the table holds publish more:
 * the table holds far more keys than one client commands, and memory
 * stays SETS * WAYS slots whatever arrives. */
#include "abuse.h"

#include "siphash.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SETS 4096
#define WAYS 4
#define CIDRS_MAX 64
#define XFF_MAX 1024 /* bytes of X-Forwarded-For read, from the right */
/* a namespace of two bytes, then an IP or a client id (CLIENT_ID_MAX) */
#define KEY_MAX (2 + 64 + 1)

struct slot {
	char ip[KEY_MAX]; /* the key; "" for a free slot */
	uint64_t seen_ms;
	double tokens; /* publishes left; refills at the rate per second */
};

struct cidr {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

atomic_ullong abuse_ips_evicted;

static struct {
	pthread_mutex_t lock;
	struct limits_rates rates;
	struct cidr trusted[CIDRS_MAX];
	size_t ntrusted;
	struct slot *slots; /* SETS * WAYS, made on the first use */
	struct siphash_key key;
} lim = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* "a.b.c.d[/n]" or "x::y[/n]", len bytes */
static bool parse_cidr(const char *s, size_t len, struct cidr *c)
{
	char text[64];
	const char *slash;
	unsigned long bits;
	char *end;

	if (len == 0 || len >= sizeof text)
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	slash = strchr(text, '/');
	if (slash)
		text[slash - text] = '\0';
	if (inet_pton(AF_INET, text, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, text, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else {
		return false;
	}
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return false;
		bits = strtoul(slash + 1, &end, 10);
		if (*end || bits > c->bits)
			return false;
		c->bits = (unsigned)bits;
	}
	return true;
}

/* Calls fn on each comma-separated, blank-trimmed item; false at once
 * when it says false. */
static bool each_cidr(const char *list, bool (*fn)(const struct cidr *c))
{
	const char *p = list && *list ? list : NULL;
	struct cidr c;

	while (p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (!parse_cidr(p, len, &c) || !fn(&c))
			return false;
		p = end ? end + 1 : NULL;
	}
	return true;
}

static bool count_cidr(const struct cidr *c)
{
	(void)c;
	return true;
}

bool limits_cidrs_valid(const char *list)
{
	return each_cidr(list, count_cidr);
}

static bool keep_cidr(const struct cidr *c)
{
	if (lim.ntrusted == CIDRS_MAX)
		return false;
	lim.trusted[lim.ntrusted++] = *c;
	return true;
}

void limits_configure(const struct limits_rates *rates, const char *trusted)
{
	lim.rates = *rates;
	lim.ntrusted = 0;
	(void)each_cidr(trusted, keep_cidr);
}

static bool in_cidr(const struct cidr *c, int family, const unsigned char *a)
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family || memcmp(c->addr, a, full) != 0)
		return false;
	return rest == 0 ||
	       ((c->addr[full] ^ a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* Whether the address in text form is a trusted proxy. */
static bool trusted_text(const char *text)
{
	unsigned char a[16];
	int family = AF_INET;

	if (inet_pton(AF_INET, text, a) != 1) {
		family = AF_INET6;
		if (inet_pton(AF_INET6, text, a) != 1)
			return false;
	}
	for (size_t i = 0; i < lim.ntrusted; i++)
		if (in_cidr(&lim.trusted[i], family, a))
			return true;
	return false;
}

static void peer_text(const struct sockaddr *peer, char ip[LIMITS_IP_MAX])
{
	const struct sockaddr_in6 *s6 = (const void *)peer;
	const struct sockaddr_in *s4 = (const void *)peer;

	strcpy(ip, "unknown");
	if (peer == NULL)
		return;
	if (peer->sa_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, ip, LIMITS_IP_MAX);
	} else if (peer->sa_family == AF_INET6) {
		/* an IPv4 client of a dual-stack socket is that IPv4 */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
				  LIMITS_IP_MAX);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, LIMITS_IP_MAX);
	}
}

static bool ip_valid(const char *text)
{
	unsigned char a[16];

	return inet_pton(AF_INET, text, a) == 1 ||
	       inet_pton(AF_INET6, text, a) == 1;
}

void limits_client_ip(const struct sockaddr *peer, const char *xff,
		      char ip[LIMITS_IP_MAX])
{
	char buf[XFF_MAX];
	size_t n;

	peer_text(peer, ip);
	if (xff == NULL || !trusted_text(ip))
		return;
	/* the rightmost hops are the ones a trusted proxy wrote */
	n = strlen(xff);
	if (n >= sizeof buf) {
		xff += n - (sizeof buf - 1);
		n = sizeof buf - 1;
	}
	memcpy(buf, xff, n);
	buf[n] = '\0';
	for (;;) {
		char *comma = strrchr(buf, ',');
		char *item = comma ? comma + 1 : buf;
		size_t len;

		while (*item == ' ' || *item == '\t')
			item++;
		len = strlen(item);
		while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
			item[--len] = '\0';
		/* not an address: believe nothing further left */
		if (len >= LIMITS_IP_MAX || !ip_valid(item))
			return;
		memcpy(ip, item, len + 1);
		if (comma == NULL || !trusted_text(item))
			return;
		*comma = '\0';
	}
}

/* The slot of ip, taken from its set's least recently seen one when new.
 * Under lim.lock. */
static struct slot *slot_of(const char *ip, uint64_t now_ms, bool *fresh)
{
	struct slot *s, *victim;

	if (lim.slots == NULL) {
		lim.slots = xcalloc((size_t)SETS * WAYS, sizeof *lim.slots);
		siphash_key_random(&lim.key);
	}
	s = lim.slots + (siphash13(&lim.key, ip, strlen(ip)) % SETS) * WAYS;
	victim = s;
	for (size_t w = 0; w < WAYS; w++) {
		if (strcmp(s[w].ip, ip) == 0) {
			*fresh = false;
			return &s[w];
		}
		if (victim->ip[0] != '\0' &&
		    (s[w].ip[0] == '\0' || s[w].seen_ms < victim->seen_ms))
			victim = &s[w];
	}
	if (victim->ip[0] != '\0')
		atomic_fetch_add_explicit(&abuse_ips_evicted, 1,
					  memory_order_relaxed);
	memset(victim, 0, sizeof *victim);
	strcpy(victim->ip, ip);
	victim->seen_ms = now_ms;
	*fresh = true;
	return victim;
}

/* Take one token from key's bucket of rate per second: true, or false
 * with *retry_s. Under lim.lock. */
static bool take(const char *key, unsigned long rate_per_s, uint64_t now_ms,
		 unsigned *retry_s)
{
	double rate = (double)rate_per_s;
	struct slot *s;
	bool fresh, ok;

	s = slot_of(key, now_ms, &fresh);
	/* a burst of one second's worth, refilled continuously */
	if (fresh)
		s->tokens = rate;
	else if (now_ms > s->seen_ms)
		s->tokens += rate * (double)(now_ms - s->seen_ms) / 1000.0;
	if (s->tokens > rate)
		s->tokens = rate;
	s->seen_ms = now_ms;
	ok = s->tokens >= 1.0;
	if (ok)
		s->tokens -= 1.0;
	else
		/* the whole seconds until one token is back: an empty bucket
		 * at one a second says 1, not 2 */
		*retry_s = (unsigned)ceil((1.0 - s->tokens) / rate);
	if (!ok && *retry_s == 0)
		*retry_s = 1;
	return ok;
}

/* Give back the token take just took (the other bucket refused), if the
 * key still has its slot. Under lim.lock. */
static void untake(const char *key, unsigned long rate_per_s, uint64_t now_ms)
{
	bool fresh;
	struct slot *s = slot_of(key, now_ms, &fresh);

	if (!fresh && (s->tokens += 1.0) > (double)rate_per_s)
		s->tokens = (double)rate_per_s;
	if (fresh)
		s->tokens = (double)rate_per_s;
}

static void make_key(char key[KEY_MAX], char ns, const char *id)
{
	key[0] = ns;
	key[1] = ':';
	strncpy(key + 2, id, KEY_MAX - 3);
	key[KEY_MAX - 1] = '\0';
}

enum limits_verdict limits_publish_from(const char *ip, const char *client,
					uint64_t now_ms, unsigned *retry_s)
{
	unsigned long ip_rate = lim.rates.publish_per_ip,
		      client_rate = lim.rates.publish_per_client;
	enum limits_verdict v = LIMITS_OK;
	char ikey[KEY_MAX], ckey[KEY_MAX];

	if (client == NULL || client[0] == '\0')
		client_rate = 0;
	if (ip_rate == 0 && client_rate == 0)
		return LIMITS_OK;
	make_key(ikey, 'i', ip);
	if (client_rate)
		make_key(ckey, 'c', client);
	pthread_mutex_lock(&lim.lock);
	if (ip_rate && !take(ikey, ip_rate, now_ms, retry_s)) {
		v = LIMITS_IP;
	} else if (client_rate && !take(ckey, client_rate, now_ms, retry_s)) {
		v = LIMITS_CLIENT;
		/* a refused publish spends nothing */
		if (ip_rate)
			untake(ikey, ip_rate, now_ms);
	}
	pthread_mutex_unlock(&lim.lock);
	return v;
}

bool limits_publish(const char *ip, uint64_t now_ms, unsigned *retry_s)
{
	return limits_publish_from(ip, NULL, now_ms, retry_s) == LIMITS_OK;
}

bool limits_new_channels_on(void)
{
	return lim.rates.new_channels_per_ip > 0;
}

void limits_new_channels_refund(const char *ip, size_t count,
				uint64_t now_ms)
{
	char key[KEY_MAX];

	if (lim.rates.new_channels_per_ip == 0 || count == 0)
		return;
	make_key(key, 'n', ip);
	pthread_mutex_lock(&lim.lock);
	while (count--)
		untake(key, lim.rates.new_channels_per_ip, now_ms);
	pthread_mutex_unlock(&lim.lock);
}

bool limits_new_channels(const char *ip, size_t count, uint64_t now_ms,
			 unsigned *retry_s)
{
	char key[KEY_MAX];
	bool ok;

	if (lim.rates.new_channels_per_ip == 0 || count == 0)
		return true;
	make_key(key, 'n', ip);
	pthread_mutex_lock(&lim.lock);
	ok = take(key, lim.rates.new_channels_per_ip, now_ms, retry_s);
	/* the rest on credit: a subscribe may name more new channels than
	 * the bucket holds, and would otherwise never be served */
	if (ok)
		slot_of(key, now_ms, &(bool){ false })->tokens -=
			(double)(count - 1);
	pthread_mutex_unlock(&lim.lock);
	return ok;
}
