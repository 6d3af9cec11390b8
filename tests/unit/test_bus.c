/* The bus: per-channel ids, bounded history (count, bytes, age), cursors
 * and gaps, multi-channel order, exclude_sender, park/wake, slow consumers,
 * kill, shutdown, reclaim, deadlines and message reference counts.
 *
 * Subscribers use a fake transport whose park, wake and cut only count. */
#include "unit.h"

#include "bus.h"
#include "message.h"
#include "metrics.h"
#include "payload.h"
#include "transport.h"
#include "validate.h"

#include <cJSON.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TS_MS 1700000000000LL /* wall clock on every test message */
#define MAXI 64               /* items per pull */

/* ---- the fake transport ---- */

struct tsub {
	struct subscriber sub; /* first, so the callbacks can cast back */
	int parks, wakes, cuts;
};

static struct tsub *tsub_of(struct subscriber *s)
{
	return (struct tsub *)s;
}

static void fake_park(struct subscriber *s)
{
	tsub_of(s)->parks++;
}

static void fake_wake(struct subscriber *s)
{
	tsub_of(s)->wakes++;
}

static void fake_cut(struct subscriber *s)
{
	tsub_of(s)->cuts++;
}

static const struct sub_host fake_host = {
	.name = "fake",
	.park = fake_park,
	.wake = fake_wake,
	.cut = fake_cut,
};
/* ---- fixture: one bus per test, and no message may outlive it ---- */

static struct bus *bus;
static long alive_before;

static void setup(void)
{
	bus = NULL;
	alive_before = message_alive();
}

static void teardown(void)
{
	if (bus)
		bus_free(bus);
	bus = NULL;
	ck_assert_int_eq(message_alive(), alive_before);
}

static void open_bus(size_t history, uint64_t age_ms, size_t bytes,
		     size_t channels, size_t lag)
{
	const struct bus_config cfg = {
		.history_size = history,
		.history_age_ms = age_ms,
		.history_bytes = bytes,
		.max_channels = channels,
		.lag_limit = lag,
	};

	bus = bus_new(&cfg);
	ck_assert_ptr_nonnull(bus);
}

/* Roomy defaults for tests about something else. */
static void open_default_bus(void)
{
	open_bus(100, 60000, 1 << 24, 100, 1 << 24);
}

/* ---- helpers ---- */

static enum bus_error try_publish(const char *channel, const char *text,
				  const char *from, bool exclude,
				  uint64_t mono_ms, uint64_t *id)
{
	struct payload p;
	struct message_spec spec = { .channel = channel,
				     .from = from,
				     .exclude_sender = exclude,
				     .data = &p };
	struct message *m;

	ck_assert_int_eq(payload_from_text(text, strlen(text), &p), PAYLOAD_OK);
	m = message_new(&spec, TS_MS, mono_ms);
	payload_free(&p);
	struct cursor at = { 0, 0 };
	enum bus_error err;

	/* the bus takes the reference, accepted or not */
	err = bus_publish(bus, channel, strlen(channel), m, &at);
	*id = at.id;
	return err;
}

/* Publish raw bytes as a binary message. */
static void publish_binary(const char *channel, const void *raw, size_t len)
{
	struct payload p;
	struct message_spec spec = { .channel = channel, .data = &p };
	struct cursor id;

	payload_from_binary(raw, len, &p);
	ck_assert_int_eq(bus_publish(bus, channel, strlen(channel),
				     message_new(&spec, TS_MS, 0), &id),
			 BUS_OK);
	payload_free(&p);
}

/* Publish text born at mono_ms; the new id. */
static uint64_t publish_at(const char *channel, const char *text,
			   uint64_t mono_ms)
{
	uint64_t id = 0;

	ck_assert_int_eq(try_publish(channel, text, NULL, false, mono_ms, &id),
			 BUS_OK);
	return id;
}

static uint64_t publish(const char *channel, const char *text)
{
	return publish_at(channel, text, 0);
}

static uint64_t publish_from(const char *channel, const char *text,
			     const char *from, bool exclude)
{
	uint64_t id = 0;

	ck_assert_int_eq(try_publish(channel, text, from, exclude, 0, &id),
			 BUS_OK);
	return id;
}

static void sub_init(struct tsub *t, const char *client)
{
	memset(t, 0, sizeof *t);
	t->sub.transport = &transport_sse;
	t->sub.host = &fake_host;
	snprintf(t->sub.client, sizeof t->sub.client, "%s", client);
}

/* Attach at full cursors (epoch and id). */
static enum bus_error attach_at(struct tsub *t, const char *list,
				const struct cursor *since, struct cursor *start)
{
	struct channel_list chs;
	struct cursor ignored[CHANNELS_PER_SUBSCRIPTION_MAX];

	ck_assert_int_eq(channel_list_parse(list, strlen(list), &chs), 0);
	return bus_attach(bus, &t->sub, &chs, since, start ? start : ignored);
}

/* Attach at plain ids (no epoch), as most tests do; start gets ids. */
static enum bus_error attach(struct tsub *t, const char *list,
			     const uint64_t *since, uint64_t *start)
{
	struct cursor c[CHANNELS_PER_SUBSCRIPTION_MAX],
		st[CHANNELS_PER_SUBSCRIPTION_MAX];
	struct channel_list chs;
	enum bus_error err;

	ck_assert_int_eq(channel_list_parse(list, strlen(list), &chs), 0);
	for (size_t i = 0; since && i < chs.count; i++)
		c[i] = (struct cursor){ 0, since[i] };
	err = attach_at(t, list, since ? c : NULL, st);
	for (size_t i = 0; start && err == BUS_OK && i < chs.count; i++)
		start[i] = st[i].id;
	return err;
}

/* Init and attach, which must succeed. */
static void join(struct tsub *t, const char *client, const char *list,
		 const uint64_t *since)
{
	sub_init(t, client);
	ck_assert_int_eq(attach(t, list, since, NULL), BUS_OK);
}

static struct bus_pull pull(struct tsub *t, struct bus_item *items,
			    bool may_park)
{
	struct bus_pull out;

	bus_pull(bus, &t->sub, items, MAXI, SIZE_MAX, may_park, &out);
	return out;
}

/* Pull, expect nothing at all, and park or not as asked. */
static void pull_none(struct tsub *t, bool may_park)
{
	struct bus_item items[MAXI];
	struct bus_pull out = pull(t, items, may_park);

	ck_assert_uint_eq(out.count, 0);
	ck_assert_int_eq(out.end, SUB_END_NONE);
	ck_assert(out.parked == may_park);
}

/* The message's data is the JSON string of text. */
static bool data_is(const struct message *m, const char *text)
{
	char want[128];
	int n = snprintf(want, sizeof want, "\"%s\"", text);

	return m->data_len == (size_t)n &&
	       memcmp(message_json(m) + m->data_off, want, (size_t)n) == 0;
}

#define ck_item(it, tap_, id_, text)                                        \
	do {                                                                \
		const struct bus_item *it_ = (it);                          \
		ck_assert_msg(it_->msg != NULL, "gap where id %d expected", \
			      (int)(id_));                                  \
		ck_assert_uint_eq(it_->tap, (tap_));                        \
		ck_assert_uint_eq(it_->msg->id, (id_));                     \
		ck_assert_uint_eq(it_->cursor, (id_));                      \
		ck_assert_msg(data_is(it_->msg, (text)), "data is not %s",  \
			      (text));                                      \
	} while (0)

#define ck_gap(it, tap_, last, cursor_)                                        \
	do {                                                                   \
		const struct bus_item *it_ = (it);                             \
		ck_assert_msg(it_->msg == NULL, "message where gap expected"); \
		ck_assert_uint_eq(it_->tap, (tap_));                           \
		ck_assert_uint_eq(it_->gap_last, (last));                      \
		ck_assert_uint_eq(it_->cursor, (cursor_));                     \
	} while (0)

static struct bus_channel_info info_of(const char *channel)
{
	struct bus_channel_info info;

	ck_assert_msg(bus_info(bus, channel, strlen(channel), &info) == 0,
		      "no channel %s", channel);
	return info;
}

static bool channel_exists(const char *channel)
{
	struct bus_channel_info info;

	return bus_info(bus, channel, strlen(channel), &info) == 0;
}

static size_t channel_count(void)
{
	struct bus_stats st;

	bus_stats(bus, &st);
	return st.channels;
}

/* The envelope length of the channel's newest message: the bytes lag and
 * pull limits count (history counts whole allocations). */
static size_t envelope_len(const char *channel)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = info_of(channel).last_id - 1;
	size_t len;

	join(&t, "envelope-len", channel, &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 1);
	len = items[0].msg->json_len;
	bus_items_release(items, 1);
	bus_detach(bus, &t.sub);
	return len;
}

