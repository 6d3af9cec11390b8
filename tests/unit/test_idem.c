/* Idempotency keys: the table alone (lookup, scope by owner, expiry by
 * age and by lookup, the cap dropping the oldest, forgetting an owner,
 * the key syntax), then through the bus: replays, conflicts, the window,
 * and threads publishing one key at once storing one message. */
#include "unit.h"

#include "bus.h"
#include "idem.h"
#include "message.h"
#include "payload.h"
#include "siphash.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 200

static struct siphash_key key = { 1, 2 };

START_TEST(test_find_and_scope)
{
	struct idem *set = idem_new(10, &key);
	struct idem_entry *a = NULL, *b = NULL;
	const struct idem_entry *e;
	int owner_a, owner_b;

	idem_add(set, &owner_a, &a, LIT("k1"), 11, 100, 7, 1000);
	e = idem_find(set, &owner_a, LIT("k1"), 0);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->hash, 11);
	ck_assert_uint_eq(e->epoch, 100);
	ck_assert_uint_eq(e->id, 7);
	/* the key is the channel's: another owner does not see it */
	ck_assert_ptr_null(idem_find(set, &owner_b, LIT("k1"), 0));
	ck_assert_ptr_null(idem_find(set, &owner_a, LIT("k"), 0));
	ck_assert_ptr_null(idem_find(set, &owner_a, LIT("k12"), 0));
	idem_add(set, &owner_b, &b, LIT("k1"), 12, 200, 1, 1000);
	ck_assert_uint_eq(idem_find(set, &owner_b, LIT("k1"), 0)->hash, 12);
	ck_assert_uint_eq(idem_find(set, &owner_a, LIT("k1"), 0)->hash, 11);
	ck_assert_uint_eq(idem_count(set), 2);
	/* born at or before `after`: out of the window, and dropped */
	ck_assert_ptr_null(idem_find(set, &owner_a, LIT("k1"), 1000));
	ck_assert_uint_eq(idem_count(set), 1);
	ck_assert_ptr_null(a);
	idem_free(set);
}
END_TEST

START_TEST(test_expire_oldest_first)
{
	struct idem *set = idem_new(100, &key);
	struct idem_entry *list = NULL;
	char k[16];
	int owner;

	for (int i = 0; i < 50; i++) {
		int n = snprintf(k, sizeof k, "k%d", i);

		idem_add(set, &owner, &list, k, (size_t)n, 0, 1, (uint64_t)i,
			 (uint64_t)(1000 + i));
	}
	idem_expire(set, 1019);
	ck_assert_uint_eq(idem_count(set), 30);
	ck_assert_ptr_null(idem_find(set, &owner, LIT("k19"), 0));
	ck_assert_ptr_nonnull(idem_find(set, &owner, LIT("k20"), 0));
	idem_expire(set, 5000);
	ck_assert_uint_eq(idem_count(set), 0);
	ck_assert_ptr_null(list);
	idem_free(set);
}
END_TEST

START_TEST(test_cap_drops_oldest)
{
	struct idem *set = idem_new(3, &key);
	struct idem_entry *list = NULL;
	int owner;

	idem_add(set, &owner, &list, LIT("a"), 0, 1, 1, 10);
	idem_add(set, &owner, &list, LIT("b"), 0, 1, 2, 11);
	idem_add(set, &owner, &list, LIT("c"), 0, 1, 3, 12);
	idem_add(set, &owner, &list, LIT("d"), 0, 1, 4, 13);
	ck_assert_uint_eq(idem_count(set), 3);
	ck_assert_ptr_null(idem_find(set, &owner, LIT("a"), 0));
	ck_assert_uint_eq(idem_find(set, &owner, LIT("d"), 0)->id, 4);
	/* a long run past the cap: still 3, the newest three */
	for (int i = 0; i < 10000; i++)
		idem_add(set, &owner, &list, (char *)&i, sizeof i, 0, 1,
			 (uint64_t)i, (uint64_t)(100 + i));
	ck_assert_uint_eq(idem_count(set), 3);
	idem_free(set);
}
END_TEST

