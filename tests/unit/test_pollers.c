/* Pollers and presence in the bus: the bus-wide cap on remembered
 * pollers, the leave of a poller dropped for the cap, expiry that costs
 * what expires (not what is remembered), held long polls, and a stream
 * subscriber that loses nothing while fresh client ids flood in.
 *
 * bus_poll_seen stamps pollers with the real monotonic clock; the tests
 * pass bus_tick times relative to readings taken around those calls. */
#include "unit.h"

#include "bus.h"
#include "message.h"
#include "payload.h"
#include "transport.h"
#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TS_MS 1700000000000LL
#define MAXI 64

static void fake_sub_op(struct subscriber *s)
{
	(void)s;
}

static const struct sub_host fake_host = {
	.name = "fake",
	.park = fake_sub_op,
	.wake = fake_sub_op,
	.cut = fake_sub_op,
};
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

static void open_presence_bus(uint64_t window_ms, size_t max_pollers)
{
	const struct bus_config cfg = {
		.history_size = 100000,
		.history_age_ms = 3600000,
		.history_bytes = SIZE_MAX,
		.max_channels = 1000,
		.lag_limit = SIZE_MAX,
		.presence_window_ms = window_ms,
		.max_pollers = max_pollers,
	};

	bus = bus_new(&cfg);
}

static void publish(const char *channel, const char *text)
{
	struct payload p;
	struct message_spec spec = { .channel = channel, .data = &p };
	struct cursor id;

	ck_assert_int_eq(payload_from_text(text, strlen(text), &p), PAYLOAD_OK);
	/* born now: the ticks below use the real monotonic clock, and a
	 * message born at 0 would age out once the machine is up an hour */
	ck_assert_int_eq(bus_publish(bus, channel, strlen(channel),
				     message_new(&spec, TS_MS, bus_now_ms()),
				     &id),
			 BUS_OK);
	payload_free(&p);
}

static void poll_seen(const char *list, const char *client, enum transport_id t,
		      bool announce)
{
	struct channel_list chs;

	ck_assert_int_eq(channel_list_parse(list, strlen(list), &chs), 0);
	bus_poll_seen(bus, &chs, client, t, announce);
}

static void attach(struct subscriber *s, const struct transport *t,
		   const char *client, const char *list, uint64_t since)
{
	struct channel_list chs;
	struct cursor from[CHANNELS_PER_SUBSCRIPTION_MAX], start[32];

	memset(s, 0, sizeof *s);
	s->transport = t;
	s->host = &fake_host;
	snprintf(s->client, sizeof s->client, "%s", client);
	ck_assert_int_eq(channel_list_parse(list, strlen(list), &chs), 0);
	for (size_t i = 0; i < chs.count; i++)
		from[i] = (struct cursor){ 0, since };
	ck_assert_int_eq(bus_attach(bus, s, &chs, from, start), BUS_OK);
}

/* Poll and long-poll clients the channel's info counts. */
static size_t pollers_on(const char *channel)
{
	struct bus_channel_info info;

	ck_assert_int_eq(bus_info(bus, channel, strlen(channel), &info), 0);
	return info.subscribers[TRANSPORT_POLL] +
	       info.subscribers[TRANSPORT_LONGPOLL];
}

static struct bus_stats stats(void)
{
	struct bus_stats st;

	bus_stats(bus, &st);
	return st;
}

/* How many "join" or "leave" messages for client are in the channel's
 * history (a subscriber from since=0 reads it all). */
static int announced(const char *channel, const char *event, const char *client)
{
	struct bus_item items[MAXI];
	struct subscriber s;
	struct bus_pull out;
	char want[CLIENT_ID_MAX + 16];
	int n = 0;

	snprintf(want, sizeof want, "{\"client\":\"%s\",", client);
	attach(&s, &transport_sse, "reader", channel, 0);
	do {
		bus_pull(bus, &s, items, MAXI, SIZE_MAX, false, &out);
		for (size_t i = 0; i < out.count; i++) {
			const struct message *m = items[i].msg;

			if (m && strcmp(m->event, event) == 0 &&
			    strncmp(message_json(m) + m->data_off, want,
				    strlen(want)) == 0)
				n++;
		}
		bus_items_release(items, out.count);
	} while (out.count > 0);
	bus_detach(bus, &s);
	return n;
}