static size_t retained_bytes(void)
{
	struct bus_stats st;

	bus_stats(bus, &st);
	return st.retained_bytes;
}

/* ---- ids and the envelope ---- */

START_TEST(test_ids_per_channel)
{
	struct bus_channel_info info;
	struct bus_stats st;

	open_default_bus();
	ck_assert_uint_eq(publish("a", "a1"), 1);
	ck_assert_uint_eq(publish("a", "a2"), 2);
	ck_assert_uint_eq(publish("b", "b1"), 1);
	ck_assert_uint_eq(publish("a", "a3"), 3);
	ck_assert_uint_eq(publish("b", "b2"), 2);
	info = info_of("a");
	ck_assert_uint_eq(info.last_id, 3);
	ck_assert_uint_eq(info.oldest_id, 1);
	ck_assert_uint_eq(info.retained, 3);
	info = info_of("b");
	ck_assert_uint_eq(info.last_id, 2);
	ck_assert_int_eq(bus_info(bus, LIT("nope"), &info), -1);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.channels, 2);
	ck_assert_uint_eq(st.retained, 5);
	ck_assert_uint_eq(st.subscribers, 0);
}
END_TEST

START_TEST(test_envelope)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 0;
	struct payload p;
	struct message_spec spec = { .channel = "room",
				     .event = "chat.msg",
				     .from = "alice",
				     .data = &p };
	struct message *m;
	struct cursor id;
	cJSON *doc;

	open_default_bus();
	ck_assert_int_eq(payload_from_json(LIT("{ \"n\" : [1, 2] }"), &p),
			 PAYLOAD_OK);
	m = message_new(&spec, TS_MS, 0);
	payload_free(&p);
	ck_assert_int_eq(bus_publish(bus, LIT("room"), m, &id), BUS_OK);
	join(&t, "bob", "room", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 1);
	m = items[0].msg;
	ck_assert_uint_eq(strlen(message_json(m)), m->json_len);
	ck_assert(m->json_len > 8 && memcmp(message_json(m) + m->json_len - 8,
					    ",\"id\":1}", 8) == 0);
	ck_assert_uint_eq(m->epoch, info_of("room").epoch);
	ck_assert_uint_eq(m->epoch, id.epoch);
	doc = cJSON_ParseWithLength(message_json(m), m->json_len);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "type")->valuestring,
			 "message");
	{
		char e[EPOCH_TEXT_MAX];

		cursor_epoch_text(id.epoch, e);
		ck_assert_str_eq(
			cJSON_GetObjectItem(doc, "epoch")->valuestring, e);
	}
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "channel")->valuestring,
			 "room");
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "event")->valuestring,
			 "chat.msg");
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "from")->valuestring,
			 "alice");
	ck_assert(cJSON_GetObjectItem(doc, "ts")->valuedouble == (double)TS_MS);
	ck_assert(cJSON_GetObjectItem(doc, "id")->valuedouble == 1.0);
	ck_assert(cJSON_IsObject(cJSON_GetObjectItem(doc, "data")));
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "binary"));
	/* the data slice SSE sends is the compacted payload */
	ck_assert_uint_eq(m->data_len, 11);
	ck_assert(memcmp(message_json(m) + m->data_off, "{\"n\":[1,2]}", 11) ==
		  0);
	cJSON_Delete(doc);
	bus_items_release(items, 1);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- history bounds ---- */

START_TEST(test_history_count_evicts_oldest)
{
	struct bus_item items[MAXI];
	struct bus_channel_info info;
	struct tsub t, u;
	uint64_t since;
	unsigned long long evicted = atomic_load(&metrics.evicted);
	char text[8];

	open_bus(5, 60000, 1 << 24, 100, 1 << 24);
	for (int i = 1; i <= 8; i++) {
		snprintf(text, sizeof text, "m%d", i);
		ck_assert_uint_eq(publish("a", text), (uint64_t)i);
	}
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 5);
	ck_assert_uint_eq(info.oldest_id, 4);
	ck_assert_uint_eq(info.last_id, 8);
	ck_assert_uint_eq(atomic_load(&metrics.evicted) - evicted, 3);

	/* a cursor at oldest - 1 has lost nothing */
	since = 3;
	join(&t, "t", "a", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 5);
	for (unsigned i = 0; i < 5; i++) {
		snprintf(text, sizeof text, "m%u", i + 4);
		ck_item(&items[i], 0, i + 4, text);
	}
	bus_items_release(items, 5);

	/* since=0 when 1..3 are gone: the loss is reported, then 4..8 */
	since = 0;
	join(&u, "u", "a", &since);
	ck_assert_uint_eq(pull(&u, items, false).count, 6);
	ck_gap(&items[0], 0, 0, 3);
	ck_item(&items[1], 0, 4, "m4");
	ck_item(&items[5], 0, 8, "m8");
	bus_items_release(items, 6);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
}
END_TEST

START_TEST(test_history_bytes_global)
{
	struct bus_channel_info info;
	struct bus_stats st;
	size_t l;

	/* every message below costs the same l bytes of the budget */
	open_default_bus();
	publish("a", "x1");
	l = retained_bytes();
	ck_assert_uint_gt(l, 40);
	bus_free(bus);

	open_bus(100, 60000, 3 * l + l / 2, 100, 1 << 24);
	publish("a", "x1");
	publish("b", "x1");
	publish("a", "x2");
	ck_assert_uint_eq(retained_bytes(), 3 * l);
	publish("b", "x2"); /* over budget: a1, the oldest anywhere, goes */
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 1);
	ck_assert_uint_eq(info.oldest_id, 2);
	info = info_of("b");
	ck_assert_uint_eq(info.retained, 2);
	ck_assert_uint_eq(info.oldest_id, 1);
	publish("a", "x3"); /* then b1 */
	info = info_of("b");
	ck_assert_uint_eq(info.retained, 1);
	ck_assert_uint_eq(info.oldest_id, 2);
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 2);
	ck_assert_uint_eq(info.oldest_id, 2);
	ck_assert_uint_eq(info.last_id, 3);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.retained, 3);
	ck_assert_uint_eq(st.retained_bytes, 3 * l);
}
END_TEST

START_TEST(test_history_bytes_keeps_newest)
{
	/* a budget below one message still keeps the newest one */
	struct bus_channel_info info;

	open_bus(100, 60000, 1, 100, 1 << 24);
	publish("a", "x1");
	ck_assert_uint_eq(info_of("a").retained, 1);
	publish("b", "x1");
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 0);
	ck_assert_uint_eq(info.last_id, 1);
	ck_assert_uint_eq(info.oldest_id, 2);
	ck_assert_uint_eq(info_of("b").retained, 1);
}
END_TEST

START_TEST(test_history_bytes_counts_all_held)
{
	/* a binary message also keeps its raw bytes and a second envelope
	 * (the /ws binary-frame form), and a polled one a copy of its
	 * single-message reply: the budget counts all of it, as the heap
	 * does */
	enum { N = 40, RAW = 1000, BUDGET = 32768 };
	static unsigned char raw[RAW];
	struct bus_item items[MAXI];
	struct mallinfo2 before, after;
	struct bus_pull out;
	struct tsub t;
	size_t held = 0, kept = 0, len;
	uint64_t since = 0;

	for (size_t i = 0; i < RAW; i++)
		raw[i] = (unsigned char)(i * 7);
	open_bus(1000, 60000, BUDGET, 100, SIZE_MAX);
	join(&t, "poller", "bin", NULL);
	before = mallinfo2();
	for (int i = 0; i < N; i++) {
		publish_binary("bin", raw, RAW);
		ck_assert_uint_eq(pull(&t, items, false).count, 1);
		/* what a one-message poll reply does */
		bus_single_reply(bus, items[0].msg, &len);
		ck_assert_uint_gt(len, items[0].msg->json_len);
		bus_items_release(items, 1);
		ck_assert_uint_le(retained_bytes(), BUDGET);
	}
	after = mallinfo2();
	bus_detach(bus, &t.sub);

	/* what history holds, from the messages' own lengths */
	join(&t, "reader", "bin", &since);
	out = pull(&t, items, false);
	for (size_t i = 0; i < out.count; i++) {
		struct message *m = items[i].msg;

		if (m == NULL)
			continue; /* the gap for what was evicted */
		kept++;
		held += m->json_len + m->meta_len + m->raw_len;
		ck_assert_ptr_nonnull(atomic_load(&m->single));
		message_single_reply(m, &len, &(size_t){ 0 });
		held += len;
	}
	bus_items_release(items, out.count);
	bus_detach(bus, &t.sub);
	ck_assert_uint_gt(kept, 1);
	ck_assert_uint_lt(kept, N);
	ck_assert_uint_le(held, BUDGET);
	ck_assert_uint_ge(retained_bytes(), held);
	/* the heap grew by the history and a little more: the ring, and
	 * malloc's own headers */
	ck_assert_uint_le(after.uordblks - before.uordblks, BUDGET + 4096);
}
END_TEST

