/* The bus: channels, their history rings and the subscribers' cursors.
 *
 * One mutex guards everything here. Critical sections are short (append a
 * pointer, walk a channel's taps, copy a few pointers out), the machine has
 * few cores, and one lock makes multi-channel subscriptions and global
 * eviction simple to get right. Sharding by channel is the next step if a
 * profile ever shows this lock.
 *
 * Messages are in two places, both guarded by the lock: their channel's
 * ring, and one bus-wide list in publish order. Because ids within a
 * channel follow publish order, the bus-wide oldest message is always the
 * oldest of its own channel, so evicting for the memory budget is popping
 * that list.
 *
 * The tick touches only what is due: subscribers' deadlines are in one
 * min-heap, channels with history in another keyed by the birth of their
 * oldest message, and channels that may have gone idle on a list of
 * their own. Nothing walks all the subscribers or all the channels. */
#include "bus.h"

#include "fmt.h"
#include "idem.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "payload.h"
#include "pollers.h"
#include "siphash.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_PREFIX "bus"
/* Older messages a tap asks Redis for at once: a tap holds them until
 * it has sent them, so this bounds what one subscriber keeps */
#define BUS_BACKFILL_MAX 256

struct channel {
	struct channel *hnext;
	uint64_t epoch; /* this incarnation of the name: ids restart with it */
	uint64_t last_id;
	struct message **ring; /* cap slots; len used from head (oldest) */
	size_t cap, len, head;
	uint64_t bytes; /* envelope bytes ever appended: offsets for lag */
	struct tap *taps;
	size_t subs_by[TRANSPORT_COUNT];
	size_t pollers_by[TRANSPORT_COUNT]; /* in bus.pollers, by transport */
	bool tomb; /* reclaimed: only its name, epoch and last id remain */
	bool synced; /* remote: epoch and ids are Redis' (bus_sync) */
	bool remote; /* fed by the Redis engine: it may be behind Redis */
	uint64_t asks; /* remote: head checks asked (tap.ask tickets) */
	uint64_t redis_last; /* remote: Redis' last id as last read */
	struct channel *tprev, *tnext; /* the tombs, oldest first */
	struct idem_entry *idem; /* its keys in bus.idem; kept by a tomb */
	struct channel *idle_next; /* on bus.idle: may be idle, tick looks */
	bool idle_queued;
	/* in bus.ages while it has history, under a key no later than its
	 * oldest message's born_ms */
	struct dheap_node age_node;
	size_t name_len;
	char name[];
};

/* A join or leave to publish once the lock is released. */
struct announcement {
	struct announcement *next;
	const char *event;
	enum transport_id transport;
	char client[CLIENT_ID_MAX + 1];
	char channel[];
};

struct bus {
	pthread_mutex_t lock;
	struct bus_config cfg;
	struct siphash_key hash_key; /* random, for the tables below */
	struct channel **buckets; /* live channels and tombs */
	size_t nbuckets, nchannels, ntombs;
	struct channel *tomb_oldest, *tomb_newest;
	struct message *oldest, *newest; /* publish order, all channels */
	size_t retained, retained_bytes;
	uint64_t seq;
	struct subscriber *subs; /* all attached */
	/* attached subscribers with a deadline and no timer_due; channels
	 * with history, by the birth of their oldest message: the tick pops
	 * what is due from each */
	struct dheap deadlines, ages;
	struct channel *idle; /* channels that may have become idle */
	uint64_t tick_visits;
	size_t nsubs, subs_by[TRANSPORT_COUNT];
	struct pollers *pollers; /* poll/longpoll clients seen lately */
	struct idem *idem;       /* idempotency keys stored lately */
	struct subscriber **ids; /* by id, chained through id_next */
	size_t nids;
	uint64_t next_id;
	bool shutting_down;
	/* the Redis engine, or NULL for the embedded bus (bus_set_remote) */
	const struct bus_remote_ops *remote;
	void *remote_cls;
};

static const struct pollers_ops poller_ops;
static void wake(struct subscriber *sub);

/* The hosts whose wake or cut this thread called under the lock and
 * that want a flush once it is dropped (sub_host.h): two hosts exist. */
#define OWED_HOSTS 4
static _Thread_local const struct sub_host *owed_hosts[OWED_HOSTS];
static _Thread_local size_t nowed_hosts;

static void owe_flush(const struct sub_host *h)
{
	if (h->flush == NULL)
		return;
	for (size_t i = 0; i < nowed_hosts; i++)
		if (owed_hosts[i] == h)
			return;
	if (nowed_hosts < OWED_HOSTS)
		owed_hosts[nowed_hosts++] = h;
	else
		h->flush(); /* under the lock, as before flush existed */
}

/* Every unlock: then the hosts' flushes, with no lock held. */
static void unlock(struct bus *bus)
{
	pthread_mutex_unlock(&bus->lock);
	while (nowed_hosts > 0)
		owed_hosts[--nowed_hosts]->flush();
}

uint64_t bus_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t bus_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keyed with a secret per process: channel names come from clients, and
 * with a public hash they could pick names that share one bucket, so
 * every lookup under the lock would walk all of them. */
static size_t hash_name(const struct bus *bus, const char *s, size_t len)
{
	return (size_t)siphash13(&bus->hash_key, s, len);
}

/* ---- channels ---- */

static struct channel **channel_slot(struct bus *bus, const char *name,
				     size_t len)
{
	struct channel **p =
		&bus->buckets[hash_name(bus, name, len) & (bus->nbuckets - 1)];

	while (*p &&
	       !((*p)->name_len == len && memcmp((*p)->name, name, len) == 0))
		p = &(*p)->hnext;
	return p;
}

static void rehash_channels(struct bus *bus)
{
	size_t n = bus->nbuckets * 2;
	struct channel **b = xcalloc(n, sizeof *b);

	for (size_t i = 0; i < bus->nbuckets; i++) {
		struct channel *ch = bus->buckets[i], *next;

		for (; ch; ch = next) {
			size_t k = hash_name(bus, ch->name, ch->name_len) &
				   (n - 1);

			next = ch->hnext;
			ch->hnext = b[k];
			b[k] = ch;
		}
	}
	free(bus->buckets);
	bus->buckets = b;
	bus->nbuckets = n;
}

static void tomb_unlink(struct bus *bus, struct channel *ch)
{
	if (ch->tprev)
		ch->tprev->tnext = ch->tnext;
	else
		bus->tomb_oldest = ch->tnext;
	if (ch->tnext)
		ch->tnext->tprev = ch->tprev;
	else
		bus->tomb_newest = ch->tprev;
	ch->tprev = ch->tnext = NULL;
	ch->tomb = false;
	bus->ntombs--;
}

/* ch may have just become idle (no history, subscribers or pollers):
 * the tick will look at it, and at no channel that did not. Every way
 * into idleness calls this: creation, the last message evicted, the last
 * tap unlinked, the last poller gone. Never a tomb: trim_tombs may free
 * one, and the list would keep its address. */
static void maybe_idle(struct bus *bus, struct channel *ch)
{
	if (ch->idle_queued || ch->tomb)
		return;
	ch->idle_queued = true;
	ch->idle_next = bus->idle;
	bus->idle = ch;
}

/* The live channel of that name, or NULL: tombs do not count. */
static struct channel *channel_find(struct bus *bus, const char *name,
				    size_t len)
{
	struct channel *ch = *channel_slot(bus, name, len);

	return ch && !ch->tomb ? ch : NULL;
}