START_TEST(test_cap_holds_with_fresh_ids)
{
	/* every poll brings a new client id and lists 32 channels, as a
	 * flood would; the bus remembers max_pollers of them at most, and
	 * a stream subscriber meanwhile gets every message in order */
	enum { CAP = 100, POLLS = 500 };
	char list[32 * 8] = "", client[16];
	struct bus_item items[MAXI];
	struct subscriber watcher;
	struct bus_pull out;
	uint64_t next = 1;
	size_t sum = 0;

	open_presence_bus(30000, CAP);
	for (int i = 0; i < 32; i++) {
		char name[8];

		snprintf(name, sizeof name, "c%d", i);
		publish(name, "first");
		snprintf(list + strlen(list), sizeof list - strlen(list),
			 "%s%s", i ? "," : "", name);
	}
	attach(&watcher, &transport_sse, "watcher", "c0", 1);
	for (int i = 0; i < POLLS; i++) {
		snprintf(client, sizeof client, "fresh%d", i);
		poll_seen(list, client, TRANSPORT_POLL, false);
		if (i % 10 == 0)
			publish("c0", "live");
	}
	for (int i = 0; i < 32; i++) {
		char name[8];

		snprintf(name, sizeof name, "c%d", i);
		sum += pollers_on(name);
	}
	ck_assert_uint_eq(sum, CAP);
	ck_assert_uint_eq(stats().pollers, CAP);
	/* the newest are kept: the last poll counts on every channel */
	ck_assert_uint_eq(pollers_on("c31"), CAP / 32 + 1);
	do {
		bus_pull(bus, &watcher, items, MAXI, SIZE_MAX, false, &out);
		for (size_t i = 0; i < out.count; i++) {
			ck_assert_ptr_nonnull(items[i].msg);
			ck_assert_uint_eq(items[i].msg->id, ++next);
		}
		bus_items_release(items, out.count);
	} while (out.count > 0);
	ck_assert_uint_eq(next, 1 + POLLS / 10);
	bus_detach(bus, &watcher);
}
END_TEST

START_TEST(test_dropped_poller_leaves)
{
	/* a poller forgotten for the cap, like one whose window passed,
	 * must announce its leave if it announced its join: otherwise the
	 * others see it present forever */
	open_presence_bus(30000, 2);
	publish("p", "first");
	poll_seen("p", "a", TRANSPORT_POLL, true);
	poll_seen("p", "b", TRANSPORT_LONGPOLL, true);
	ck_assert_int_eq(announced("p", "join", "a"), 1);
	ck_assert_int_eq(announced("p", "leave", "a"), 0);
	poll_seen("p", "c", TRANSPORT_POLL, true); /* a is the stalest */
	ck_assert_int_eq(announced("p", "leave", "a"), 1);
	ck_assert_int_eq(announced("p", "leave", "b"), 0);
	ck_assert_int_eq(announced("p", "join", "c"), 1);
	ck_assert_uint_eq(pollers_on("p"), 2);
	/* b is seen again, so c is the stalest now */
	poll_seen("p", "b", TRANSPORT_LONGPOLL, false);
	poll_seen("p", "d", TRANSPORT_POLL, false);
	ck_assert_int_eq(announced("p", "leave", "c"), 1);
	ck_assert_int_eq(announced("p", "leave", "b"), 0);
	/* one that never asked for presence leaves quietly */
	poll_seen("p", "e", TRANSPORT_POLL, false);
	ck_assert_int_eq(announced("p", "leave", "b"), 1);
	poll_seen("p", "f", TRANSPORT_POLL, false);
	ck_assert_int_eq(announced("p", "leave", "d"), 0);
	ck_assert_uint_eq(pollers_on("p"), 2);
}
END_TEST

START_TEST(test_disconnected_poller_leaves)
{
	/* the admin API's disconnect forgets the client as a poller on every
	 * channel at once, with the leave it announced a join for, and
	 * leaves the others */
	open_presence_bus(30000, 100);
	publish("p", "first");
	publish("q", "first");
	poll_seen("p,q", "gone", TRANSPORT_POLL, true);
	poll_seen("p", "gone", TRANSPORT_LONGPOLL, false);
	poll_seen("p", "stays", TRANSPORT_POLL, true);
	ck_assert_uint_eq(pollers_on("p"), 3);
	ck_assert_uint_eq(bus_disconnect_client(bus, "gone"), 0);
	ck_assert_uint_eq(pollers_on("p"), 1);
	ck_assert_uint_eq(pollers_on("q"), 0);
	ck_assert_int_eq(announced("p", "leave", "gone"), 1);
	ck_assert_int_eq(announced("q", "leave", "gone"), 1);
	ck_assert_int_eq(announced("p", "leave", "stays"), 0);
	ck_assert_uint_eq(stats().pollers, 1);
}
END_TEST