START_TEST(test_history_age)
{
	struct bus_item items[MAXI];
	struct bus_channel_info info;
	struct tsub t;

	open_bus(100, 1000, 1 << 24, 100, 1 << 24);
	publish_at("a", "m1", 100);
	publish_at("a", "m2", 200);
	publish_at("b", "m3", 300);
	bus_tick(bus, 1099);
	ck_assert_uint_eq(info_of("a").retained, 2);
	bus_tick(bus, 1100); /* m1 is 1000 ms old */
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 1);
	ck_assert_uint_eq(info.oldest_id, 2);
	ck_assert_uint_eq(info_of("b").retained, 1);

	/* a subscriber keeps its channel, and learns of what expired
	 * before it could read it */
	join(&t, "t", "a", NULL);
	publish_at("a", "m4", 1200);
	bus_tick(bus, UINT64_C(1) << 50);
	ck_assert(!channel_exists("b")); /* empty and unwatched: reclaimed */
	info = info_of("a");
	ck_assert_uint_eq(info.retained, 0);
	ck_assert_uint_eq(info.last_id, 3);
	ck_assert_uint_eq(info.oldest_id, 4);
	ck_assert_uint_eq(pull(&t, items, false).count, 1);
	ck_gap(&items[0], 0, 2, 3);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_ring_wraps_then_grows)
{
	/* expiry moves the ring's head, publishing wraps it, and the next
	 * one grows it: order and ids must survive all three */
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 0;
	char text[8];

	open_bus(100, 1000, 1 << 24, 100, 1 << 24);
	for (int i = 1; i <= 8; i++) {
		snprintf(text, sizeof text, "m%d", i);
		publish_at("a", text, (uint64_t)i - 1);
	}
	bus_tick(bus, 1002); /* m1..m3 expire */
	ck_assert_uint_eq(info_of("a").oldest_id, 4);
	for (int i = 9; i <= 12; i++) {
		snprintf(text, sizeof text, "m%d", i);
		publish_at("a", text, 2000);
	}
	ck_assert_uint_eq(info_of("a").retained, 9);
	join(&t, "t", "a", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 10);
	ck_gap(&items[0], 0, 0, 3);
	for (unsigned i = 1; i < 10; i++) {
		snprintf(text, sizeof text, "m%u", i + 3);
		ck_item(&items[i], 0, i + 3, text);
	}
	bus_items_release(items, 10);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_many_channels)
{
	/* past the initial hash table size, and back */
	enum { N = 3000 };
	struct bus_stats st;
	char name[16];
	uint64_t id = 0;

	open_bus(10, 1000, 1 << 24, N, 1 << 24);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "ch:%d", i);
		ck_assert_uint_eq(publish(name, "m"), 1);
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "ch:%d", i);
		ck_assert_uint_eq(publish(name, "m"), 2);
	}
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.channels, N);
	ck_assert_uint_eq(st.retained, 2 * N);
	ck_assert_int_eq(try_publish("one-more", "m", NULL, false, 0, &id),
			 BUS_TOO_MANY_CHANNELS);
	bus_tick(bus, 5000);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.channels, 0);
	ck_assert(!channel_exists("ch:0"));
	ck_assert(!channel_exists("ch:2999"));
}
END_TEST

/* FNV-1a, 64 bits, with its published offset basis: the unkeyed hash
 * anyone can compute offline. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

START_TEST(test_channel_hash_flooding)
{
	/* names an attacker finds by brute force: all the same in the low
	 * 12 bits of FNV-1a, so one bucket for any table of up to 4096 */
	enum { N = 1000 };
	static char names[N][24];
	size_t found = 0;
	uint64_t target = fnv1a("flood:0") & 0xfff;

	for (unsigned long i = 0; found < N && i < 100000000UL; i++) {
		snprintf(names[found], sizeof names[found], "flood:%lu", i);
		if ((fnv1a(names[found]) & 0xfff) == target)
			found++;
	}
	ck_assert_uint_eq(found, N);
	open_bus(10, 1000, 1 << 24, N, 1 << 24);
	for (size_t i = 0; i < N; i++)
		publish(names[i], "m");
	ck_assert_uint_eq(channel_count(), N);
	/* 1000 random names in 1024 buckets: the longest chain is about 5;
	 * 13 or more happens with odds below one in ten million */
	ck_assert_uint_le(bus_channel_chain_max(bus), 12);
}
END_TEST

/* ---- where a subscriber starts ---- */

START_TEST(test_attach_at_tail)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;
	uint64_t start[1] = { 99 };

	open_default_bus();
	publish("a", "old1");
	publish("a", "old2");
	publish("a", "old3");
	sub_init(&t, "t");
	ck_assert_int_eq(attach(&t, "a", NULL, start), BUS_OK);
	ck_assert_uint_eq(start[0], 3);
	out = pull(&t, items, false);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(!out.more && !out.parked && !out.timer);
	publish("a", "new");
	out = pull(&t, items, false);
	ck_assert_uint_eq(out.count, 1);
	ck_item(&items[0], 0, 4, "new");
	bus_items_release(items, 1);
	ck_assert_ptr_null(items[0].msg);
	bus_detach(bus, &t.sub);
	ck_assert_ptr_null(t.sub.taps);
}
END_TEST

START_TEST(test_since_zero_gets_all)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 0, start = 99;

	open_default_bus();
	publish("a", "m1");
	publish("a", "m2");
	publish("a", "m3");
	sub_init(&t, "t");
	ck_assert_int_eq(attach(&t, "a", &since, &start), BUS_OK);
	ck_assert_uint_eq(start, 0);
	ck_assert_uint_eq(pull(&t, items, false).count, 3);
	ck_item(&items[0], 0, 1, "m1");
	ck_item(&items[1], 0, 2, "m2");
	ck_item(&items[2], 0, 3, "m3");
	bus_items_release(items, 3);
	pull_none(&t, false);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_gap_old_cursor)
{
	struct bus_item items[MAXI];
	struct tsub t, u;
	uint64_t since = 2;
	unsigned long long gaps = atomic_load(&metrics.gaps);
	char text[8];

	open_bus(5, 60000, 1 << 24, 100, 1 << 24);
	for (int i = 1; i <= 10; i++) {
		snprintf(text, sizeof text, "m%d", i);
		publish("a", text);
	}
	join(&t, "t", "a", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 6);
	ck_gap(&items[0], 0, 2, 5);
	for (unsigned i = 1; i < 6; i++) {
		snprintf(text, sizeof text, "m%u", i + 5);
		ck_item(&items[i], 0, i + 5, text);
	}
	bus_items_release(items, 6);
	ck_assert_uint_eq(atomic_load(&metrics.gaps) - gaps, 1);

	since = 4; /* one message short of the oldest retained (6) */
	join(&u, "u", "a", &since);
	ck_assert_uint_eq(pull(&u, items, false).count, 6);
	ck_gap(&items[0], 0, 4, 5);
	bus_items_release(items, 6);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
}
END_TEST

START_TEST(test_gap_future_cursor)
{
	struct bus_item items[MAXI];
	struct tsub t, u, v;
	uint64_t since = 50, start = 0;

	open_default_bus();
	publish("a", "m1");
	publish("a", "m2");
	publish("a", "m3");
	/* a cursor this channel never issued (say, from before a restart) */
	sub_init(&t, "t");
	ck_assert_int_eq(attach(&t, "a", &since, &start), BUS_OK);
	ck_assert_uint_eq(start, 50);
	ck_assert_uint_eq(pull(&t, items, false).count, 4);
	ck_gap(&items[0], 0, 50, 0);
	ck_item(&items[1], 0, 1, "m1");
	ck_item(&items[3], 0, 3, "m3");
	bus_items_release(items, 4);
	pull_none(&t, false);

	/* the cursor at last_id: nothing, and no gap */
	since = 3;
	join(&u, "u", "a", &since);
	pull_none(&u, false);

	/* on a channel that does not exist yet */
	since = 7;
	join(&v, "v", "fresh", &since);
	ck_assert_uint_eq(pull(&v, items, false).count, 1);
	ck_gap(&items[0], 0, 7, 0);
	publish("fresh", "f1");
	ck_assert_uint_eq(pull(&v, items, false).count, 1);
	ck_item(&items[0], 0, 1, "f1");
	bus_items_release(items, 1);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
	bus_detach(bus, &v.sub);
}
END_TEST