START_TEST(test_forget_owner)
{
	struct idem *set = idem_new(100, &key);
	struct idem_entry *a = NULL, *b = NULL;
	int owner_a, owner_b;

	idem_add(set, &owner_a, &a, LIT("x"), 0, 1, 1, 10);
	idem_add(set, &owner_b, &b, LIT("x"), 0, 1, 1, 11);
	idem_add(set, &owner_a, &a, LIT("y"), 0, 1, 2, 12);
	idem_add(set, &owner_b, &b, LIT("y"), 0, 1, 2, 13);
	idem_add(set, &owner_a, &a, LIT("z"), 0, 1, 3, 14);
	/* drop one from the middle of a's list, then the rest */
	ck_assert_ptr_null(idem_find(set, &owner_a, LIT("y"), 12));
	idem_forget_owner(set, &a);
	ck_assert_ptr_null(a);
	ck_assert_uint_eq(idem_count(set), 2);
	ck_assert_ptr_null(idem_find(set, &owner_a, LIT("x"), 0));
	ck_assert_ptr_nonnull(idem_find(set, &owner_b, LIT("x"), 0));
	ck_assert_ptr_nonnull(idem_find(set, &owner_b, LIT("y"), 0));
	idem_free(set);
}
END_TEST

START_TEST(test_key_syntax)
{
	char k64[65], k65[66];

	memset(k64, 'a', 64);
	k64[64] = '\0';
	memset(k65, 'a', 65);
	k65[65] = '\0';
	ck_assert(idem_key_valid(LIT("order-42")));
	ck_assert(idem_key_valid(LIT("A.b:C_d-9")));
	ck_assert(idem_key_valid(k64, 64));
	ck_assert(!idem_key_valid(k65, 65));
	ck_assert(!idem_key_valid(LIT("")));
	ck_assert(!idem_key_valid(LIT("a b")));
	ck_assert(!idem_key_valid(LIT("a\0b")));
	ck_assert(!idem_key_valid(LIT("a\x01")));
	ck_assert(!idem_key_valid(LIT("a\x7f")));
	ck_assert(!idem_key_valid(LIT("\xc3\xa9")));
	ck_assert(!idem_key_valid(LIT("a/b")));
	ck_assert(!idem_key_valid(LIT("a~b")));
	ck_assert(!idem_key_valid(LIT("a\"b")));
}
END_TEST

/* ---- through the bus ---- */

static struct bus *new_bus(uint64_t window_ms, size_t max_keys)
{
	struct bus_config cfg = {
		.history_size = 100,
		.history_age_ms = 600000,
		.history_bytes = 1 << 24,
		.max_channels = 100,
		.lag_limit = 1 << 20,
		.presence_window_ms = 30000,
		.max_pollers = 100,
		.idem_window_ms = window_ms,
		.max_idem_keys = max_keys,
	};

	return bus_new(&cfg);
}

static enum bus_error kpublish(struct bus *bus, const char *ch,
			       const char *text, const char *event,
			       const char *k, struct cursor *at, bool *replayed)
{
	struct payload p;
	struct message_spec spec = { .channel = ch,
				     .event = event,
				     .data = &p };
	struct message *m;

	ck_assert_int_eq(payload_from_json(text, strlen(text), &p), PAYLOAD_OK);
	m = message_new(&spec, 0, bus_now_ms());
	payload_free(&p);
	return bus_publish_keyed(bus, ch, strlen(ch), m, k, k ? strlen(k) : 0,
				 at, replayed);
}

static uint64_t last_id(struct bus *bus, const char *ch)
{
	struct bus_channel_info info;

	bus_info(bus, ch, strlen(ch), &info);
	return info.last_id;
}

