/* The bus as a node of the Redis engine (bus_set_remote): channels wait
 * for Redis' epoch and ids (bus_sync) before anyone reads them, messages
 * come in as (epoch, id) from Redis (bus_ingest) with duplicates dropped,
 * holes and other epochs reported, taps joined "from now" start at Redis'
 * head, cursors of another epoch are gaps, reclaim unsubscribes, and
 * joins go to Redis instead of the local ring. No Redis here: the engine
 * is a fake that records what the bus asked of it. */
#include "unit.h"

#include "bus.h"
#include "message.h"
#include "payload.h"
#include "transport.h"

#include <stdio.h>
#include <string.h>

#define MAXI 16

struct tsub {
	struct subscriber sub;
	int parks, wakes;
};

static void fake_park(struct subscriber *s)
{
	((struct tsub *)s)->parks++;
}

static void fake_wake(struct subscriber *s)
{
	((struct tsub *)s)->wakes++;
}

static void fake_cut(struct subscriber *s)
{
	(void)s;
}

static const struct sub_host fake_host = {
	.name = "fake",
	.park = fake_park,
	.wake = fake_wake,
	.cut = fake_cut,
};
/* ---- the fake engine ---- */

static int activated, deactivated, published;
static char last_channel[64], last_event[EVENT_NAME_MAX + 1];

static void fake_activate(void *cls, const char *ch, size_t len)
{
	(void)cls;
	activated++;
	snprintf(last_channel, sizeof last_channel, "%.*s", (int)len, ch);
}

static void fake_deactivate(void *cls, const char *ch, size_t len)
{
	(void)cls;
	deactivated++;
	snprintf(last_channel, sizeof last_channel, "%.*s", (int)len, ch);
}

static void fake_publish(void *cls, const char *ch, size_t len,
			 struct message *m)
{
	(void)cls;
	(void)ch;
	(void)len;
	published++;
	snprintf(last_event, sizeof last_event, "%s", m->event);
	message_unref(m);
}

static void fake_counts(void *cls, const char *ch, size_t len)
{
	(void)cls;
	(void)ch;
	(void)len;
}

static int checked, backfills;
static uint64_t last_ticket, fill_sub, fill_after, fill_count;

static void fake_check(void *cls, const char *ch, size_t len, uint64_t ticket)
{
	(void)cls;
	(void)ch;
	(void)len;
	checked++;
	last_ticket = ticket;
}

static void fake_backfill(void *cls, const char *ch, size_t len,
			  uint64_t sub_id, uint64_t after, uint64_t count)
{
	(void)cls;
	(void)ch;
	(void)len;
	backfills++;
	fill_sub = sub_id;
	fill_after = after;
	fill_count = count;
}

static const struct bus_remote_ops fake_engine = {
	.counts = fake_counts,
	.activate = fake_activate,
	.deactivate = fake_deactivate,
	.publish = fake_publish,
	.check = fake_check,
	.backfill = fake_backfill,
};

static struct bus *bus;
static long alive_before;

static void setup(void)
{
	const struct bus_config cfg = {
		.history_size = 8,
		.history_age_ms = 60000,
		.history_bytes = 1 << 20,
		.max_channels = 100,
		.lag_limit = 1 << 20,
		.presence_window_ms = 1000,
		.max_pollers = 100,
	};

	alive_before = message_alive();
	activated = deactivated = published = 0;
	checked = backfills = 0;
	bus = bus_new(&cfg);
	bus_set_remote(bus, &fake_engine, NULL);
}

static void teardown(void)
{
	bus_free(bus);
	ck_assert_int_eq(message_alive(), alive_before);
}

static struct message *msg(const char *channel, const char *text)
{
	struct payload p = { .json = (char *)text, .len = strlen(text) };
	struct message_spec spec = { .channel = channel, .data = &p };

	return message_new(&spec, 1700000000000LL, 1);
}

static enum bus_ingest ingest(const char *ch, uint64_t epoch, uint64_t id,
			      uint64_t *last)
{
	uint64_t ignored;

	return bus_ingest(bus, ch, strlen(ch), msg(ch, "1"), epoch, id,
			  last ? last : &ignored);
}