START_TEST(test_gap_future_cursor_after_eviction)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 50;
	char text[8];

	open_bus(5, 60000, 1 << 24, 100, 1 << 24);
	for (int i = 1; i <= 10; i++) {
		snprintf(text, sizeof text, "m%d", i);
		publish("a", text);
	}
	join(&t, "t", "a", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 6);
	ck_gap(&items[0], 0, 50, 5);
	ck_item(&items[1], 0, 6, "m6");
	ck_item(&items[5], 0, 10, "m10");
	bus_items_release(items, 6);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- epochs: a cursor names the channel's incarnation ---- */

#define ck_gap_epoch(it, tap_, last, cursor_, epoch_)                \
	do {                                                          \
		ck_gap((it), (tap_), (last), (cursor_));              \
		ck_assert_uint_eq((it)->epoch, (epoch_));             \
	} while (0)

START_TEST(test_epoch_matches)
{
	struct bus_item items[MAXI];
	struct cursor since, start;
	struct tsub t, u;
	uint64_t e;

	open_default_bus();
	publish("a", "m1");
	publish("a", "m2");
	publish("a", "m3");
	e = info_of("a").epoch;
	ck_assert_uint_ne(e, 0);

	/* the same incarnation: resume exactly, no gap */
	since = (struct cursor){ e, 1 };
	sub_init(&t, "t");
	ck_assert_int_eq(attach_at(&t, "a", &since, &start), BUS_OK);
	ck_assert_uint_eq(start.epoch, e);
	ck_assert_uint_eq(start.id, 1);
	ck_assert_uint_eq(pull(&t, items, false).count, 2);
	ck_item(&items[0], 0, 2, "m2");
	ck_assert_uint_eq(items[0].epoch, e);
	ck_assert_uint_eq(items[1].epoch, e);
	bus_items_release(items, 2);

	/* a plain id is taken to be of the current incarnation, and the
	 * start cursor names it */
	sub_init(&u, "u");
	ck_assert_int_eq(attach_at(&u, "a", &(struct cursor){ 0, 3 }, &start),
			 BUS_OK);
	ck_assert_uint_eq(start.epoch, e);
	ck_assert_uint_eq(start.id, 3);
	pull_none(&u, false);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
}
END_TEST

START_TEST(test_epoch_other_is_gap)
{
	struct bus_item items[MAXI];
	struct cursor since, start;
	struct tsub t;
	uint64_t e;

	open_default_bus();
	publish("a", "m1");
	publish("a", "m2");
	e = info_of("a").epoch;
	/* same id, other incarnation: everything retained, after a gap */
	since = (struct cursor){ e + 1, 1 };
	sub_init(&t, "t");
	ck_assert_int_eq(attach_at(&t, "a", &since, &start), BUS_OK);
	ck_assert_uint_eq(start.epoch, e + 1); /* as the client has it */
	ck_assert_uint_eq(start.id, 1);
	ck_assert_uint_eq(pull(&t, items, false).count, 3);
	ck_gap_epoch(&items[0], 0, 1, 0, e);
	ck_item(&items[1], 0, 1, "m1");
	ck_item(&items[2], 0, 2, "m2");
	bus_items_release(items, 3);
	pull_none(&t, false);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_tombs_trimmed_mid_walk)
{
	/* the tick reclaims channels while it walks the hash chains; the
	 * tomb it forgets to stay within the limit may be the very next one
	 * on the chain. K channels "a" (young) and K "b" (old) fill the
	 * buckets in that order; the b go first, then K "d" fill the tombs
	 * to the limit, and reclaiming each "a" then forgets a "b" that may
	 * follow it on its chain (a use after free before, seen by ASan) */
	enum { K = 300 };
	char name[16];

	open_bus(100, 1000, 1 << 24, 2 * K, 1 << 24);
	for (int i = 0; i < K; i++) {
		snprintf(name, sizeof name, "a%d", i);
		publish_at(name, "m", 10000);
		snprintf(name, sizeof name, "b%d", i);
		publish_at(name, "m", 0);
	}
	bus_tick(bus, 5000); /* the b become the oldest tombs */
	for (int i = 0; i < K; i++) {
		snprintf(name, sizeof name, "d%d", i);
		publish_at(name, "m", 0);
	}
	bus_tick(bus, 5000); /* 2K tombs: the limit */
	bus_tick(bus, 20000); /* the a go, and the b with them */
	for (int i = 0; i < K; i++) {
		struct bus_channel_info info;

		snprintf(name, sizeof name, "a%d", i);
		ck_assert_int_eq(bus_info(bus, name, strlen(name), &info), -1);
		ck_assert_uint_eq(info.last_id, 1); /* a's tomb is there */
		snprintf(name, sizeof name, "b%d", i);
		ck_assert_int_eq(bus_info(bus, name, strlen(name), &info), -1);
		ck_assert_uint_eq(info.last_id, 0); /* b's is forgotten */
	}
}
END_TEST

START_TEST(test_epoch_after_reclaim)
{
	/* the loss the epoch exists for: 3 messages, the channel ages out
	 * and is reclaimed. While its tomb lives, the channel comes back with
	 * its epoch and ids go on (4, 5, ...): a cursor at 3 loses nothing.
	 * Once the tomb is gone (here: more reclaimed channels than
	 * --max-channels), the name starts a new epoch at id 1, and a client
	 * at id 3 of the old one must hear of the gap; with a plain id it
	 * cannot be told apart, and gets new4 and new5 (as documented). */
	struct bus_item items[MAXI];
	struct cursor since;
	struct tsub t, u, v;
	uint64_t old, now;
	char text[8];

	open_bus(100, 1000, 1 << 24, 1, 1 << 24);
	for (int i = 1; i <= 3; i++)
		publish_at("a", "old", 0);
	old = info_of("a").epoch;
	bus_tick(bus, 5000);
	ck_assert(!channel_exists("a"));
	publish_at("a", "old4", 5000);
	ck_assert_uint_eq(info_of("a").epoch, old);
	since = (struct cursor){ old, 3 };
	sub_init(&v, "v");
	ck_assert_int_eq(attach_at(&v, "a", &since, NULL), BUS_OK);
	ck_assert_uint_eq(pull(&v, items, false).count, 1);
	ck_item(&items[0], 0, 4, "old4");
	bus_items_release(items, 1);
	bus_detach(bus, &v.sub);

	bus_tick(bus, 10000);
	publish_at("b", "m", 10000); /* its tomb pushes a's out */
	bus_tick(bus, 15000);
	for (int i = 1; i <= 5; i++) {
		snprintf(text, sizeof text, "new%d", i);
		publish_at("a", text, 16000);
	}
	now = info_of("a").epoch;
	ck_assert_uint_ne(now, old);
	since = (struct cursor){ old, 3 };
	sub_init(&t, "t");
	ck_assert_int_eq(attach_at(&t, "a", &since, NULL), BUS_OK);
	ck_assert_uint_eq(pull(&t, items, false).count, 6);
	ck_gap_epoch(&items[0], 0, 3, 0, now);
	ck_item(&items[1], 0, 1, "new1");
	ck_item(&items[5], 0, 5, "new5");
	bus_items_release(items, 6);

	since = (struct cursor){ 0, 3 };
	sub_init(&u, "u");
	ck_assert_int_eq(attach_at(&u, "a", &since, NULL), BUS_OK);
	ck_assert_uint_eq(pull(&u, items, false).count, 2);
	ck_item(&items[0], 0, 4, "new4");
	bus_items_release(items, 2);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
}
END_TEST

START_TEST(test_epochs_differ)
{
	uint64_t seen[64];
	char text[EPOCH_TEXT_MAX];

	/* one channel and one tomb at most: reclaiming "b" forgets "a" */
	open_bus(100, 1000, 1 << 24, 1, 1 << 24);
	for (size_t i = 0; i < NELEM(seen); i++) {
		publish_at("a", "m", 0);
		seen[i] = info_of("a").epoch;
		ck_assert_uint_eq(cursor_epoch_text(seen[i], text), 8);
		for (size_t k = 0; k < i; k++)
			ck_assert_uint_ne(seen[k], seen[i]);
		bus_tick(bus, 5000);
		publish_at("b", "m", 0);
		bus_tick(bus, 5000);
	}
}
END_TEST