START_TEST(test_tick_cost_is_what_expires)
{
	/* the watcher ticks every 250 ms; with N pollers remembered and none
	 * expired, a tick must not look at them all */
	enum { N = 20000, TICKS = 100 };
	const uint64_t window = 60000;
	struct bus_stats before;
	uint64_t t1;
	char client[16];

	open_presence_bus(window, N);
	publish("x", "first");
	publish("y", "first");
	for (int i = 0; i < N; i++) {
		snprintf(client, sizeof client, "c%d", i);
		poll_seen(i % 2 ? "x" : "y", client, TRANSPORT_POLL, false);
	}
	t1 = bus_now_ms();
	ck_assert_uint_eq(stats().pollers, N);
	before = stats();
	for (int k = 0; k < TICKS; k++)
		bus_tick(bus, t1 + (uint64_t)k);
	/* at most the one at the stale end, once per tick */
	ck_assert_uint_le(stats().poller_visits - before.poller_visits, TICKS);
	ck_assert_uint_eq(stats().pollers, N);
	/* all expire together: each is looked at once */
	before = stats();
	bus_tick(bus, t1 + window);
	ck_assert_uint_eq(stats().pollers, 0);
	ck_assert_uint_le(stats().poller_visits - before.poller_visits, N + 1);
	ck_assert_uint_eq(pollers_on("x") + pollers_on("y"), 0);
}
END_TEST

START_TEST(test_seen_again_stays)
{
	/* seeing a poller again moves it away from the stale end */
	const uint64_t window = 40;
	uint64_t t_first;

	open_presence_bus(window, 100);
	publish("x", "first");
	poll_seen("x", "a", TRANSPORT_POLL, true);
	poll_seen("x", "b", TRANSPORT_POLL, true);
	t_first = bus_now_ms();
	usleep(60 * 1000);
	poll_seen("x", "a", TRANSPORT_POLL, true); /* seen after t_first */
	bus_tick(bus, t_first + window);           /* b is past its window */
	ck_assert_uint_eq(pollers_on("x"), 1);
	ck_assert_int_eq(announced("x", "leave", "b"), 1);
	ck_assert_int_eq(announced("x", "leave", "a"), 0);
	bus_tick(bus, bus_now_ms() + window);
	ck_assert_uint_eq(pollers_on("x"), 0);
	ck_assert_int_eq(announced("x", "leave", "a"), 1);
	ck_assert_int_eq(announced("x", "join", "a"), 1);
}
END_TEST

START_TEST(test_held_longpoll_kept)
{
	/* a long poll held past the window is still present; with a zero
	 * window it looks expired at every tick, and the tick must still
	 * end */
	struct subscriber held;
	uint64_t now;

	open_presence_bus(0, 100);
	publish("x", "first");
	attach(&held, &transport_longpoll, "L", "x", 1);
	poll_seen("x", "L", TRANSPORT_LONGPOLL, true);
	poll_seen("x", "P", TRANSPORT_POLL, true);
	now = bus_now_ms() + 10;
	bus_tick(bus, now);
	ck_assert_uint_eq(pollers_on("x"), 1);
	ck_assert_int_eq(announced("x", "leave", "P"), 1);
	bus_tick(bus, now + 10);
	ck_assert_uint_eq(pollers_on("x"), 1);
	ck_assert_int_eq(announced("x", "leave", "L"), 0);
	bus_detach(bus, &held);
	bus_tick(bus, now + 20);
	ck_assert_uint_eq(pollers_on("x"), 0);
	ck_assert_int_eq(announced("x", "leave", "L"), 1);
}
END_TEST

START_TEST(test_channel_kept_while_polled)
{
	/* a channel is reclaimed only once its pollers are gone, so a
	 * poller never points at a freed channel */
	struct subscriber s;
	const uint64_t window = 60000;
	uint64_t t;

	open_presence_bus(window, 10);
	attach(&s, &transport_sse, "s", "idle", 0); /* creates it, no history */
	bus_detach(bus, &s);
	poll_seen("idle", "a", TRANSPORT_POLL, false);
	t = bus_now_ms();
	bus_tick(bus, t);
	ck_assert_uint_eq(pollers_on("idle"), 1);
	bus_tick(bus, t + window);
	ck_assert_uint_eq(stats().pollers, 0);
	ck_assert_uint_eq(stats().channels, 0);
}
END_TEST

static Suite *pollers_suite(void)
{
	Suite *s = suite_create("pollers");
	TCase *tc = tcase_create("presence");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cap_holds_with_fresh_ids);
	tcase_add_test(tc, test_dropped_poller_leaves);
	tcase_add_test(tc, test_disconnected_poller_leaves);
	tcase_add_test(tc, test_tick_cost_is_what_expires);
	tcase_add_test(tc, test_seen_again_stays);
	tcase_add_test(tc, test_held_longpoll_kept);
	tcase_add_test(tc, test_channel_kept_while_polled);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(pollers_suite)