size_t bus_channels_missing(struct bus *bus, const struct channel_list *chs)
{
	size_t n = 0;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < chs->count; i++)
		if (channel_find(bus, chs->name[i], chs->len[i]) == NULL)
			n++;
	unlock(bus);
	return n;
}

/* The channel, created if missing; NULL when over the channel limit. A
 * tomb of that name comes back to life with its epoch and last id, so
 * the cursors handed out before it was reclaimed stay exact. */
static struct channel *channel_get(struct bus *bus, const char *name,
				   size_t len)
{
	struct channel **slot = channel_slot(bus, name, len);
	struct channel *ch = *slot;

	if (ch && !ch->tomb)
		return ch;
	if (bus->nchannels >= bus->cfg.max_channels)
		return NULL;
	bus->nchannels++;
	if (ch) {
		tomb_unlink(bus, ch);
		maybe_idle(bus, ch);
		goto out;
	}
	ch = xcalloc(1, sizeof *ch + len + 1);
	/* a remote channel has no epoch until Redis gives it one */
	ch->epoch = bus->remote ? 0 : cursor_epoch_new();
	ch->synced = bus->remote == NULL;
	ch->remote = bus->remote != NULL;
	memcpy(ch->name, name, len);
	ch->name_len = len;
	*slot = ch;
	maybe_idle(bus, ch); /* a refused attach may leave it unused */
	if (bus->nchannels + bus->ntombs > bus->nbuckets)
		rehash_channels(bus);
out:
	if (bus->remote)
		bus->remote->activate(bus->remote_cls, ch->name, ch->name_len);
	return ch;
}

static uint64_t oldest_id(const struct channel *ch)
{
	return ch->last_id - ch->len + 1;
}

static struct message *ring_at(const struct channel *ch, uint64_t id)
{
	return ch->ring[(ch->head + (id - oldest_id(ch))) % ch->cap];
}

static void ring_grow(struct channel *ch, size_t limit)
{
	size_t cap = ch->cap ? ch->cap * 2 : 8;
	struct message **ring;

	if (cap > limit)
		cap = limit;
	ring = xcalloc(cap, sizeof *ring);
	for (size_t i = 0; i < ch->len; i++)
		ring[i] = ch->ring[(ch->head + i) % ch->cap];
	free(ch->ring);
	ch->ring = ring;
	ch->cap = cap;
	ch->head = 0;
}

static void evict_oldest(struct bus *bus, struct channel *ch)
{
	struct message *m = ch->ring[ch->head];

	ch->ring[ch->head] = NULL;
	ch->head = (ch->head + 1) % ch->cap;
	ch->len--;
	if (m->older)
		m->older->newer = m->newer;
	else
		bus->oldest = m->newer;
	if (m->newer)
		m->newer->older = m->older;
	else
		bus->newest = m->older;
	bus->retained--;
	bus->retained_bytes -= m->charged;
	m->charged = 0;
	m->ch = NULL;
	metrics_add(&metrics.evicted, 1);
	message_unref(m);
	if (ch->len == 0)
		maybe_idle(bus, ch);
}

/* Evict the oldest messages anywhere until history fits its budget, but
 * always keep the newest, however large. */
static void evict_over_budget(struct bus *bus)
{
	while (bus->retained_bytes > bus->cfg.history_bytes &&
	       bus->oldest != bus->newest)
		evict_oldest(bus, bus->oldest->ch);
}

/* Append m as message id (last_id + 1: ids in a ring are consecutive). */
static void append_id(struct bus *bus, struct channel *ch, struct message *m,
		      uint64_t id)
{
	if (ch->len == bus->cfg.history_size)
		evict_oldest(bus, ch);
	if (ch->len == ch->cap)
		ring_grow(ch, bus->cfg.history_size);
	message_seal(m, ch->epoch, id);
	ch->last_id = id;
	m->seq = ++bus->seq;
	ch->ring[(ch->head + ch->len) % ch->cap] = m;
	ch->len++;
	ch->bytes += m->json_len;
	m->end_offset = ch->bytes;
	m->ch = ch;
	m->older = bus->newest;
	m->newer = NULL;
	if (bus->newest)
		bus->newest->newer = m;
	else
		bus->oldest = m;
	bus->newest = m;
	bus->retained++;
	if (!dheap_has(&ch->age_node))
		dheap_push(&bus->ages, &ch->age_node, m->born_ms);
	else if (m->born_ms < ch->age_node.key)
		dheap_rekey(&bus->ages, &ch->age_node, m->born_ms);
	/* the whole allocation: a binary message also keeps its raw bytes
	 * and a second envelope: 1.75 times its envelope when large */
	m->charged = m->size;
	bus->retained_bytes += m->charged;
	evict_over_budget(bus);
}

static void append(struct bus *bus, struct channel *ch, struct message *m)
{
	append_id(bus, ch, m, ch->last_id + 1);
}

/* An idle channel (no history, no subscribers, no pollers) gives up its
 * ring but stays as a tomb: its epoch and last id. Without it, the next
 * use would start a new epoch at id 1, and every cursor handed out
 * before would read as a gap: a poller without a client id on a quiet
 * channel would be told of one on every poll. Tombs are bounded by
 * --max-channels, oldest first; past that a reused name gets a new
 * epoch, and old cursors the gap they then deserve. */
static void channel_reclaim(struct bus *bus, struct channel *ch)
{
	dheap_remove(&bus->ages, &ch->age_node); /* a key left from before */
	if (bus->remote) {
		/* nobody here reads it: Redis may move on without us */
		ch->synced = false;
		bus->remote->deactivate(bus->remote_cls, ch->name,
					ch->name_len);
	}
	free(ch->ring);
	ch->ring = NULL;
	ch->cap = ch->head = 0;
	ch->tomb = true;
	ch->tnext = NULL;
	ch->tprev = bus->tomb_newest;
	if (bus->tomb_newest)
		bus->tomb_newest->tnext = ch;
	else
		bus->tomb_oldest = ch;
	bus->tomb_newest = ch;
	bus->ntombs++;
	bus->nchannels--;
}

/* Forget the oldest tombs past the limit. Not from channel_reclaim: the
 * tick reclaims while it walks its list of maybe idle channels, and
 * freeing there would be freeing under its feet. */
static void trim_tombs(struct bus *bus)
{
	while (bus->ntombs > bus->cfg.max_channels) {
		struct channel *old = bus->tomb_oldest;

		tomb_unlink(bus, old);
		*channel_slot(bus, old->name, old->name_len) = old->hnext;
		/* a new channel may get this address: its keys go too */
		idem_forget_owner(bus->idem, &old->idem);
		free(old);
	}
}

/* ---- subscriber ids ---- */

static struct subscriber **id_slot(struct bus *bus, uint64_t id)
{
	struct subscriber **p = &bus->ids[id & (bus->nids - 1)];

	while (*p && (*p)->id != id)
		p = &(*p)->id_next;
	return p;
}

/* Give sub its id and file it. Call it before sub is linked into
 * bus->subs: the rehash files every linked subscriber under its id, and
 * sub, still carrying a stale id, would be filed twice (once in bucket 0,
 * where it could even point at itself) and outlive its detach there. */