static void attach(struct tsub *t, const char *ch, const struct cursor *since,
		   struct cursor *start)
{
	struct channel_list list = { .count = 1 };

	memset(t, 0, sizeof *t);
	t->sub.transport = &transport_sse;
	t->sub.host = &fake_host;
	list.name[0] = ch;
	list.len[0] = strlen(ch);
	ck_assert_int_eq(bus_attach(bus, &t->sub, &list, since, start), BUS_OK);
}

/* Pull everything: ids into ids[] (0 for a gap), the count. */
static size_t pull(struct tsub *t, uint64_t *ids, uint64_t *epochs)
{
	struct bus_item items[MAXI];
	struct bus_pull out;

	bus_pull(bus, &t->sub, items, MAXI, 1 << 20, true, &out);
	for (size_t i = 0; i < out.count; i++) {
		ids[i] = items[i].msg ? items[i].msg->id : 0;
		if (epochs)
			epochs[i] = items[i].epoch;
	}
	bus_items_release(items, out.count);
	return out.count;
}

START_TEST(test_unsynced_channel_waits)
{
	struct tsub a;
	struct cursor start;
	uint64_t ids[MAXI];

	attach(&a, "c", NULL, &start);
	ck_assert_int_eq(activated, 1);
	ck_assert_str_eq(last_channel, "c");
	/* Redis has not answered: nothing to read, no gap made up */
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	ck_assert_int_eq(a.parks, 1);
	ck_assert_int_eq(ingest("c", 77, 6, NULL), BUS_INGEST_UNSYNCED);
	/* a channel nobody here uses is not fed */
	ck_assert_int_eq(ingest("other", 77, 1, NULL), BUS_INGEST_UNSYNCED);
	bus_detach(bus, &a.sub);
}
END_TEST

START_TEST(test_tail_starts_at_redis_head)
{
	struct tsub a;
	struct cursor start;
	uint64_t ids[MAXI], epochs[MAXI], last;

	attach(&a, "c", NULL, &start);
	pull(&a, ids, NULL);
	/* Redis keeps 3..5 of epoch 77 */
	ck_assert_int_eq(bus_sync(bus, LIT("c"), 77, 5, 3), 0);
	ck_assert_int_eq(a.wakes, 1);
	for (uint64_t id = 3; id <= 5; id++)
		ck_assert_int_eq(ingest("c", 77, id, &last), BUS_INGESTED);
	ck_assert_uint_eq(last, 5);
	/* it joined "from now": what Redis had before is not new to it */
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	ck_assert_int_eq(ingest("c", 77, 6, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&a, ids, epochs), 1);
	ck_assert_uint_eq(ids[0], 6);
	ck_assert_uint_eq(epochs[0], 77);
	bus_detach(bus, &a.sub);
}
END_TEST