START_TEST(test_gaps_across_pull_limit)
{
	/* 3 channels whose histories aged out past the cursors: a pull of
	 * one item at a time must give three gaps, then the messages, and
	 * must not read a ring slot of an unchecked cursor on the way (it
	 * did: next_tap looked at the taps a stopped pull had not reached) */
	struct bus_item items[MAXI];
	uint64_t since[3] = { 0, 0, 0 };
	struct bus_pull out;
	struct tsub t;
	const char *names[] = { "a", "b", "c" };
	int gaps = 0, msgs = 0;

	open_bus(100, 1000, 1 << 24, 100, 1 << 24);
	for (int c = 0; c < 3; c++) {
		for (int i = 0; i < 5; i++)
			publish_at(names[c], "old", 0);
		publish_at(names[c], "new", 2000);
	}
	bus_tick(bus, 1500);
	join(&t, "t", "a,b,c", since);
	for (int k = 0; k < 10; k++) {
		bus_pull(bus, &t.sub, items, 1, SIZE_MAX, false, &out);
		if (out.count == 0)
			break;
		ck_assert_uint_eq(out.count, 1);
		if (items[0].msg == NULL) {
			ck_assert_int_eq(msgs, 0);
			ck_gap(&items[0], (unsigned)gaps, 0, 5);
			gaps++;
		} else {
			ck_assert_uint_eq(items[0].msg->id, 6);
			msgs++;
		}
		ck_assert(out.more == (gaps + msgs < 6));
		bus_items_release(items, 1);
	}
	ck_assert_int_eq(gaps, 3);
	ck_assert_int_eq(msgs, 3);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- several channels on one subscription ---- */

START_TEST(test_multi_channel_order)
{
	struct bus_item items[MAXI];
	struct tsub t, u;
	uint64_t start[3] = { 9, 9, 9 }, since[2] = { 0, 1 };

	open_default_bus();
	sub_init(&t, "t");
	ck_assert_int_eq(attach(&t, "a,b,c", NULL, start), BUS_OK);
	ck_assert(start[0] == 0 && start[1] == 0 && start[2] == 0);
	publish("a", "a1");
	publish("b", "b1");
	publish("a", "a2");
	publish("c", "c1");
	publish("b", "b2");
	publish("a", "a3");
	ck_assert_uint_eq(pull(&t, items, false).count, 6);
	ck_item(&items[0], 0, 1, "a1");
	ck_item(&items[1], 1, 1, "b1");
	ck_item(&items[2], 0, 2, "a2");
	ck_item(&items[3], 2, 1, "c1");
	ck_item(&items[4], 1, 2, "b2");
	ck_item(&items[5], 0, 3, "a3");
	bus_items_release(items, 6);

	/* taps are numbered in the order the subscription names them */
	sub_init(&u, "u");
	ck_assert_int_eq(attach(&u, "c,a", since, NULL), BUS_OK);
	ck_assert_uint_eq(pull(&u, items, false).count, 3);
	ck_item(&items[0], 1, 2, "a2");
	ck_item(&items[1], 0, 1, "c1");
	ck_item(&items[2], 1, 3, "a3");
	bus_items_release(items, 3);
	bus_detach(bus, &t.sub);
	bus_detach(bus, &u.sub);
}
END_TEST

START_TEST(test_multi_channel_gaps_first)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since[2] = { 1, 9 };

	open_bus(2, 60000, 1 << 24, 100, 1 << 24);
	publish("a", "a1");
	publish("a", "a2");
	publish("a", "a3");
	publish("a", "a4");
	publish("b", "b1");
	publish("a", "a5");
	join(&t, "t", "a,b", since);
	ck_assert_uint_eq(pull(&t, items, false).count, 5);
	ck_gap(&items[0], 0, 1, 3);
	ck_gap(&items[1], 1, 9, 0);
	ck_item(&items[2], 0, 4, "a4");
	ck_item(&items[3], 1, 1, "b1");
	ck_item(&items[4], 0, 5, "a5");
	bus_items_release(items, 5);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- pull limits ---- */

START_TEST(test_pull_limits)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;
	uint64_t since = 0;
	size_t l;

	open_default_bus();
	for (int i = 0; i < 5; i++)
		publish("a", "same");
	l = envelope_len("a");
	join(&t, "t", "a", &since);
	bus_pull(bus, &t.sub, items, 2, SIZE_MAX, true, &out);
	ck_assert(out.count == 2 && out.more && !out.parked);
	ck_item(&items[1], 0, 2, "same");
	bus_items_release(items, out.count);
	/* the byte limit stops before the item that would pass it */
	bus_pull(bus, &t.sub, items, MAXI, l + l / 2, true, &out);
	ck_assert(out.count == 1 && out.more);
	ck_item(&items[0], 0, 3, "same");
	bus_items_release(items, out.count);
	/* but at least one item is always taken */
	bus_pull(bus, &t.sub, items, MAXI, 0, true, &out);
	ck_assert(out.count == 1 && out.more);
	bus_items_release(items, out.count);
	bus_pull(bus, &t.sub, items, MAXI, SIZE_MAX, true, &out);
	ck_assert(out.count == 1 && !out.more && !out.parked);
	ck_item(&items[0], 0, 5, "same");
	bus_items_release(items, out.count);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_pull_limit_after_gap)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;
	uint64_t since = 0;

	open_bus(2, 60000, 1 << 24, 100, 1 << 24);
	for (int i = 0; i < 5; i++)
		publish("a", "m");
	join(&t, "t", "a", &since);
	bus_pull(bus, &t.sub, items, 1, SIZE_MAX, true, &out);
	ck_assert_uint_eq(out.count, 1);
	ck_assert(out.more);
	ck_gap(&items[0], 0, 0, 3);
	bus_pull(bus, &t.sub, items, 1, SIZE_MAX, true, &out);
	ck_assert_uint_eq(out.count, 1);
	ck_item(&items[0], 0, 4, "m");
	bus_items_release(items, out.count);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- exclude_sender ---- */

START_TEST(test_exclude_sender)
{
	struct bus_item items[MAXI];
	struct tsub alice, bob, anon;

	open_default_bus();
	join(&alice, "alice", "room", NULL);
	join(&bob, "bob", "room", NULL);
	join(&anon, "", "room", NULL);

	publish_from("room", "from alice", "alice", true);
	/* alice gets no copy, only a skip that moves her cursor */
	ck_assert_uint_eq(pull(&alice, items, false).count, 1);
	ck_assert_ptr_null(items[0].msg);
	ck_assert(items[0].skip);
	ck_assert_uint_eq(items[0].cursor, 1);
	ck_assert_uint_eq(alice.sub.taps[0]->cursor,
			  1); /* skipped, not stuck */
	ck_assert_uint_eq(pull(&bob, items, false).count, 1);
	ck_assert(!items[0].skip);
	ck_item(&items[0], 0, 1, "from alice");
	bus_items_release(items, 1);

	publish_from("room", "from bob", "bob", true);
	publish_from("room", "alice again", "alice", false);
	ck_assert_uint_eq(pull(&alice, items, false).count, 2);
	ck_item(&items[0], 0, 2, "from bob");
	ck_item(&items[1], 0, 3, "alice again");
	bus_items_release(items, 2);
	ck_assert_uint_eq(pull(&bob, items, false).count, 2);
	ck_assert(items[0].skip && items[0].cursor == 2); /* his own */
	ck_item(&items[1], 0, 3, "alice again");
	bus_items_release(items, 2);

	/* a publisher without an id excludes nobody, not the id "" */
	publish_from("room", "anonymous", NULL, true);
	publish_from("room", "empty id", "", true);
	ck_assert_uint_eq(pull(&anon, items, false).count, 5);
	ck_item(&items[3], 0, 4, "anonymous");
	ck_item(&items[4], 0, 5, "empty id");
	bus_items_release(items, 5);
	bus_detach(bus, &alice.sub);
	bus_detach(bus, &bob.sub);
	bus_detach(bus, &anon.sub);
}
END_TEST

START_TEST(test_exclude_sender_wakes_for_cursor)
{
	struct bus_item items[MAXI];
	struct tsub alice;

	/* the sender is woken for its own excluded message so its cursor
	 * moves on the wire, but what it pulls is a skip, not the message */
	open_default_bus();
	join(&alice, "alice", "room", NULL);
	pull_none(&alice, true);
	publish_from("room", "own", "alice", true);
	ck_assert_int_eq(alice.wakes, 1);
	ck_assert(!alice.sub.parked);
	publish_from("room", "other", "bob", true);
	ck_assert_uint_eq(pull(&alice, items, true).count, 2);
	ck_assert(items[0].skip && items[0].msg == NULL);
	ck_assert_uint_eq(items[0].cursor, 1);
	ck_item(&items[1], 0, 2, "other");
	bus_items_release(items, 2);
	bus_detach(bus, &alice.sub);
}
END_TEST

/* ---- park and wake ---- */

START_TEST(test_park_and_wake)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;

	open_default_bus();
	join(&t, "t", "a", NULL);
	pull_none(&t, false); /* may not park: does not */
	ck_assert_int_eq(t.parks, 0);
	ck_assert(!t.sub.parked);
	pull_none(&t, true);
	ck_assert_int_eq(t.parks, 1);
	ck_assert(t.sub.parked);

	publish("a", "m1");
	ck_assert_int_eq(t.wakes, 1);
	ck_assert(!t.sub.parked);
	publish("a", "m2"); /* already awake: no second wake */
	publish("b", "elsewhere");
	ck_assert_int_eq(t.wakes, 1);

	out = pull(&t, items, true); /* news: no park */
	ck_assert_uint_eq(out.count, 2);
	ck_assert(!out.parked);
	ck_assert_int_eq(t.parks, 1);
	bus_items_release(items, 2);
	pull_none(&t, true);
	ck_assert_int_eq(t.parks, 2);
	publish("a", "m3");
	ck_assert_int_eq(t.wakes, 2);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- slow consumers ---- */

