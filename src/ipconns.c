/* Connections per client IP: a chained hash table of the IPs that hold
 * a connection, each with its exact count. An entry lives while its
 * count is above 0, so the table holds at most as many entries as the
 * gateway holds connections (--max-connections); unlike abuse.c's
 * buckets nothing is ever evicted, since forgetting a count would let
 * an IP past the limit or make a give-back miss. */
#include "ipconns.h"

#include "abuse.h"
#include "siphash.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

struct ipconn {
	struct ipconn *next; /* in its bucket */
	size_t count;        /* connections counted; > 0 */
	char ip[LIMITS_IP_MAX];
};

atomic_ullong ipconns_refused;

static struct {
	unsigned long max; /* set before any thread; 0: off */
	pthread_mutex_t lock; /* guards everything below */
	struct ipconn **buckets; /* BUCKETS, made on the first take */
	struct siphash_key key;
	size_t held, ips;
	struct ipconn **parked; /* by socket number, for MHD */
	size_t nparked;
} ic = { .lock = PTHREAD_MUTEX_INITIALIZER };

void ipconns_configure(unsigned long max)
{
	ic.max = max;
}

bool ipconns_on(void)
{
	return ic.max > 0;
}

struct ipconn *ipconns_take(const char *ip)
{
	struct ipconn **b, *c;

	if (ic.max == 0)
		return NULL;
	pthread_mutex_lock(&ic.lock);
	if (ic.buckets == NULL) {
		ic.buckets = xcalloc(BUCKETS, sizeof *ic.buckets);
		siphash_key_random(&ic.key);
	}
	b = ic.buckets + siphash13(&ic.key, ip, strlen(ip)) % BUCKETS;
	for (c = *b; c && strcmp(c->ip, ip) != 0; c = c->next)
		;
	if (c && c->count >= ic.max) {
		c = NULL;
		atomic_fetch_add_explicit(&ipconns_refused, 1,
					  memory_order_relaxed);
	} else {
		if (c == NULL) {
			c = xcalloc(1, sizeof *c);
			strcpy(c->ip, ip);
			c->next = *b;
			*b = c;
			ic.ips++;
		}
		c->count++;
		ic.held++;
	}
	pthread_mutex_unlock(&ic.lock);
	return c;
}

/* Under ic.lock. */
static void give_locked(struct ipconn *c)
{
	struct ipconn **p;

	ic.held--;
	if (--c->count > 0)
		return;
	p = ic.buckets + siphash13(&ic.key, c->ip, strlen(c->ip)) % BUCKETS;
	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	ic.ips--;
	free(c);
}

void ipconns_give(struct ipconn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&ic.lock);
	give_locked(c);
	pthread_mutex_unlock(&ic.lock);
}

void ipconns_park(int fd, struct ipconn *c)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&ic.lock);
	if ((size_t)fd >= ic.nparked) {
		size_t n = (size_t)fd + 1 > 2 * ic.nparked ? (size_t)fd + 1 :
							    2 * ic.nparked;

		ic.parked = xrealloc(ic.parked, n * sizeof *ic.parked);
		memset(ic.parked + ic.nparked, 0,
		       (n - ic.nparked) * sizeof *ic.parked);
		ic.nparked = n;
	}
	/* the number was closed and reused: its last socket never reached
	 * NOTIFY_STARTED */
	if (ic.parked[fd])
		give_locked(ic.parked[fd]);
	ic.parked[fd] = c;
	pthread_mutex_unlock(&ic.lock);
}

struct ipconn *ipconns_claim(int fd)
{
	struct ipconn *c = NULL;

	pthread_mutex_lock(&ic.lock);
	if (fd >= 0 && (size_t)fd < ic.nparked) {
		c = ic.parked[fd];
		ic.parked[fd] = NULL;
	}
	pthread_mutex_unlock(&ic.lock);
	return c;
}

size_t ipconns_held(void)
{
	size_t n;

	pthread_mutex_lock(&ic.lock);
	n = ic.held;
	pthread_mutex_unlock(&ic.lock);
	return n;
}

size_t ipconns_ips(void)
{
	size_t n;

	pthread_mutex_lock(&ic.lock);
	n = ic.ips;
	pthread_mutex_unlock(&ic.lock);
	return n;
}