static void id_insert(struct bus *bus, struct subscriber *sub)
{
	if (bus->nsubs + 1 >= bus->nids * 2) {
		size_t n = bus->nids * 2;
		struct subscriber **ids = xcalloc(n, sizeof *ids);

		for (struct subscriber *s = bus->subs; s; s = s->next) {
			s->id_next = ids[s->id & (n - 1)];
			ids[s->id & (n - 1)] = s;
		}
		free(bus->ids);
		bus->ids = ids;
		bus->nids = n;
	}
	sub->id = ++bus->next_id;
	sub->id_next = bus->ids[sub->id & (bus->nids - 1)];
	bus->ids[sub->id & (bus->nids - 1)] = sub;
}

/* ---- the deadline heap ----
 *
 * A subscriber that is attached, has a deadline and no timer_due yet is
 * in bus.deadlines, under a key no later than its deadline. A deadline
 * moved later (every pull that sends something moves a heartbeat) leaves
 * the key as it is: the tick that finds the key due but the deadline not
 * files it again under the deadline. So a pull costs at most one sift,
 * and usually none; a tick costs the keys that are due. */

static struct subscriber *sub_of(struct dheap_node *node)
{
	return (struct subscriber *)((char *)node - offsetof(struct subscriber,
							     deadline_node));
}

/* Under the lock, after sub's deadline or timer_due changed. */
static void deadline_file(struct bus *bus, struct subscriber *sub)
{
	struct dheap_node *node = &sub->deadline_node;

	if (!sub->attached || sub->deadline_ms == 0 || sub->timer_due)
		return; /* a stale entry is dropped by the tick */
	if (!dheap_has(node))
		dheap_push(&bus->deadlines, node, sub->deadline_ms);
	else if (sub->deadline_ms < node->key)
		dheap_rekey(&bus->deadlines, node, sub->deadline_ms);
}

/* Under the lock: fire the deadlines that are due, looking only at the
 * subscribers whose key is. */
static void fire_deadlines(struct bus *bus, uint64_t now)
{
	struct dheap_node *node;

	while ((node = dheap_min(&bus->deadlines)) && node->key <= now) {
		struct subscriber *s = sub_of(node);

		bus->tick_visits++;
		if (s->deadline_ms == 0 || s->timer_due) {
			dheap_remove(&bus->deadlines, node);
		} else if (s->deadline_ms > now) {
			dheap_rekey(&bus->deadlines, node, s->deadline_ms);
		} else {
			dheap_remove(&bus->deadlines, node);
			s->timer_due = true;
			wake(s);
		}
	}
}

/* ---- life cycle ---- */

void bus_set_limits(struct bus *bus, const struct bus_config *config)
{
	pthread_mutex_lock(&bus->lock);
	bus->cfg.history_age_ms = config->history_age_ms;
	bus->cfg.lag_limit = config->lag_limit;
	bus->cfg.presence_window_ms = config->presence_window_ms;
	bus->cfg.idem_window_ms = config->idem_window_ms;
	unlock(bus);
}

struct bus *bus_new(const struct bus_config *config)
{
	struct bus *bus = xcalloc(1, sizeof *bus);

	pthread_mutex_init(&bus->lock, NULL);
	bus->cfg = *config;
	if (bus->cfg.history_size == 0)
		bus->cfg.history_size = 1;
	siphash_key_random(&bus->hash_key);
	bus->nbuckets = 1024;
	bus->buckets = xcalloc(bus->nbuckets, sizeof *bus->buckets);
	bus->nids = 1024;
	bus->ids = xcalloc(bus->nids, sizeof *bus->ids);
	bus->pollers = pollers_new(bus->cfg.max_pollers, &bus->hash_key,
				   &poller_ops);
	bus->idem = idem_new(bus->cfg.max_idem_keys, &bus->hash_key);
	return bus;
}