START_TEST(test_slow_consumer)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub lazy, steady, parker;
	unsigned long long slow = atomic_load(&metrics.slow_consumers);
	size_t l;
	char text[8];

	open_default_bus();
	publish("s", "m1");
	l = envelope_len("s");
	bus_free(bus);

	open_bus(100, 60000, 1 << 24, 100, 2 * l + l / 2);
	join(&lazy, "lazy", "s", NULL);     /* never reads */
	join(&steady, "steady", "s", NULL); /* reads after each message */
	join(&parker, "parker", "s", NULL); /* reads when woken, parks */
	pull_none(&parker, true);
	for (int i = 1; i <= 4; i++) {
		snprintf(text, sizeof text, "m%d", i);
		publish("s", text);
		ck_assert_uint_eq(pull(&steady, items, false).count, 1);
		bus_items_release(items, 1);
		ck_assert_int_eq(parker.wakes, i);
		ck_assert_uint_eq(pull(&parker, items, true).count, 1);
		bus_items_release(items, 1);
		pull_none(&parker, true);
		/* 3 l behind: past the limit of 2.5 l */
		ck_assert_int_eq(lazy.sub.end,
				 i < 3 ? SUB_END_NONE : SUB_END_SLOW);
		ck_assert_int_eq(lazy.cuts, i < 3 ? 0 : 1);
	}
	ck_assert_int_eq(steady.sub.end, SUB_END_NONE);
	ck_assert_int_eq(parker.sub.end, SUB_END_NONE);
	ck_assert_int_eq(steady.cuts + parker.cuts, 0);
	ck_assert_uint_eq(atomic_load(&metrics.slow_consumers) - slow, 1);

	out = pull(&lazy, items, true);
	ck_assert_int_eq(out.end, SUB_END_SLOW);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(!out.parked);
	bus_detach(bus, &lazy.sub);
	bus_detach(bus, &steady.sub);
	bus_detach(bus, &parker.sub);
}
END_TEST

START_TEST(test_slow_lag_counts_from_attach)
{
	/* history from before the attach is not lag */
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 0;
	size_t l;

	open_default_bus();
	publish("s", "m1");
	l = envelope_len("s");
	bus_free(bus);

	open_bus(100, 60000, 1 << 24, 100, l + l / 2);
	for (int i = 0; i < 10; i++)
		publish("s", "mm");
	join(&t, "t", "s", &since);
	publish("s", "mm");
	ck_assert_int_eq(t.sub.end, SUB_END_NONE);
	ck_assert_uint_eq(pull(&t, items, false).count, 11);
	bus_items_release(items, 11);
	publish("s", "mm");
	ck_assert_int_eq(t.sub.end, SUB_END_NONE);
	publish("s", "mm");
	ck_assert_int_eq(t.sub.end, SUB_END_SLOW);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- kill and shutdown ---- */

START_TEST(test_kill)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub p, q, r;
	uint64_t gone;

	open_default_bus();
	join(&p, "p", "a", NULL);
	join(&q, "q", "a", NULL);
	join(&r, "r", "a", NULL);
	ck_assert(p.sub.id != q.sub.id && q.sub.id != r.sub.id &&
		  p.sub.id != r.sub.id);
	pull_none(&p, true);

	bus_kill(bus, p.sub.id, SUB_END_DEAD); /* parked: woken to see it */
	ck_assert_int_eq(p.sub.end, SUB_END_DEAD);
	ck_assert_int_eq(p.wakes, 1);
	ck_assert_int_eq(p.cuts, 0);
	ck_assert(!p.sub.parked);

	publish("a", "m");
	bus_kill(bus, q.sub.id, SUB_END_DEAD); /* running: sees it next pull */
	ck_assert_int_eq(q.sub.end, SUB_END_DEAD);
	out = pull(&q, items, true);
	ck_assert_int_eq(out.end, SUB_END_DEAD);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(!out.parked);

	bus_kill(bus, p.sub.id, SUB_END_SHUTDOWN); /* the first reason stays */
	ck_assert_int_eq(p.sub.end, SUB_END_DEAD);
	ck_assert_int_eq(p.wakes, 1);

	gone = r.sub.id;
	bus_kill(bus, gone + 1000, SUB_END_DEAD); /* unknown: nothing */
	bus_kill(bus, 0, SUB_END_DEAD);
	ck_assert_int_eq(r.sub.end, SUB_END_NONE);
	bus_detach(bus, &r.sub);
	bus_kill(bus, gone, SUB_END_DEAD); /* detached: not touched */
	ck_assert_int_eq(r.sub.end, SUB_END_NONE);
	ck_assert_int_eq(r.wakes + r.cuts, 0);
	bus_detach(bus, &p.sub);
	bus_detach(bus, &q.sub);
}
END_TEST

START_TEST(test_kill_many_ids)
{
	/* enough subscribers to grow the id table; each id finds its own */
	enum { N = 3000 };
	struct tsub *subs = calloc(N, sizeof *subs);

	ck_assert_ptr_nonnull(subs);
	open_default_bus();
	for (int i = 0; i < N; i++)
		join(&subs[i], "x", "a", NULL);
	for (int i = 0; i < N; i += 7)
		bus_kill(bus, subs[i].sub.id, SUB_END_DEAD);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(subs[i].sub.end,
				 i % 7 == 0 ? SUB_END_DEAD : SUB_END_NONE);
	for (int i = 0; i < N; i++)
		bus_detach(bus, &subs[i].sub);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_SSE), 0);
	free(subs);
}
END_TEST

struct kill_call {
	uint64_t id;
};

static void *kill_thread(void *arg)
{
	const struct kill_call *k = arg;

	bus_kill(bus, k->id, SUB_END_DEAD);
	return NULL;
}

/* bus_kill(id) must return; a cycle in the id table would hold it (and
 * the bus lock) forever, so it runs on a thread we can give up on. */
static void kill_returns(uint64_t id)
{
	struct kill_call k = { id };
	struct timespec until;
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, kill_thread, &k), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	ck_assert_msg(pthread_timedjoin_np(t, NULL, &until) == 0,
		      "bus_kill(%llu) did not return: the id table loops",
		      (unsigned long long)id);
}

START_TEST(test_id_table_growth)
{
	/* The table grows at 2,048 and 4,096 subscribers; the subscriber
	 * that makes it grow has id 2,048 (then 4,096), a multiple of the new
	 * size. Once all are gone and their memory freed, no id, present or
	 * not, may reach one of them (ASan reports a read of freed memory). */
	enum { N = 4200 };
	struct tsub *subs = calloc(N, sizeof *subs);
	const uint64_t probes[] = { 0, 1, 2048, 4096, 8192, 2049, 4097, 16384,
				    N, N + 1, UINT64_MAX };

	ck_assert_ptr_nonnull(subs);
	open_default_bus();
	for (int i = 0; i < N; i++)
		join(&subs[i], "x", "a", NULL);
	for (int i = 0; i < N; i++)
		ck_assert_uint_eq(subs[i].sub.id, (uint64_t)i + 1);
	/* every id still finds its own subscriber, and only it */
	kill_returns(2048);
	kill_returns(4096);
	ck_assert_int_eq(subs[2047].sub.end, SUB_END_DEAD);
	ck_assert_int_eq(subs[4095].sub.end, SUB_END_DEAD);
	ck_assert_int_eq(subs[0].sub.end, SUB_END_NONE);
	for (int i = 0; i < N; i++)
		bus_detach(bus, &subs[i].sub);
	memset(subs, 0xA5, N * sizeof *subs);
	free(subs);
	for (size_t i = 0; i < NELEM(probes); i++)
		kill_returns(probes[i]);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_SSE), 0);
}
END_TEST