START_TEST(test_bus_replay_and_conflict)
{
	struct bus *bus = new_bus(300000, 100);
	struct cursor a1, a2, a3;
	bool r1, r2, r3;
	long alive;

	ck_assert_int_eq(kpublish(bus, "c", "{\"a\":1}", NULL, "k", &a1, &r1),
			 BUS_OK);
	alive = message_alive();
	ck_assert_int_eq(kpublish(bus, "c", "{\"a\":1}", NULL, "k", &a2, &r2),
			 BUS_OK);
	ck_assert(!r1 && r2);
	ck_assert_uint_eq(a2.id, a1.id);
	ck_assert_uint_eq(a2.epoch, a1.epoch);
	/* the retry's message was dropped, not kept */
	ck_assert_int_eq(message_alive(), alive);
	ck_assert_int_eq(kpublish(bus, "c", "{\"a\":2}", NULL, "k", &a3, &r3),
			 BUS_IDEM_CONFLICT);
	ck_assert_int_eq(kpublish(bus, "c", "{\"a\":1}", "ev", "k", &a3, &r3),
			 BUS_IDEM_CONFLICT);
	ck_assert_int_eq(message_alive(), alive);
	/* no key: stored every time */
	ck_assert_int_eq(kpublish(bus, "c", "{\"a\":1}", NULL, NULL, &a3, &r3),
			 BUS_OK);
	ck_assert(!r3);
	ck_assert_uint_eq(last_id(bus, "c"), 2);
	bus_free(bus);
}
END_TEST

START_TEST(test_bus_window)
{
	struct bus *bus = new_bus(100, 100);
	struct bus_config off = { .idem_window_ms = 0,
				  .history_age_ms = 600000,
				  .lag_limit = 1 << 20,
				  .presence_window_ms = 30000 };
	struct bus_stats st;
	struct cursor at;
	bool r;

	kpublish(bus, "c", "1", NULL, "k", &at, &r);
	kpublish(bus, "c", "1", NULL, "k", &at, &r);
	ck_assert(r);
	usleep(150 * 1000);
	kpublish(bus, "c", "1", NULL, "k", &at, &r);
	ck_assert(!r);
	ck_assert_uint_eq(at.id, 2);
	bus_tick(bus, bus_now_ms() + 1000);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.idem_keys, 0);
	/* window 0 (SIGHUP): keys are not remembered any more */
	bus_set_limits(bus, &off);
	kpublish(bus, "c", "1", NULL, "k", &at, &r);
	kpublish(bus, "c", "1", NULL, "k", &at, &r);
	ck_assert(!r);
	ck_assert_uint_eq(at.id, 4);
	bus_stats(bus, &st);
	ck_assert_uint_eq(st.idem_keys, 0);
	bus_free(bus);
}
END_TEST

struct racer {
	struct bus *bus;
	pthread_barrier_t *go;
	int round;
	int fresh; /* publishes that stored */
	uint64_t ids[ROUNDS];
};

static void *race(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < ROUNDS; i++) {
		char k[16];
		struct cursor at;
		bool replayed;

		snprintf(k, sizeof k, "k%d", i);
		pthread_barrier_wait(r->go);
		if (kpublish(r->bus, "race", "{\"same\":true}", NULL, k, &at,
			     &replayed) == BUS_OK &&
		    !replayed)
			r->fresh++;
		r->ids[i] = at.id;
	}
	return NULL;
}

START_TEST(test_bus_threads_store_once)
{
	struct bus *bus = new_bus(300000, 100000);
	pthread_barrier_t go;
	pthread_t t[THREADS];
	struct racer r[THREADS];
	int fresh = 0;

	pthread_barrier_init(&go, NULL, THREADS);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct racer){ .bus = bus, .go = &go };
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		fresh += r[i].fresh;
	}
	/* one message per key, and every racer was told its id */
	ck_assert_int_eq(fresh, ROUNDS);
	ck_assert_uint_eq(last_id(bus, "race"), ROUNDS);
	for (int k = 0; k < ROUNDS; k++)
		for (int i = 1; i < THREADS; i++)
			ck_assert_uint_eq(r[i].ids[k], r[0].ids[k]);
	pthread_barrier_destroy(&go);
	bus_free(bus);
}
END_TEST

static Suite *idem_suite(void)
{
	Suite *s = suite_create("idem");
	TCase *tc = tcase_create("table");
	TCase *tb = tcase_create("bus");

	tcase_add_test(tc, test_find_and_scope);
	tcase_add_test(tc, test_expire_oldest_first);
	tcase_add_test(tc, test_cap_drops_oldest);
	tcase_add_test(tc, test_forget_owner);
	tcase_add_test(tc, test_key_syntax);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tb, 60);
	tcase_add_test(tb, test_bus_replay_and_conflict);
	tcase_add_test(tb, test_bus_window);
	tcase_add_test(tb, test_bus_threads_store_once);
	suite_add_tcase(s, tb);
	return s;
}

UNIT_MAIN(idem_suite)