void bus_free(struct bus *bus)
{
	for (size_t i = 0; i < bus->nbuckets; i++) {
		struct channel *ch = bus->buckets[i], *next;

		for (; ch; ch = next) {
			next = ch->hnext;
			while (ch->len)
				evict_oldest(bus, ch);
			free(ch->ring);
			free(ch);
		}
	}
	free(bus->buckets);
	free(bus->ids);
	dheap_free(&bus->deadlines);
	dheap_free(&bus->ages);
	pollers_free(bus->pollers);
	idem_free(bus->idem);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

/* Under the lock: let a parked subscriber run again. */
static void wake(struct subscriber *sub)
{
	if (sub->parked) {
		sub->parked = false;
		sub->host->wake(sub);
		owe_flush(sub->host);
	}
}

static void end_subscriber(struct subscriber *sub, enum sub_end why)
{
	if (sub->end != SUB_END_NONE)
		return;
	sub->end = why;
	if (sub->parked)
		wake(sub);
	else if (why == SUB_END_SLOW) {
		sub->host->cut(sub);
		owe_flush(sub->host);
	}
}

bool bus_shutting_down(struct bus *bus)
{
	bool r;

	pthread_mutex_lock(&bus->lock);
	r = bus->shutting_down;
	unlock(bus);
	return r;
}

void bus_shutdown(struct bus *bus)
{
	pthread_mutex_lock(&bus->lock);
	bus->shutting_down = true;
	for (struct subscriber *s = bus->subs; s; s = s->next)
		end_subscriber(s, SUB_END_SHUTDOWN);
	unlock(bus);
}

/* ---- publish ---- */

static bool excluded(const struct message *m, const struct subscriber *sub)
{
	return m->exclude_sender && strcmp(m->from, sub->client) == 0;
}

static void notify_taps(struct bus *bus, struct channel *ch)
{
	for (struct tap *t = ch->taps; t; t = t->next) {
		struct subscriber *sub = t->sub;

		if (sub->end != SUB_END_NONE)
			continue;
		/* excluded subscribers are woken too: the skip moves their
		 * cursor on the wire (an id-only SSE block, a cursor frame) */
		if (sub->parked) {
			wake(sub);
		} else if (ch->bytes - t->lag_base > bus->cfg.lag_limit) {
			log_debug(
				"subscriber %llu (%s) cut: %llu bytes behind",
				(unsigned long long)sub->id,
				sub->transport->name,
				(unsigned long long)(ch->bytes - t->lag_base));
			metrics_add(&metrics.slow_consumers, 1);
			end_subscriber(sub, SUB_END_SLOW);
		}
	}
}

/* Under the lock: the channel to publish to or read, created if need be,
 * or why there is none. */
static enum bus_error usable_channel(struct bus *bus, const char *name,
				     size_t len, struct channel **out)
{
	if (bus->shutting_down)
		return BUS_SHUTTING_DOWN;
	*out = channel_get(bus, name, len);
	return *out ? BUS_OK : BUS_TOO_MANY_CHANNELS;
}

/* What a retry must repeat to be the same message: the data as stored
 * (so the content type counts where it changes the data), the event,
 * binary and exclude_sender. Not the time stamp or the sender's id. Keyed
 * with the bus's secret, so nobody can make two bodies collide on
 * purpose. Outside the lock: the body may be long. */
static uint64_t message_hash(const struct bus *bus, const struct message *m)
{
	unsigned char k[8 + 2 + EVENT_NAME_MAX];
	uint64_t h = siphash13(&bus->hash_key, message_json(m) + m->data_off,
			       m->data_len);
	size_t n = strlen(m->event);

	memcpy(k, &h, 8);
	k[8] = m->binary;
	k[9] = m->exclude_sender;
	memcpy(k + 10, m->event, n);
	return siphash13(&bus->hash_key, k, 10 + n);
}

/* Under the lock: the key's entry on the channel of that name (live or a
 * tomb: keys outlive a reclaim) if it is within the window. */
static const struct idem_entry *idem_lookup(struct bus *bus,
					    const char *channel, size_t len,
					    const char *key, size_t key_len,
					    uint64_t now)
{
	struct channel *ch = *channel_slot(bus, channel, len);
	uint64_t window = bus->cfg.idem_window_ms;

	if (ch == NULL)
		return NULL;
	return idem_find(bus->idem, ch, key, key_len,
			 now > window ? now - window : 0);
}

enum bus_error bus_publish_keyed(struct bus *bus, const char *channel,
				 size_t len, struct message *m,
				 const char *key, size_t key_len,
				 struct cursor *at, bool *replayed)
{
	uint64_t hash = key ? message_hash(bus, m) : 0, now = bus_now_ms();
	const struct idem_entry *e = NULL;
	struct channel *ch;
	enum bus_error err;

	*replayed = false;
	pthread_mutex_lock(&bus->lock);
	if (bus->cfg.idem_window_ms == 0)
		key = NULL; /* validated by the caller, but not remembered */
	if (key && !bus->shutting_down)
		e = idem_lookup(bus, channel, len, key, key_len, now);
	if (e && e->hash != hash) {
		err = BUS_IDEM_CONFLICT;
		goto out;
	}
	if (e) {
		/* answered from the entry: a tomb is not brought back */
		at->epoch = e->epoch;
		at->id = e->id;
		*replayed = true;
		err = BUS_OK;
		metrics_add(&metrics.idempotent_replays, 1);
		goto out;
	}
	err = usable_channel(bus, channel, len, &ch);
	if (err != BUS_OK)
		goto out;
	append(bus, ch, m);
	at->epoch = ch->epoch;
	at->id = m->id;
	m = NULL;
	if (key)
		idem_add(bus->idem, ch, &ch->idem, key, key_len, hash,
			 at->epoch, at->id, now);
	notify_taps(bus, ch);
	metrics_add(&metrics.published, 1);
out:
	unlock(bus);
	message_unref(m);
	return err;
}

enum bus_error bus_publish(struct bus *bus, const char *channel, size_t len,
			   struct message *m, struct cursor *at)
{
	bool replayed;

	return bus_publish_keyed(bus, channel, len, m, NULL, 0, at, &replayed);
}

/* ---- subscribe ---- */

static struct cursor start_cursor(const struct channel *ch,
				  const struct cursor *since, size_t i)
{
	struct cursor c = { ch->epoch, ch->last_id };

	if (since) {
		c.id = since[i].id;
		if (since[i].epoch)
			c.epoch = since[i].epoch;
	}
	return c;
}

/* Under the lock: remember a join or leave to publish after unlocking
 * (publishing takes the lock). */
/* Under the lock: the channel's counts of subscribers changed; a remote
 * node's engine writes them to Redis, for info on every node. */
static void counts_changed(struct bus *bus, const struct channel *ch)
{
	if (bus->remote)
		bus->remote->counts(bus->remote_cls, ch->name, ch->name_len);
}

static void queue_announcement(struct announcement **list,
			       const struct channel *ch, const char *event,
			       const char *client, enum transport_id t)
{
	struct announcement *a = xcalloc(1, sizeof *a + ch->name_len + 1);

	memcpy(a->channel, ch->name, ch->name_len);
	a->event = event;
	a->transport = t;
	snprintf(a->client, sizeof a->client, "%s", client);
	a->next = *list;
	*list = a;
}

/* Without the lock: publish the queued joins and leaves, as ordinary
 * messages (ids, history, resume), and free them. */
static void announce(struct bus *bus, struct announcement *list)
{
	while (list) {
		struct announcement *a = list;
		char json[CLIENT_ID_MAX + 64];
		struct payload data = { .json = json };
		struct message_spec spec = { .channel = a->channel,
					     .event = a->event,
					     .data = &data };
		struct cursor at;

		data.len = fmt_at(json, sizeof json, 0,
				  "{\"client\":\"%s\",\"transport\":\"%s\"}",
				  a->client,
				  transport_by_id(a->transport)->name);
		if (bus->remote)
			bus->remote->publish(bus->remote_cls, a->channel,
					     strlen(a->channel),
					     message_new(&spec, bus_wall_ms(),
							 bus_now_ms()));
		else
			bus_publish(bus, a->channel, strlen(a->channel),
				    message_new(&spec, bus_wall_ms(),
						bus_now_ms()),
				    &at);
		list = a->next;
		free(a);
	}
}

/* Under the lock: a new tap of sub on ch, starting at cursor. */
static void link_tap(struct subscriber *sub, struct channel *ch,
		     struct cursor cursor, bool tail, bool announce,
		     struct announcement **joins)
{
	struct tap *t = xcalloc(1, sizeof *t);

	if (announce)
		queue_announcement(joins, ch, "join", sub->client,
				   sub->transport->id);
	t->announce = announce;
	t->ch = ch;
	t->sub = sub;
	t->cursor = cursor.id;
	t->stale = cursor.epoch != ch->epoch;
	t->want_epoch = cursor.epoch;
	t->tail = tail;
	t->lag_base = ch->bytes;
	t->next = ch->taps;
	if (t->next)
		t->next->prev = t;
	ch->taps = t;
	ch->subs_by[sub->transport->id]++;
	if (sub->ntaps == sub->taps_cap) {
		sub->taps_cap = sub->taps_cap ? sub->taps_cap * 2 : 1;
		sub->taps = xrealloc(sub->taps,
				     sub->taps_cap * sizeof *sub->taps);
	}
	sub->taps[sub->ntaps++] = t;
}

/* Under the lock: forget what a tap asked of Redis and what it
 * answered (a restarted ring, a tap leaving). */
static void drop_backfill(struct tap *t)
{
	for (size_t i = t->back_next; i < t->nback; i++)
		message_unref(t->back[i]);
	free(t->back);
	t->back = NULL;
	t->nback = t->back_next = 0;
	t->filling = t->nofill = t->back_gap = t->past = false;
	t->ask = 0;
}

static void unlink_tap(struct bus *bus, struct subscriber *sub, struct tap *t,
		       struct announcement **leaves)
{
	if (t->announce)
		queue_announcement(leaves, t->ch, "leave", sub->client,
				   sub->transport->id);
	if (t->prev)
		t->prev->next = t->next;
	else
		t->ch->taps = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->ch->subs_by[sub->transport->id]--;
	counts_changed(bus, t->ch);
	if (t->ch->taps == NULL)
		maybe_idle(bus, t->ch);
	drop_backfill(t);
	free(t);
}

enum bus_error bus_attach(struct bus *bus, struct subscriber *sub,
			  const struct channel_list *channels,
			  const struct cursor *since, struct cursor *start)
{
	struct channel *chs[CHANNELS_PER_SUBSCRIPTION_MAX];
	struct announcement *joins = NULL;
	enum bus_error err = BUS_OK;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < channels->count && err == BUS_OK; i++)
		err = usable_channel(bus, channels->name[i], channels->len[i],
				     &chs[i]);
	if (err == BUS_OK && bus->shutting_down)
		err = BUS_SHUTTING_DOWN; /* also with no channel (/ws) */
	if (err != BUS_OK)
		goto out;
	for (size_t i = 0; i < channels->count; i++) {
		start[i] = start_cursor(chs[i], since, i);
		link_tap(sub, chs[i], start[i], since == NULL, sub->announce,
			 &joins);
		counts_changed(bus, chs[i]);
	}
	id_insert(bus, sub);
	sub->next = bus->subs;
	if (sub->next)
		sub->next->prev = sub;
	sub->prev = NULL;
	bus->subs = sub;
	bus->nsubs++;
	bus->subs_by[sub->transport->id]++;
	sub->attached = true;
	sub->deadline_node.at = 0;
	deadline_file(bus, sub);
out:
	/* channels created for a refused attach are reclaimed by the tick */
	unlock(bus);
	announce(bus, joins);
	return err;
}