START_TEST(test_shutdown)
{
	struct bus_item items[MAXI];
	struct tsub p, q, late;
	uint64_t id = 0;
	long alive;

	open_default_bus();
	join(&p, "p", "a", NULL);
	join(&q, "q", "a,b", NULL);
	pull_none(&p, true);
	bus_shutdown(bus);
	ck_assert_int_eq(p.sub.end, SUB_END_SHUTDOWN);
	ck_assert_int_eq(q.sub.end, SUB_END_SHUTDOWN);
	ck_assert_int_eq(p.wakes, 1);
	ck_assert_int_eq(q.wakes + q.cuts, 0);
	ck_assert_int_eq(pull(&q, items, true).end, SUB_END_SHUTDOWN);

	sub_init(&late, "late");
	ck_assert_int_eq(attach(&late, "a", NULL, NULL), BUS_SHUTTING_DOWN);
	ck_assert_ptr_null(late.sub.taps);
	alive = message_alive();
	ck_assert_int_eq(try_publish("a", "m", NULL, false, 0, &id),
			 BUS_SHUTTING_DOWN);
	ck_assert_int_eq(message_alive(), alive); /* refused and freed */
	bus_detach(bus, &late.sub);               /* never attached: harmless */
	bus_detach(bus, &p.sub);
	bus_detach(bus, &q.sub);
}
END_TEST

/* ---- channels come and go ---- */

START_TEST(test_idle_channel_reclaimed)
{
	struct bus_channel_info info;
	struct bus_stats st;
	struct tsub t;

	open_bus(100, 1000, 1 << 24, 100, 1 << 24);
	join(&t, "t", "y", NULL); /* watched but empty: kept */
	bus_tick(bus, 10);
	info = info_of("y");
	ck_assert_uint_eq(info.subscribers[TRANSPORT_SSE], 1);
	ck_assert_uint_eq(info.retained, 0);
	bus_detach(bus, &t.sub);
	ck_assert_uint_eq(info_of("y").subscribers[TRANSPORT_SSE], 0);
	bus_tick(bus, 20);
	ck_assert(!channel_exists("y"));
	ck_assert_int_eq(bus_info(bus, LIT("y"), &info), -1);

	publish_at("x", "m", 0); /* unwatched but not empty: kept */
	bus_tick(bus, 500);
	ck_assert(channel_exists("x"));
	bus_tick(bus, 5000);
	ck_assert(!channel_exists("x"));
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.channels, 0);
	ck_assert_uint_eq(st.retained, 0);
	ck_assert_uint_eq(st.retained_bytes, 0);

	/* reclaimed, it is a tomb: its epoch and last id, nothing else;
	 * used again, it goes on from there */
	ck_assert_int_eq(bus_info(bus, LIT("x"), &info), -1);
	ck_assert_uint_eq(info.last_id, 1);
	ck_assert_uint_eq(info.oldest_id, 2);
	ck_assert_uint_ne(info.epoch, 0);
	ck_assert_uint_eq(publish("x", "again"), 2);
	ck_assert_uint_eq(info_of("x").epoch, info.epoch);
}
END_TEST

START_TEST(test_tombs_bounded)
{
	/* tombs are bounded by the channel limit, oldest first; a name whose
	 * tomb is gone starts a new epoch at 1 */
	struct bus_channel_info info;
	uint64_t first;
	char name[16];

	open_bus(100, 1000, 1 << 24, 3, 1 << 24);
	publish_at("a", "m", 0);
	first = info_of("a").epoch;
	bus_tick(bus, 5000);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "n%d", i);
		publish_at(name, "m", 5000);
		bus_tick(bus, 10000 + (uint64_t)i * 5000);
		ck_assert(!channel_exists(name));
	}
	/* a's tomb went first: nothing is left of it */
	ck_assert_int_eq(bus_info(bus, LIT("a"), &info), -1);
	ck_assert_uint_eq(info.epoch, 0);
	ck_assert_uint_eq(info.last_id, 0);
	ck_assert_uint_eq(publish("a", "again"), 1);
	ck_assert_uint_ne(info_of("a").epoch, first);
	/* the newest three tombs remain, and live channels stay within the
	 * limit whatever the tombs */
	ck_assert_int_eq(bus_info(bus, LIT("n2"), &info), -1);
	ck_assert_uint_eq(info.last_id, 1);
	publish("n1", "m");
	publish("n2", "m");
	ck_assert_int_eq(try_publish("z", "m", NULL, false, 0, &first),
			 BUS_TOO_MANY_CHANNELS);
	ck_assert_uint_eq(bus_channel_chain_max(bus) > 0, 1);
}
END_TEST

START_TEST(test_max_channels)
{
	struct tsub t, u;
	struct bus_stats st;
	uint64_t id = 0;
	long alive;

	open_bus(100, 1000, 1 << 24, 2, 1 << 24);
	publish("a", "m");
	publish("b", "m");
	alive = message_alive();
	ck_assert_int_eq(try_publish("c", "m", NULL, false, 0, &id),
			 BUS_TOO_MANY_CHANNELS);
	ck_assert_int_eq(message_alive(), alive);
	ck_assert(!channel_exists("c"));
	ck_assert_uint_eq(publish("a", "m"), 2); /* existing ones still work */

	sub_init(&t, "t");
	ck_assert_int_eq(attach(&t, "a,c", NULL, NULL), BUS_TOO_MANY_CHANNELS);
	ck_assert_ptr_null(t.sub.taps);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.subscribers, 0);
	ck_assert_uint_eq(st.channels, 2);
	bus_detach(bus, &t.sub); /* refused: harmless */
	join(&u, "u", "b,a", NULL);
	bus_detach(bus, &u.sub);

	bus_tick(bus, 1 << 20); /* both expire and go */
	ck_assert_uint_eq(publish("c", "m"), 1);
}
END_TEST

START_TEST(test_subscriber_counts)
{
	struct bus_channel_info info;
	struct tsub s1, s2, w;

	open_default_bus();
	join(&s1, "s1", "a", NULL);
	join(&s2, "s2", "a,b", NULL);
	sub_init(&w, "w");
	w.sub.transport = &transport_ws;
	w.sub.host = &fake_host;
	ck_assert_int_eq(attach(&w, "a", NULL, NULL), BUS_OK);
	info = info_of("a");
	ck_assert_uint_eq(info.subscribers[TRANSPORT_SSE], 2);
	ck_assert_uint_eq(info.subscribers[TRANSPORT_WS], 1);
	ck_assert_uint_eq(info.subscribers[TRANSPORT_POLL], 0);
	ck_assert_uint_eq(info_of("b").subscribers[TRANSPORT_SSE], 1);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_SSE), 2);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_WS), 1);
	bus_detach(bus, &s2.sub);
	bus_detach(bus, &s2.sub); /* twice: harmless */
	ck_assert_uint_eq(info_of("b").subscribers[TRANSPORT_SSE], 0);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_SSE), 1);
	bus_detach(bus, &s1.sub);
	bus_detach(bus, &w.sub);
	ck_assert_uint_eq(bus_subscribers_of(bus, TRANSPORT_WS), 0);
}
END_TEST

/* ---- deadlines ---- */

START_TEST(test_deadline)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;

	open_default_bus();
	join(&t, "t", "a", NULL);
	bus_set_deadline(bus, &t.sub, 1000);
	pull_none(&t, true);
	bus_tick(bus, 999);
	ck_assert_int_eq(t.wakes, 0);
	bus_tick(bus, 1000);
	ck_assert_int_eq(t.wakes, 1);
	bus_tick(bus, 1001); /* already due: not woken again */
	ck_assert_int_eq(t.wakes, 1);
	out = pull(&t, items, true);
	ck_assert(out.timer);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(!out.parked);
	ck_assert_int_eq(t.parks, 1);

	bus_set_deadline(bus, &t.sub, 0); /* none */
	bus_tick(bus, 5000);
	out = pull(&t, items, true);
	ck_assert(!out.timer);
	ck_assert(out.parked);
	bus_detach(bus, &t.sub);
}
END_TEST

/* The tick looks at what is due, not at what exists: 5,000 parked
 * subscribers, each on a channel of its own with one message, cost
 * nothing to a tick before their deadlines and their messages' age; then
 * each is looked at about once. (It walked every subscriber and every
 * channel on every tick: 1,000,000 looks for the 100 ticks below.) */
START_TEST(test_tick_cost_is_what_is_due)
{
	enum { N = 5000 };
	static struct tsub subs[N];
	struct bus_stats st;
	uint64_t before;
	char name[16];

	open_bus(100, 60000, 1 << 26, 2 * N, 1 << 24);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "c%d", i);
		publish_at(name, "m", 50000);
		join(&subs[i], "t", name, NULL); /* at the tail: parks */
		bus_set_deadline(bus, &subs[i].sub, 100000 + (uint64_t)i);
		pull_none(&subs[i], true);
	}
	bus_tick(bus, 1000); /* the channels created since the last tick */
	bus_stats(bus, &st);
	before = st.tick_visits;
	for (uint64_t t = 2000; t < 100000; t += 1000)
		bus_tick(bus, t);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.tick_visits - before, 0);
	ck_assert_int_eq(subs[0].wakes, 0);
	bus_tick(bus, 100000 + N - 1); /* every deadline */
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.tick_visits - before, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(subs[i].wakes, 1);
	before = st.tick_visits;
	bus_tick(bus, 110000); /* every message's age: history, then idle */
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.retained, 0);
	ck_assert_uint_le(st.tick_visits - before, 2 * N);
	ck_assert_uint_eq(st.channels, N); /* each still has its subscriber */
	for (int i = 0; i < N; i++)
		bus_detach(bus, &subs[i].sub);
	bus_tick(bus, 111000);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.channels, 0);
}
END_TEST