START_TEST(test_resume_same_and_other_epoch)
{
	struct cursor same = { 77, 3 }, other = { 99, 3 }, start;
	uint64_t ids[MAXI], epochs[MAXI];
	struct tsub a, b;

	attach(&a, "c", &same, &start);
	attach(&b, "c", &other, &start);
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	ck_assert_int_eq(bus_sync(bus, LIT("c"), 77, 5, 1), 0);
	for (uint64_t id = 1; id <= 5; id++)
		ck_assert_int_eq(ingest("c", 77, id, NULL), BUS_INGESTED);
	/* the same epoch resumes after its cursor, without a gap */
	ck_assert_uint_eq(pull(&a, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 4);
	ck_assert_uint_eq(ids[1], 5);
	/* another epoch: the gap first, then all Redis kept */
	ck_assert_uint_eq(pull(&b, ids, epochs), 6);
	ck_assert_uint_eq(ids[0], 0);
	ck_assert_uint_eq(epochs[0], 77);
	ck_assert_uint_eq(ids[1], 1);
	ck_assert_uint_eq(ids[5], 5);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

START_TEST(test_holes_and_duplicates)
{
	struct tsub a;
	struct cursor start;
	uint64_t ids[MAXI], last;

	attach(&a, "c", NULL, &start);
	bus_sync(bus, LIT("c"), 77, 5, 6);
	/* a lost notification: 7 cannot come before 6 */
	ck_assert_int_eq(ingest("c", 77, 7, &last), BUS_INGEST_HOLE);
	ck_assert_uint_eq(last, 5);
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	ck_assert_int_eq(ingest("c", 77, 6, NULL), BUS_INGESTED);
	ck_assert_int_eq(ingest("c", 77, 7, NULL), BUS_INGESTED);
	/* the notification of 6, late, after the read that filled it */
	ck_assert_int_eq(ingest("c", 77, 6, &last), BUS_INGEST_DUPLICATE);
	ck_assert_uint_eq(last, 7);
	ck_assert_uint_eq(pull(&a, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 6);
	ck_assert_uint_eq(ids[1], 7);
	/* a sync of what we have changes nothing */
	ck_assert_int_eq(bus_sync(bus, LIT("c"), 77, 7, 1), 0);
	ck_assert_int_eq(ingest("c", 77, 8, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&a, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 8);
	bus_detach(bus, &a.sub);
}
END_TEST

START_TEST(test_redis_lost_channel_is_a_gap)
{
	struct tsub a;
	struct cursor start;
	uint64_t ids[MAXI], epochs[MAXI];

	attach(&a, "c", NULL, &start);
	bus_sync(bus, LIT("c"), 77, 0, 1);
	ck_assert_int_eq(ingest("c", 77, 1, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&a, ids, NULL), 1);
	/* Redis came back empty: the channel starts again, epoch 78 */
	ck_assert_int_eq(ingest("c", 78, 1, NULL), BUS_INGEST_RESYNC);
	ck_assert_int_eq(bus_sync(bus, LIT("c"), 78, 1, 1), 0);
	ck_assert_int_eq(ingest("c", 78, 1, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&a, ids, epochs), 2);
	ck_assert_uint_eq(ids[0], 0); /* the gap, never silence */
	ck_assert_uint_eq(epochs[0], 78);
	ck_assert_uint_eq(ids[1], 1);
	ck_assert_uint_eq(epochs[1], 78);
	bus_detach(bus, &a.sub);
}
END_TEST

START_TEST(test_hole_redis_no_longer_holds)
{
	struct cursor since = { 77, 2 }, start;
	struct tsub a;
	uint64_t ids[MAXI];

	attach(&a, "c", &since, &start);
	bus_sync(bus, LIT("c"), 77, 3, 1);
	for (uint64_t id = 1; id <= 3; id++)
		ingest("c", 77, id, NULL);
	ck_assert_uint_eq(pull(&a, ids, NULL), 1);
	/* Redis was away while 4..20 came and went out of its history */
	ck_assert_int_eq(bus_sync(bus, LIT("c"), 77, 25, 18), 0);
	for (uint64_t id = 18; id <= 25; id++)
		ck_assert_int_eq(ingest("c", 77, id, NULL), BUS_INGESTED);
	/* Redis is asked for 4..17 before anything is called a gap */
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	ck_assert_int_eq(backfills, 1);
	ck_assert_uint_eq(fill_after, 3);
	bus_backfill(bus, LIT("c"), fill_sub, 77, NULL, NULL, 0);
	ck_assert_uint_eq(pull(&a, ids, NULL), 9);
	ck_assert_uint_eq(ids[0], 0);
	ck_assert_uint_eq(ids[1], 18);
	bus_detach(bus, &a.sub);
}
END_TEST

START_TEST(test_reclaim_unsubscribes_and_joins_go_to_redis)
{
	struct tsub a;
	struct cursor start;

	attach(&a, "c", NULL, &start);
	bus_sync(bus, LIT("c"), 77, 0, 1);
	bus_detach(bus, &a.sub);
	bus_tick(bus, bus_now_ms());
	ck_assert_int_eq(deactivated, 1);
	ck_assert_str_eq(last_channel, "c");
	/* back in use: Redis is asked again, the old state is not trusted */
	memset(&a, 0, sizeof a);
	a.sub.transport = &transport_sse;
	a.sub.host = &fake_host;
	a.sub.announce = true;
	strcpy(a.sub.client, "alice");
	{
		struct channel_list list = { .count = 1 };

		list.name[0] = "c";
		list.len[0] = 1;
		ck_assert_int_eq(bus_attach(bus, &a.sub, &list, NULL, &start),
				 BUS_OK);
	}
	ck_assert_int_eq(activated, 2);
	ck_assert_int_eq(ingest("c", 77, 1, NULL), BUS_INGEST_UNSYNCED);
	/* the join went to the engine, not into the local ring */
	ck_assert_int_eq(published, 1);
	ck_assert_str_eq(last_event, "join");
	bus_detach(bus, &a.sub);
	ck_assert_int_eq(published, 2);
	ck_assert_str_eq(last_event, "leave");
}
END_TEST

/* A client hopping from a node that is ahead: its cursor is past this
 * ring's end, in the same epoch. That is this node catching up (the
 * sync's entries or notifications still to come), not a gap. */
START_TEST(test_cursor_ahead_waits)
{
	struct cursor ahead = { 77, 4 }, start;
	struct tsub a;
	uint64_t ids[MAXI];

	attach(&a, "c", NULL, &start);
	bus_sync(bus, LIT("c"), 77, 6, 1);
	ingest("c", 77, 1, NULL);
	ingest("c", 77, 2, NULL);
	bus_detach(bus, &a.sub);
	attach(&a, "c", &ahead, &start);
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	for (uint64_t id = 3; id <= 6; id++)
		ingest("c", 77, id, NULL);
	ck_assert_uint_eq(pull(&a, ids, NULL), 2);
	ck_assert_uint_eq(ids[0], 5);
	ck_assert_uint_eq(ids[1], 6);
	bus_detach(bus, &a.sub);
}
END_TEST

/* Messages from Redis for a backfill, ids first..last. */
static size_t redis_range(uint64_t first, uint64_t last, struct message **m,
			  uint64_t *ids)
{
	size_t n = 0;

	for (uint64_t id = first; id <= last; id++, n++) {
		m[n] = msg("c", "1");
		ids[n] = id;
	}
	return n;
}

/* A ring of 8 (the history size) at 5..12 of epoch 77. */
static void ring_5_to_12(struct tsub *a)
{
	struct cursor start;

	attach(a, "c", NULL, &start);
	bus_sync(bus, LIT("c"), 77, 12, 1);
	for (uint64_t id = 1; id <= 12; id++)
		ingest("c", 77, id, NULL);
}

/* A made-up cursor far past the ring is a gap once Redis' head, read
 * after the tap asked, is before it: bounded, not a wait forever. */
START_TEST(test_cursor_past_redis_head_is_a_gap)
{
	struct cursor far = { 77, 50 }, start;
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub a, b;
	uint64_t ids[MAXI];

	ring_5_to_12(&a);
	attach(&b, "c", &far, &start);
	bus_pull(bus, &b.sub, items, MAXI, 1 << 20, true, &out);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(out.waiting);
	ck_assert_int_eq(checked, 1);
	/* an answer to an earlier ticket says nothing of this cursor */
	bus_heard(bus, LIT("c"), 77, 12, last_ticket - 1);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	bus_heard(bus, LIT("c"), 77, 12, last_ticket);
	ck_assert_int_eq(b.wakes, 1);
	/* the gap, then what is retained, as the embedded bus does */
	ck_assert_uint_eq(pull(&b, ids, NULL), 9);
	ck_assert_uint_eq(ids[0], 0);
	ck_assert_uint_eq(ids[1], 5);
	ck_assert_int_eq(ingest("c", 77, 13, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&b, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 13);
	ck_assert_int_eq(checked, 1);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

/* A cursor past the ring that Redis did give (another node is ahead)
 * waits for the ring to get there: no gap, nothing twice. */
START_TEST(test_cursor_within_redis_head_waits)
{
	struct cursor ahead = { 77, 14 }, start;
	struct tsub a, b;
	uint64_t ids[MAXI];

	ring_5_to_12(&a);
	attach(&b, "c", &ahead, &start);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	bus_heard(bus, LIT("c"), 77, 15, last_ticket);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	for (uint64_t id = 13; id <= 15; id++)
		ck_assert_int_eq(ingest("c", 77, id, NULL), BUS_INGESTED);
	ck_assert_uint_eq(pull(&b, ids, NULL), 1);
	ck_assert_uint_eq(ids[0], 15);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

/* A cursor older than the ring: the ids between come from Redis,
 * before the ring, each once, in order. */
START_TEST(test_backfill_before_the_ring)
{
	struct cursor old = { 77, 2 }, start;
	struct message *m[MAXI];
	uint64_t ids[MAXI], rids[MAXI];
	struct bus_item items[MAXI];
	struct bus_pull out;
	struct tsub a, b;
	size_t n;

	ring_5_to_12(&a);
	attach(&b, "c", &old, &start);
	bus_pull(bus, &b.sub, items, MAXI, 1 << 20, true, &out);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(out.waiting);
	ck_assert_int_eq(backfills, 1);
	ck_assert_uint_eq(fill_after, 2);
	ck_assert_uint_eq(fill_count, 2); /* 3 and 4: the ring has 5 on */
	n = redis_range(3, 4, m, rids);
	bus_backfill(bus, LIT("c"), fill_sub, 77, m, rids, n);
	ck_assert_int_eq(b.wakes, 1);
	ck_assert_uint_eq(pull(&b, ids, NULL), 10);
	for (size_t i = 0; i < 10; i++)
		ck_assert_uint_eq(ids[i], 3 + i);
	ck_assert_int_eq(backfills, 1);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

/* Redis lost some of them too: a gap for those alone. */
START_TEST(test_backfill_gap_for_what_redis_lacks)
{
	struct cursor old = { 77, 1 }, start;
	struct message *m[MAXI];
	uint64_t ids[MAXI], rids[MAXI];
	struct tsub a, b;
	size_t n;

	ring_5_to_12(&a);
	attach(&b, "c", &old, &start);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	ck_assert_uint_eq(fill_count, 3);
	n = redis_range(4, 4, m, rids);
	bus_backfill(bus, LIT("c"), fill_sub, 77, m, rids, n);
	ck_assert_uint_eq(pull(&b, ids, NULL), 10);
	ck_assert_uint_eq(ids[0], 0);
	for (size_t i = 1; i < 10; i++)
		ck_assert_uint_eq(ids[i], 3 + i);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

/* A tap that left before the answer: dropped, nothing leaks. */
START_TEST(test_backfill_after_leaving)
{
	struct cursor old = { 77, 2 }, start;
	struct message *m[MAXI];
	uint64_t ids[MAXI], rids[MAXI], sub_id;
	struct tsub a, b;
	size_t n;

	ring_5_to_12(&a);
	attach(&b, "c", &old, &start);
	ck_assert_uint_eq(pull(&b, ids, NULL), 0);
	sub_id = fill_sub;
	bus_detach(bus, &b.sub);
	n = redis_range(3, 4, m, rids);
	bus_backfill(bus, LIT("c"), sub_id, 77, m, rids, n);
	bus_detach(bus, &a.sub);
}
END_TEST

/* What a welcome or a poll's next hands out waits for the sync, and
 * then carries Redis' epoch; a short poll parks while it waits. */
START_TEST(test_start_waits_for_the_sync)
{
	struct cursor start;
	struct bus_item items[MAXI];
	struct bus_pull out;
	uint64_t ids[MAXI];
	struct tsub a;

	attach(&a, "c", NULL, &start);
	a.sub.wait_redis = true;
	ck_assert(!bus_start(bus, &a.sub, 0, 1, &start));
	bus_pull(bus, &a.sub, items, MAXI, 1 << 20, false, &out);
	ck_assert(out.parked);
	ck_assert(out.waiting);
	bus_sync(bus, LIT("c"), 77, 9, 1);
	ck_assert_int_eq(a.wakes, 1);
	ck_assert(bus_start(bus, &a.sub, 0, 1, &start));
	ck_assert_uint_eq(start.epoch, 77);
	ck_assert_uint_eq(start.id, 9);
	/* the ring gets to Redis' head with no question asked */
	ck_assert_uint_eq(pull(&a, ids, NULL), 0);
	for (uint64_t id = 1; id <= 9; id++)
		ingest("c", 77, id, NULL);
	ck_assert_int_eq(checked, 0);
	/* synced and nothing new: a short poll answers at once */
	bus_pull(bus, &a.sub, items, MAXI, 1 << 20, false, &out);
	ck_assert(!out.parked);
	ck_assert(!out.waiting);
	bus_detach(bus, &a.sub);
}
END_TEST

/* A welcome or ack waits the same way, parked by bus_wait_sync only
 * while the channel waits, and bus_welcome fills only the cursors that
 * had no epoch at attach: one the client named is left as it sent it. */
START_TEST(test_welcome_waits_for_the_sync)
{
	const struct cursor since = { 55, 4 };
	struct cursor ca, cb;
	struct bus_pull out;
	struct tsub a, b;

	attach(&a, "w", NULL, &ca);
	attach(&b, "w", &since, &cb);
	ck_assert_uint_eq(ca.epoch, 0);
	ck_assert(!bus_welcome(bus, &a.sub, 0, 1, &ca));
	ck_assert_uint_eq(ca.epoch, 0);
	bus_wait_sync(bus, &a.sub, &out);
	ck_assert(out.parked);
	ck_assert_uint_eq(out.count, 0);
	ck_assert(!a.sub.wait_redis); /* put back as it was */
	bus_sync(bus, LIT("w"), 77, 9, 1);
	ck_assert_int_eq(a.wakes, 1);
	ck_assert(bus_welcome(bus, &a.sub, 0, 1, &ca));
	ck_assert_uint_eq(ca.epoch, 77);
	ck_assert_uint_eq(ca.id, 9);
	ck_assert(bus_welcome(bus, &b.sub, 0, 1, &cb));
	ck_assert_uint_eq(cb.epoch, 55); /* stale: echoed, the gap follows */
	ck_assert_uint_eq(cb.id, 4);
	/* synced, the ring at Redis' head: nothing to wait for */
	for (uint64_t id = 1; id <= 9; id++)
		ingest("w", 77, id, NULL);
	bus_wait_sync(bus, &a.sub, &out);
	ck_assert(!out.parked);
	bus_detach(bus, &a.sub);
	bus_detach(bus, &b.sub);
}
END_TEST

static Suite *bus_remote_suite(void)
{
	Suite *s = suite_create("bus_remote");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_unsynced_channel_waits);
	tcase_add_test(tc, test_tail_starts_at_redis_head);
	tcase_add_test(tc, test_resume_same_and_other_epoch);
	tcase_add_test(tc, test_holes_and_duplicates);
	tcase_add_test(tc, test_redis_lost_channel_is_a_gap);
	tcase_add_test(tc, test_hole_redis_no_longer_holds);
	tcase_add_test(tc, test_reclaim_unsubscribes_and_joins_go_to_redis);
	tcase_add_test(tc, test_cursor_ahead_waits);
	tcase_add_test(tc, test_cursor_past_redis_head_is_a_gap);
	tcase_add_test(tc, test_cursor_within_redis_head_waits);
	tcase_add_test(tc, test_backfill_before_the_ring);
	tcase_add_test(tc, test_backfill_gap_for_what_redis_lacks);
	tcase_add_test(tc, test_backfill_after_leaving);
	tcase_add_test(tc, test_start_waits_for_the_sync);
	tcase_add_test(tc, test_welcome_waits_for_the_sync);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(bus_remote_suite)