enum bus_error bus_tap_add(struct bus *bus, struct subscriber *sub,
			   const char *channel, size_t len,
			   const struct cursor *since, bool announce_it,
			   struct cursor *start)
{
	struct announcement *joins = NULL;
	struct channel *ch;
	enum bus_error err;

	pthread_mutex_lock(&bus->lock);
	err = usable_channel(bus, channel, len, &ch);
	if (err != BUS_OK)
		goto out;
	*start = start_cursor(ch, since, 0);
	link_tap(sub, ch, *start, since == NULL, announce_it, &joins);
	counts_changed(bus, ch);
out:
	unlock(bus);
	announce(bus, joins);
	return err;
}

void bus_tap_remove(struct bus *bus, struct subscriber *sub, size_t i)
{
	struct announcement *leaves = NULL;

	pthread_mutex_lock(&bus->lock);
	unlink_tap(bus, sub, sub->taps[i], &leaves);
	memmove(&sub->taps[i], &sub->taps[i + 1],
		(sub->ntaps - i - 1) * sizeof *sub->taps);
	sub->ntaps--;
	unlock(bus);
	announce(bus, leaves);
}

void bus_detach(struct bus *bus, struct subscriber *sub)
{
	struct announcement *leaves = NULL;

	if (!sub->attached)
		return;
	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < sub->ntaps; i++)
		unlink_tap(bus, sub, sub->taps[i], &leaves);
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		bus->subs = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	bus->nsubs--;
	bus->subs_by[sub->transport->id]--;
	*id_slot(bus, sub->id) = sub->id_next;
	dheap_remove(&bus->deadlines, &sub->deadline_node);
	sub->attached = false;
	unlock(bus);
	announce(bus, leaves);
	free(sub->taps);
	sub->taps = NULL;
	sub->ntaps = sub->taps_cap = 0;
}

/* The tap's cursor is of another incarnation or outside what the channel
 * keeps: what it reads next is a gap. */
static bool gap_pending(const struct tap *t)
{
	if (!t->ch->synced)
		return false; /* remote, not synced yet: nothing is known */
	if (t->stale || t->back_gap)
		return true;
	if (t->back_next < t->nback || t->filling)
		return false; /* older messages from Redis come first */
	/* a cursor past a remote ring's end, in its epoch, may have been
	 * handed out by a node ahead of this one: a gap only once Redis'
	 * head is known to be before it; locally it is a gap at once */
	if (t->cursor > t->ch->last_id)
		return !t->ch->remote || t->past;
	/* before a remote ring: Redis may still have them (backfill) */
	return t->cursor + 1 < oldest_id(t->ch) &&
	       (!t->ch->remote || t->nofill);
}

/* Under the lock: the tap waits on Redis (its channel's sync, a head
 * check, older messages); what it has in hand is not all there is. */
static bool tap_waits(const struct tap *t)
{
	if (!t->ch->synced || t->filling)
		return true;
	return t->ch->remote && !t->stale && !t->past &&
	       t->cursor > t->ch->last_id;
}

/* Under the lock: a remote tap whose cursor is outside the ring asks
 * the engine once: past it, for Redis' head (is it a cursor Redis
 * gave?); before it, for the messages between (Redis keeps longer than
 * a ring: by count alone, and a ring also evicts by age and memory). */
static void ask_redis(struct bus *bus, struct subscriber *sub, struct tap *t)
{
	struct channel *ch = t->ch;

	if (!ch->remote || !ch->synced || t->stale || t->back_gap ||
	    t->filling || t->back_next < t->nback)
		return;
	if (t->cursor > ch->last_id && t->cursor <= ch->redis_last)
		return; /* Redis had it: the ring is getting there */
	if (t->cursor > ch->last_id && t->ask == 0 && !t->past) {
		t->ask = ++ch->asks;
		bus->remote->check(bus->remote_cls, ch->name, ch->name_len,
				   t->ask);
	} else if (t->cursor + 1 < oldest_id(ch) && !t->nofill) {
		uint64_t count = oldest_id(ch) - 1 - t->cursor;

		if (count > BUS_BACKFILL_MAX)
			count = BUS_BACKFILL_MAX;
		t->filling = true;
		bus->remote->backfill(bus->remote_cls, ch->name, ch->name_len,
				      sub->id, t->cursor, count);
	}
}

/* A gap on tap i, if one is pending. */
static bool take_gap(struct subscriber *sub, unsigned i, struct bus_item *it)
{
	struct tap *t = sub->taps[i];
	uint64_t oldest = oldest_id(t->ch);

	if (!gap_pending(t))
		return false;
	it->msg = NULL;
	it->skip = false;
	it->tap = i;
	it->epoch = t->ch->epoch;
	it->gap_last = t->cursor;
	if (t->back_gap && !t->stale) {
		/* Redis lacks the first ones; what it has follows */
		it->cursor = t->cursor = t->back_gap_to;
		t->back_gap = false;
		metrics_add(&metrics.gaps, 1);
		return true;
	}
	it->cursor = t->cursor = oldest - 1;
	t->stale = t->past = t->nofill = false;
	t->ask = 0;
	if (t->back_gap || t->nback) /* stale: Redis' answer is moot */
		drop_backfill(t);
	metrics_add(&metrics.gaps, 1);
	return true;
}

/* The tap whose next message was published first; -1 if none pending.
 * A tap with a gap pending comes first: its cursor points at no message
 * (fill takes gaps before asking, but may stop at max_items between two
 * of them). */
static int next_tap(const struct subscriber *sub)
{
	uint64_t best_seq = UINT64_MAX;
	int best = -1;

	for (size_t i = 0; i < sub->ntaps; i++) {
		const struct tap *t = sub->taps[i];
		const struct message *m;

		if (gap_pending(t) || t->back_next < t->nback)
			return (int)i; /* a gap, or older messages: first */
		if (!t->ch->synced || t->cursor >= t->ch->last_id ||
		    t->cursor + 1 < oldest_id(t->ch))
			continue; /* waiting on Redis */
		m = ring_at(t->ch, t->cursor + 1);
		if (m->seq < best_seq) {
			best_seq = m->seq;
			best = (int)i;
		}
	}
	return best;
}