START_TEST(test_deadline_with_messages)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;

	open_default_bus();
	join(&t, "t", "a", NULL);
	bus_set_deadline(bus, &t.sub, 100);
	publish("a", "m");
	bus_tick(bus, 100);
	ck_assert_int_eq(t.wakes, 0); /* not parked: nothing to wake */
	out = pull(&t, items, true);
	ck_assert(out.timer);
	ck_assert_uint_eq(out.count, 1);
	bus_items_release(items, 1);
	bus_detach(bus, &t.sub);
}
END_TEST

START_TEST(test_deadline_period)
{
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub t;
	uint64_t before, after;

	open_default_bus();
	sub_init(&t, "t");
	t.sub.period_ms = 15000;
	ck_assert_int_eq(attach(&t, "a", NULL, NULL), BUS_OK);
	bus_set_deadline(bus, &t.sub, 1000);
	pull_none(&t, true);
	bus_tick(bus, 1000);
	ck_assert_int_eq(t.wakes, 1);
	before = bus_now_ms();
	out = pull(&t, items, true);
	after = bus_now_ms();
	ck_assert(out.timer);
	/* the heartbeat moves on by one period from now */
	ck_assert_uint_ge(t.sub.deadline_ms, before + 15000);
	ck_assert_uint_le(t.sub.deadline_ms, after + 15000);

	bus_set_deadline(bus, &t.sub, 1);
	publish("a", "m");
	before = bus_now_ms();
	ck_assert_uint_eq(pull(&t, items, true).count, 1);
	ck_assert_uint_ge(t.sub.deadline_ms, before + 15000);
	bus_items_release(items, 1);
	bus_detach(bus, &t.sub);
}
END_TEST

/* ---- references ---- */

START_TEST(test_refcounts)
{
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since = 0;
	long base = message_alive();

	open_bus(2, 60000, 1 << 24, 100, 1 << 24);
	publish("a", "m1");
	publish("a", "m2");
	publish("a", "m3");
	ck_assert_int_eq(message_alive(), base + 2); /* m1 evicted, freed */
	join(&t, "t", "a", &since);
	ck_assert_uint_eq(pull(&t, items, false).count, 3);
	ck_gap(&items[0], 0, 0, 1);
	publish("a", "m4");
	publish("a", "m5");
	/* m2 and m3 left history but the pulled items still hold them */
	ck_assert_int_eq(message_alive(), base + 4);
	ck_item(&items[1], 0, 2, "m2");
	ck_assert(
		memcmp(message_json(items[2].msg) + items[2].msg->json_len - 8,
		       ",\"id\":3}", 8) == 0);
	bus_items_release(items, 3);
	ck_assert_int_eq(message_alive(), base + 2);
	ck_assert_uint_eq(pull(&t, items, false).count, 2);
	bus_detach(bus, &t.sub);
	bus_free(bus); /* the items outlive the bus */
	bus = NULL;
	ck_assert_int_eq(message_alive(), base + 2);
	ck_item(&items[1], 0, 5, "m5");
	bus_items_release(items, 2);
	ck_assert_int_eq(message_alive(), base);
}
END_TEST

START_TEST(test_free_with_history)
{
	long base = message_alive();
	char name[16];

	open_bus(100, 60000, 1 << 24, 1000, 1 << 24);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "ch%d", i % 150);
		publish(name, "m");
	}
	ck_assert_int_eq(message_alive(), base + 300);
	bus_free(bus);
	bus = NULL;
	ck_assert_int_eq(message_alive(), base);
}
END_TEST

/* ---- threads ---- */

enum { THREADS = 4, PER_THREAD = 2000 };

static void *publisher(void *arg)
{
	const char *channel = arg;
	struct payload p;
	struct message_spec spec = { .channel = channel, .data = &p };

	payload_from_text(LIT("x"), &p);
	for (int i = 0; i < PER_THREAD; i++) {
		struct cursor id;
		struct message *m = message_new(&spec, TS_MS, 0);

		if (bus_publish(bus, channel, strlen(channel), m, &id) !=
		    BUS_OK)
			break;
	}
	payload_free(&p);
	return NULL;
}

START_TEST(test_concurrent_publish)
{
	/* four publishers on two channels, one reader: per-channel ids
	 * strictly follow on, nothing lost, nothing twice */
	static const char *const channels[THREADS] = { "p", "q", "p", "q" };
	pthread_t th[THREADS];
	struct bus_item items[MAXI];
	struct tsub t;
	uint64_t since[2] = { 0, 0 }, last[2] = { 0, 0 };
	size_t got = 0;

	open_bus(2 * THREADS * PER_THREAD, 60000, SIZE_MAX, 100, SIZE_MAX);
	join(&t, "t", "p,q", since);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, publisher,
						(void *)channels[i]),
				 0);
	while (got < THREADS * PER_THREAD) {
		struct bus_pull out = pull(&t, items, false);

		for (size_t i = 0; i < out.count; i++) {
			unsigned k = items[i].tap;

			ck_assert_ptr_nonnull(items[i].msg);
			ck_assert_uint_eq(items[i].msg->id, last[k] + 1);
			last[k] = items[i].msg->id;
		}
		bus_items_release(items, out.count);
		got += out.count;
		if (out.count == 0)
			sched_yield();
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	pull_none(&t, false);
	ck_assert_uint_eq(last[0], 2 * PER_THREAD);
	ck_assert_uint_eq(last[1], 2 * PER_THREAD);
	bus_detach(bus, &t.sub);
}
END_TEST

static Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc;

#define CASE(name)                                      \
	tc = tcase_create(name);                        \
	tcase_add_checked_fixture(tc, setup, teardown); \
	tcase_set_timeout(tc, 60);                      \
	suite_add_tcase(s, tc)

	CASE("history");
	tcase_add_test(tc, test_ids_per_channel);
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_history_count_evicts_oldest);
	tcase_add_test(tc, test_history_bytes_global);
	tcase_add_test(tc, test_history_bytes_keeps_newest);
	tcase_add_test(tc, test_history_bytes_counts_all_held);
	tcase_add_test(tc, test_history_age);
	tcase_add_test(tc, test_ring_wraps_then_grows);
	tcase_add_test(tc, test_many_channels);
	tcase_add_test(tc, test_channel_hash_flooding);

	CASE("cursors");
	tcase_add_test(tc, test_attach_at_tail);
	tcase_add_test(tc, test_since_zero_gets_all);
	tcase_add_test(tc, test_gap_old_cursor);
	tcase_add_test(tc, test_gap_future_cursor);
	tcase_add_test(tc, test_gap_future_cursor_after_eviction);
	tcase_add_test(tc, test_epoch_matches);
	tcase_add_test(tc, test_epoch_other_is_gap);
	tcase_add_test(tc, test_epoch_after_reclaim);
	tcase_add_test(tc, test_epochs_differ);
	tcase_add_test(tc, test_gaps_across_pull_limit);
	tcase_add_test(tc, test_multi_channel_order);
	tcase_add_test(tc, test_multi_channel_gaps_first);
	tcase_add_test(tc, test_pull_limits);
	tcase_add_test(tc, test_pull_limit_after_gap);
	tcase_add_test(tc, test_exclude_sender);
	tcase_add_test(tc, test_exclude_sender_wakes_for_cursor);

	CASE("subscribers");
	tcase_add_test(tc, test_park_and_wake);
	tcase_add_test(tc, test_slow_consumer);
	tcase_add_test(tc, test_slow_lag_counts_from_attach);
	tcase_add_test(tc, test_kill);
	tcase_add_test(tc, test_kill_many_ids);
	tcase_add_test(tc, test_id_table_growth);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_subscriber_counts);

	CASE("housekeeping");
	tcase_add_test(tc, test_idle_channel_reclaimed);
	tcase_add_test(tc, test_tombs_bounded);
	tcase_add_test(tc, test_tombs_trimmed_mid_walk);
	tcase_add_test(tc, test_max_channels);
	tcase_add_test(tc, test_deadline);
	tcase_add_test(tc, test_deadline_with_messages);
	tcase_add_test(tc, test_tick_cost_is_what_is_due);
	tcase_add_test(tc, test_deadline_period);
	tcase_add_test(tc, test_refcounts);
	tcase_add_test(tc, test_free_with_history);
	tcase_add_test(tc, test_concurrent_publish);
#undef CASE
	return s;
}

UNIT_MAIN(bus_suite)