static size_t fill(struct bus *bus, struct subscriber *sub,
		   struct bus_item *items, size_t max_items, size_t max_bytes,
		   bool *more)
{
	size_t n = 0, bytes = 0;

	while (n < max_items) {
		bool gap = false;
		struct message *m;
		struct tap *t;
		int i;

		if (bus->remote)
			for (unsigned k = 0; k < sub->ntaps; k++)
				ask_redis(bus, sub, sub->taps[k]);
		for (unsigned k = 0; k < sub->ntaps && !gap; k++)
			gap = take_gap(sub, k, &items[n]);
		if (gap) {
			n++;
			continue;
		}
		i = next_tap(sub);
		if (i < 0)
			return n;
		t = sub->taps[i];
		if (t->back_next < t->nback) {
			m = t->back[t->back_next];
			if (n > 0 && bytes + m->json_len > max_bytes)
				break;
			/* the tap's reference goes to the item */
			t->back[t->back_next++] = NULL;
			t->cursor = m->id;
			items[n].skip = excluded(m, sub);
			items[n].msg = items[n].skip ? NULL : m;
			if (items[n].skip)
				message_unref(m);
			if (t->back_next == t->nback)
				drop_backfill(t); /* the ring, or more, next */
			items[n].tap = (unsigned)i;
			items[n].epoch = t->ch->epoch;
			items[n].cursor = t->cursor;
			n++;
			bytes += m->json_len;
			continue;
		}
		m = ring_at(t->ch, t->cursor + 1);
		if (n > 0 && bytes + m->json_len > max_bytes)
			break;
		t->cursor = m->id;
		if (t->lag_base < m->end_offset)
			t->lag_base = m->end_offset;
		/* an excluded message still moves the cursor the client keeps,
		 * or it would read as a gap once the message leaves history */
		items[n].skip = excluded(m, sub);
		items[n].msg = items[n].skip ? NULL : m;
		if (items[n].msg)
			message_ref(m);
		items[n].tap = (unsigned)i;
		items[n].epoch = t->ch->epoch;
		items[n].cursor = m->id;
		n++;
		bytes += m->json_len;
	}
	*more = next_tap(sub) >= 0;
	return n;
}

void bus_pull(struct bus *bus, struct subscriber *sub, struct bus_item *items,
	      size_t max_items, size_t max_bytes, bool may_park,
	      struct bus_pull *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&bus->lock);
	out->end = sub->end;
	sub->parked = false; /* it is asking, so it is not parked */
	if (out->end != SUB_END_NONE)
		goto out;
	out->count = fill(bus, sub, items, max_items, max_bytes, &out->more);
	out->timer = sub->timer_due;
	sub->timer_due = false;
	for (size_t i = 0; i < sub->ntaps && !out->waiting; i++)
		out->waiting = tap_waits(sub->taps[i]);
	if ((out->count > 0 || out->timer) && sub->period_ms)
		sub->deadline_ms = bus_now_ms() + sub->period_ms;
	deadline_file(bus, sub);
	if (out->count == 0 && !out->timer &&
	    (may_park || (sub->wait_redis && out->waiting))) {
		sub->parked = true;
		out->parked = true;
		sub->host->park(sub);
	}
out:
	unlock(bus);
	if (out->count)
		metrics_add(&metrics.delivered[sub->transport->id], out->count);
}

bool bus_start(struct bus *bus, struct subscriber *sub, size_t from,
	       size_t n, struct cursor *out)
{
	bool ready = true;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = from; i < from + n && i < sub->ntaps; i++)
		ready = ready && sub->taps[i]->ch->synced;
	for (size_t i = from; ready && i < from + n && i < sub->ntaps; i++) {
		const struct tap *t = sub->taps[i];

		/* a stale cursor is echoed as the client sent it, so a
		 * reconnect before its gap is read is told again */
		out[i - from].epoch = t->stale && t->want_epoch ?
					      t->want_epoch :
					      t->ch->epoch;
		out[i - from].id = t->cursor;
	}
	unlock(bus);
	return ready;
}

bool bus_welcome(struct bus *bus, struct subscriber *sub, size_t from,
		 size_t n, struct cursor *inout)
{
	bool ready = true;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = from; i < from + n && i < sub->ntaps; i++)
		ready = ready && sub->taps[i]->ch->synced;
	/* only a remote channel attached before its sync has epoch 0 (the
	 * embedded bus gives every channel one at creation), so the
	 * embedded bus's welcome is what bus_attach gave, untouched */
	for (size_t i = from; ready && i < from + n && i < sub->ntaps; i++) {
		const struct tap *t = sub->taps[i];

		if (inout[i - from].epoch != 0)
			continue;
		inout[i - from].epoch = t->stale && t->want_epoch ?
						t->want_epoch :
						t->ch->epoch;
		inout[i - from].id = t->cursor;
	}
	unlock(bus);
	return ready;
}

void bus_wait_sync(struct bus *bus, struct subscriber *sub,
		   struct bus_pull *out)
{
	bool was = sub->wait_redis;

	/* parked under the lock only while a channel still waits, so a
	 * sync that landed after bus_welcome said no is not missed */
	sub->wait_redis = true;
	bus_pull(bus, sub, NULL, 0, 0, false, out);
	sub->wait_redis = was;
}

enum bus_start_wait bus_start_synced(struct bus *bus, struct subscriber *sub,
				     size_t n, struct cursor *out)
{
	struct bus_pull got;

	if (bus_start(bus, sub, 0, n, out))
		return BUS_START_GO;
	bus_wait_sync(bus, sub, &got);
	if (got.end == SUB_END_DEAD || got.end == SUB_END_SLOW)
		return BUS_START_GONE;
	if (got.parked)
		return BUS_START_PARKED;
	if (got.end == SUB_END_NONE && !bus_start(bus, sub, 0, n, out))
		return BUS_START_LATE;
	return BUS_START_GO;
}

void bus_items_release(struct bus_item *items, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		message_unref(items[i].msg);
		items[i].msg = NULL;
	}
}

/* The copy is built lazily, outside the lock, from whichever thread polls
 * the message first, and then charged here, under the lock, if the
 * message is still in history; the budget is enforced again on the spot.
 * So retained_bytes is what history holds, and the budget holds between
 * publishes too. Building it at publish time, or reserving room for it in
 * the message, would double the memory of messages that nobody polls (SSE
 * and WebSocket never use it). A message already evicted is held only by
 * replies in flight: its copy goes with it and is not charged. Between the
 * copy's creation and its charge, history holds up to one uncounted copy
 * per polling thread. */
const char *bus_single_reply(struct bus *bus, struct message *m, size_t *len)
{
	size_t built;
	const char *text = message_single_reply(m, len, &built);

	if (built == 0)
		return text;
	pthread_mutex_lock(&bus->lock);
	if (m->ch) {
		m->charged += built;
		bus->retained_bytes += built;
		evict_over_budget(bus);
	}
	unlock(bus);
	return text;
}

void bus_set_deadline(struct bus *bus, struct subscriber *sub,
		      uint64_t deadline_ms)
{
	pthread_mutex_lock(&bus->lock);
	sub->deadline_ms = deadline_ms;
	deadline_file(bus, sub);
	unlock(bus);
}

bool bus_with_subscriber(struct bus *bus, uint64_t sub_id,
			 void (*fn)(struct subscriber *sub, void *cls),
			 void *cls)
{
	struct subscriber *sub;

	pthread_mutex_lock(&bus->lock);
	sub = *id_slot(bus, sub_id);
	if (sub)
		fn(sub, cls);
	unlock(bus);
	return sub != NULL;
}

void bus_kill(struct bus *bus, uint64_t sub_id, enum sub_end why)
{
	struct subscriber *sub;

	pthread_mutex_lock(&bus->lock);
	sub = *id_slot(bus, sub_id);
	if (sub)
		end_subscriber(sub, why);
	unlock(bus);
}

/* ---- remote mode: the Redis engine feeds the rings ---- */

void bus_set_remote(struct bus *bus, const struct bus_remote_ops *ops,
		    void *cls)
{
	pthread_mutex_lock(&bus->lock);
	bus->remote = ops;
	bus->remote_cls = cls;
	unlock(bus);
}

/* Under the lock: empty the ring; the ids go on from last_id. */
static void drop_history(struct bus *bus, struct channel *ch)
{
	while (ch->len)
		evict_oldest(bus, ch);
}

int bus_sync(struct bus *bus, const char *channel, size_t len,
	     uint64_t epoch, uint64_t last_id, uint64_t first_id)
{
	struct channel *ch;
	int rc = -1;

	pthread_mutex_lock(&bus->lock);
	ch = channel_find(bus, channel, len);
	if (ch == NULL || epoch == 0 || first_id == 0 ||
	    first_id > last_id + 1)
		goto out;
	rc = 0;
	if (ch->synced && ch->epoch == epoch && first_id <= ch->last_id + 1) {
		if (last_id > ch->redis_last)
			ch->redis_last = last_id;
		goto out; /* what is new comes through bus_ingest */
	}
	ch->redis_last = last_id;
	/* a first sync, another epoch (Redis lost the channel), or a hole
	 * Redis no longer holds: start over where Redis' history starts */
	drop_history(bus, ch);
	for (struct tap *t = ch->taps; t; t = t->next) {
		if (!ch->synced && t->tail) {
			/* joined "from now" before anybody knew "now" */
			t->cursor = last_id;
			t->stale = false;
		} else if (!ch->synced) {
			t->stale = t->want_epoch && t->want_epoch != epoch;
		} else if (ch->epoch != epoch) {
			t->stale = true;
		}
		/* what it asked of the old ring is moot: asked again */
		drop_backfill(t);
		t->lag_base = ch->bytes;
	}
	ch->epoch = epoch;
	ch->last_id = first_id - 1;
	ch->synced = true;
	/* the taps may now have a gap to report */
	for (struct tap *t = ch->taps; t; t = t->next)
		if (t->sub->end == SUB_END_NONE)
			wake(t->sub);
out:
	unlock(bus);
	return rc;
}

enum bus_ingest bus_ingest(struct bus *bus, const char *channel, size_t len,
			   struct message *m, uint64_t epoch, uint64_t id,
			   uint64_t *last_id)
{
	enum bus_ingest r;
	struct channel *ch;

	pthread_mutex_lock(&bus->lock);
	ch = channel_find(bus, channel, len);
	if (ch == NULL || !ch->synced) {
		r = BUS_INGEST_UNSYNCED; /* the sync's read will have it */
		goto out;
	}
	*last_id = ch->last_id;
	if (epoch != ch->epoch) {
		r = BUS_INGEST_RESYNC;
	} else if (id <= ch->last_id) {
		r = BUS_INGEST_DUPLICATE;
	} else if (id > ch->last_id + 1) {
		r = BUS_INGEST_HOLE; /* read the ids between first */
	} else {
		append_id(bus, ch, m, id);
		m = NULL;
		notify_taps(bus, ch);
		metrics_add(&metrics.published, 1);
		r = BUS_INGESTED;
		*last_id = id;
	}
out:
	unlock(bus);
	message_unref(m);
	return r;
}

void bus_heard(struct bus *bus, const char *channel, size_t len,
	       uint64_t epoch, uint64_t last_id, uint64_t ticket)
{
	struct channel *ch;

	pthread_mutex_lock(&bus->lock);
	ch = channel_find(bus, channel, len);
	if (ch == NULL || !ch->synced || ch->epoch != epoch)
		goto out; /* another epoch: the resync decides */
	if (last_id > ch->redis_last)
		ch->redis_last = last_id;
	for (struct tap *t = ch->taps; t; t = t->next) {
		if (t->ask == 0 || t->ask > ticket || t->stale ||
		    t->cursor <= ch->last_id)
			continue;
		if (t->cursor > last_id) {
			/* Redis never gave it: the gap the embedded bus
			 * reports at once */
			t->past = true;
			if (t->sub->end == SUB_END_NONE)
				wake(t->sub);
		}
	}
out:
	unlock(bus);
}

void bus_backfill(struct bus *bus, const char *channel, size_t len,
		  uint64_t sub_id, uint64_t epoch, struct message **msgs,
		  const uint64_t *ids, size_t n)
{
	struct subscriber *sub;
	struct channel *ch;
	struct tap *t = NULL;
	size_t used = 0;

	pthread_mutex_lock(&bus->lock);
	sub = *id_slot(bus, sub_id);
	ch = channel_find(bus, channel, len);
	for (size_t i = 0; sub && ch && i < sub->ntaps && t == NULL; i++)
		if (sub->taps[i]->ch == ch && sub->taps[i]->filling)
			t = sub->taps[i];
	if (t == NULL)
		goto out; /* gone, or the ring restarted meanwhile */
	t->filling = false;
	if (n == 0 || epoch != ch->epoch || ids[0] <= t->cursor) {
		t->nofill = true; /* nothing Redis has: the gap */
		goto wake;
	}
	t->back = xcalloc(n, sizeof *t->back);
	if (ids[0] > t->cursor + 1) {
		t->back_gap = true;
		t->back_gap_to = ids[0] - 1;
	}
	/* consecutive ids only, and none the ring has */
	for (; used < n && ids[used] == ids[0] + used &&
	       ids[used] < oldest_id(ch);
	     used++) {
		message_seal(msgs[used], epoch, ids[used]);
		t->back[used] = msgs[used];
	}
	t->nback = used;
	if (used == 0) {
		free(t->back);
		t->back = NULL;
		t->back_gap = false;
		t->nofill = true;
	}
wake:
	if (sub->end == SUB_END_NONE)
		wake(sub);
out:
	unlock(bus);
	for (size_t i = used; i < n; i++)
		message_unref(msgs[i]);
}

/* ---- presence of pollers ---- */

static bool has_pollers(const struct channel *ch)
{
	for (size_t i = 0; i < TRANSPORT_COUNT; i++)
		if (ch->pollers_by[i])
			return true;
	return false;
}

/* A long poll of this client is held on the channel right now: a hold
 * longer than the window is still presence. */
static bool still_held(const struct poller *p, void *cls)
{
	const struct channel *ch = p->owner;

	(void)cls;
	if (p->transport != TRANSPORT_LONGPOLL)
		return false;
	for (const struct tap *t = ch->taps; t; t = t->next)
		if (t->sub->transport->id == TRANSPORT_LONGPOLL &&
		    strcmp(t->sub->client, p->client) == 0)
			return true;
	return false;
}

/* What the pollers' callbacks get (cls): the bus, and where leaves go. */
struct poller_news {
	struct bus *bus;
	struct announcement *list;
};

/* Expired, or dropped for the cap: either way a poller that announced
 * its join gets its leave, or others would see it present forever. */
static void poller_left(const struct poller *p, void *cls)
{
	struct poller_news *news = cls;
	struct channel *ch = p->owner;

	ch->pollers_by[p->transport]--;
	counts_changed(news->bus, ch);
	if (p->announce)
		queue_announcement(&news->list, ch, "leave", p->client,
				   p->transport);
	if (!has_pollers(ch))
		maybe_idle(news->bus, ch);
}

static const struct pollers_ops poller_ops = {
	.keep = still_held,
	.gone = poller_left,
};

void bus_poll_seen(struct bus *bus, const struct channel_list *channels,
		   const char *client, enum transport_id t, bool announce_it)
{
	/* joins, and leaves of dropped */
	struct poller_news news = { .bus = bus, .list = NULL };
	uint64_t now = bus_now_ms();

	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < channels->count; i++) {
		struct channel *ch = channel_find(bus, channels->name[i],
						  channels->len[i]);

		if (ch == NULL || !pollers_seen(bus->pollers, ch, client, t,
						announce_it, now, &news))
			continue;
		ch->pollers_by[t]++;
		counts_changed(bus, ch);
		if (announce_it)
			queue_announcement(&news.list, ch, "join", client, t);
	}
	unlock(bus);
	announce(bus, news.list);
}

/* Under the lock: the channel's pollers, added to counts[]. */
static void add_pollers(const struct channel *ch, size_t *counts)
{
	for (size_t i = 0; i < TRANSPORT_COUNT; i++)
		counts[i] += ch->pollers_by[i];
}

static void expire_pollers(struct bus *bus, uint64_t now,
			   struct announcement **leaves)
{
	struct poller_news news = { .bus = bus, .list = *leaves };

	if (now >= bus->cfg.presence_window_ms)
		pollers_expire(bus->pollers, now - bus->cfg.presence_window_ms,
			       now, &news);
	*leaves = news.list;
}

/* ---- housekeeping ---- */

static bool aged(const struct bus *bus, const struct message *m, uint64_t now)
{
	return m->born_ms + bus->cfg.history_age_ms <= now;
}

static struct channel *ch_of(struct dheap_node *node)
{
	return (struct channel *)((char *)node -
				  offsetof(struct channel, age_node));
}

/* A channel's key is never later than its oldest message's birth (an
 * eviction that makes a younger message the oldest leaves the key as it
 * is), so the channels whose key has not aged out have nothing to
 * expire: only the others are looked at, each filed again under its
 * new oldest, or dropped when it has none. */
static void expire_history(struct bus *bus, uint64_t now)
{
	struct dheap_node *node;

	while ((node = dheap_min(&bus->ages)) &&
	       node->key + bus->cfg.history_age_ms <= now) {
		struct channel *ch = ch_of(node);

		bus->tick_visits++;
		while (ch->len > 0 && aged(bus, ch->ring[ch->head], now))
			evict_oldest(bus, ch);
		if (ch->len == 0)
			dheap_remove(&bus->ages, node);
		else
			dheap_rekey(&bus->ages, node,
				    ch->ring[ch->head]->born_ms);
	}
}

/* Reclaim the channels on the idle list that are still idle. */
static void reclaim_idle(struct bus *bus)
{
	while (bus->idle) {
		struct channel *ch = bus->idle;

		bus->tick_visits++;
		bus->idle = ch->idle_next;
		ch->idle_next = NULL;
		ch->idle_queued = false;
		if (!ch->tomb && ch->len == 0 && ch->taps == NULL &&
		    !has_pollers(ch))
			channel_reclaim(bus, ch);
	}
}

void bus_tick(struct bus *bus, uint64_t now_ms)
{
	struct announcement *leaves = NULL;

	pthread_mutex_lock(&bus->lock);
	expire_pollers(bus, now_ms, &leaves);
	if (now_ms > bus->cfg.idem_window_ms)
		idem_expire(bus->idem, now_ms - bus->cfg.idem_window_ms);
	expire_history(bus, now_ms);
	reclaim_idle(bus);
	trim_tombs(bus);
	fire_deadlines(bus, now_ms);
	unlock(bus);
	announce(bus, leaves);
}

int bus_info(struct bus *bus, const char *channel, size_t len,
	     struct bus_channel_info *out)
{
	struct channel *ch;
	int rc;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&bus->lock);
	ch = *channel_slot(bus, channel, len);
	if (ch) {
		/* a tomb's epoch and last id are still the cursor of "now" */
		out->epoch = ch->epoch;
		out->last_id = ch->last_id;
		out->oldest_id = oldest_id(ch);
		out->retained = ch->len;
		memcpy(out->subscribers, ch->subs_by, sizeof out->subscribers);
		/* pollers count while they keep polling, not per request */
		out->subscribers[TRANSPORT_POLL] = 0;
		out->subscribers[TRANSPORT_LONGPOLL] = 0;
		add_pollers(ch, out->subscribers);
	}
	rc = ch && !ch->tomb ? 0 : -1;
	unlock(bus);
	if (ch == NULL)
		out->oldest_id = 1;
	return rc;
}

void bus_stats(struct bus *bus, struct bus_stats *out)
{
	pthread_mutex_lock(&bus->lock);
	out->channels = bus->nchannels;
	out->retained = bus->retained;
	out->retained_bytes = bus->retained_bytes;
	out->subscribers = bus->nsubs;
	out->pollers = pollers_count(bus->pollers);
	out->poller_visits = pollers_visited(bus->pollers);
	out->tick_visits = bus->tick_visits;
	out->idem_keys = idem_count(bus->idem);
	unlock(bus);
}

size_t bus_subscribers_of(struct bus *bus, enum transport_id id)
{
	size_t n;

	pthread_mutex_lock(&bus->lock);
	n = bus->subs_by[id];
	unlock(bus);
	return n;
}

size_t bus_channel_chain_max(struct bus *bus)
{
	size_t max = 0;

	pthread_mutex_lock(&bus->lock);
	for (size_t i = 0; i < bus->nbuckets; i++) {
		size_t n = 0;

		for (const struct channel *ch = bus->buckets[i]; ch;
		     ch = ch->hnext)
			n++;
		if (n > max)
			max = n;
	}
	unlock(bus);
	return max;
}

/* ---- the admin API ---- */

size_t bus_channels(struct bus *bus, struct bus_channel_row **rows)
{
	size_t n = 0;

	pthread_mutex_lock(&bus->lock);
	*rows = xcalloc(bus->nchannels ? bus->nchannels : 1, sizeof **rows);
	for (size_t b = 0; b < bus->nbuckets; b++) {
		for (struct channel *ch = bus->buckets[b]; ch; ch = ch->hnext) {
			struct bus_channel_row *r;

			if (ch->tomb || n == bus->nchannels)
				continue;
			r = &(*rows)[n++];
			memcpy(r->name, ch->name, ch->name_len);
			r->name[ch->name_len] = '\0';
			r->last_id = ch->last_id;
			r->retained = ch->len;
			for (size_t t = 0; t < TRANSPORT_COUNT; t++)
				r->subscribers += ch->subs_by[t];
		}
	}
	unlock(bus);
	return n;
}

int bus_channel_delete(struct bus *bus, const char *name, size_t len)
{
	struct channel *ch;
	int r = -1;

	pthread_mutex_lock(&bus->lock);
	ch = channel_find(bus, name, len);
	if (ch) {
		while (ch->len > 0)
			evict_oldest(bus, ch);
		for (struct tap *t = ch->taps; t; t = t->next)
			end_subscriber(t->sub, SUB_END_ADMIN);
		r = 0;
	}
	unlock(bus);
	return r;
}

size_t bus_disconnect_client(struct bus *bus, const char *client)
{
	struct poller_news news = { .bus = bus, .list = NULL };
	size_t n = 0;

	pthread_mutex_lock(&bus->lock);
	for (struct subscriber *s = bus->subs; s; s = s->next) {
		if (strcmp(s->client, client) == 0 && s->end == SUB_END_NONE) {
			end_subscriber(s, SUB_END_ADMIN);
			n++;
		}
	}
	/* its polls leave the channels' presence now, not a window later:
	 * a poller that announced its join gets its leave */
	pollers_forget(bus->pollers, client, &news);
	unlock(bus);
	announce(bus, news.list);
	return n;
}
