/* The WebSocket keepalive wheel (src/ws_alive.c): a ping after --ws-ping
 * of silence, the hang-up after --ws-hangup, a frame or a PONG as life,
 * deadlines past one lap of the wheel, and the cost: a received frame is
 * a store, and a turn looks only at the links whose bucket is due, not at
 * every link on the wheel. Times are made up; nothing sleeps. */
#include "unit.h"

#include "ws_alive.h"

#include <stdint.h>
#include <string.h>

#define NLINKS 10000
#define T0 1000000 /* ms: an arbitrary "now" to start from */

struct fake {
	struct ws_alive_link link;
	unsigned pings, hangups;
};

static struct ws_alive wheel;
static struct fake fakes[NLINKS];
static size_t pings, hangups;

static struct fake *of(struct ws_alive_link *l)
{
	return (struct fake *)l; /* link is the first member */
}

static void on_ping(struct ws_alive_link *l)
{
	of(l)->pings++;
	pings++;
}

static void on_hangup(struct ws_alive_link *l)
{
	of(l)->hangups++;
	hangups++;
}

static const struct ws_alive_ops ops = { .ping = on_ping, .hangup = on_hangup };

static void setup_wheel(uint64_t ping_ms, uint64_t hangup_ms)
{
	memset(fakes, 0, sizeof fakes);
	pings = hangups = 0;
	ws_alive_init(&wheel, &ops, ping_ms, hangup_ms, T0);
}

/* Turn the wheel every 100 ms from..to (inclusive), like the loop's
 * 0.2 s kick does, but finer. */
static void run(uint64_t from, uint64_t to)
{
	for (uint64_t t = from; t <= to; t += 100)
		ws_alive_turn(&wheel, t);
}

START_TEST(test_ping_then_hangup)
{
	struct fake *f = &fakes[0];

	setup_wheel(1000, 3000);
	ws_alive_add(&wheel, &f->link, T0);
	run(T0, T0 + 900);
	ck_assert_uint_eq(f->pings, 0);
	run(T0 + 1000, T0 + 1300); /* due at 1 s; a bucket is 250 ms */
	ck_assert_uint_eq(f->pings, 1);
	run(T0 + 1400, T0 + 2900); /* one ping until the hang-up */
	ck_assert_uint_eq(f->pings, 1);
	ck_assert_uint_eq(f->hangups, 0);
	run(T0 + 3000, T0 + 3300);
	ck_assert_uint_eq(f->hangups, 1);
	ck_assert_ptr_null(f->link.next); /* off the wheel */
	run(T0 + 3400, T0 + 10000);
	ck_assert_uint_eq(f->pings + f->hangups, 2);
}
END_TEST

START_TEST(test_pong_keeps_it)
{
	struct fake *f = &fakes[0];

	setup_wheel(1000, 3000);
	ws_alive_add(&wheel, &f->link, T0);
	/* answer every ping 50 ms later, for 20 s */
	for (uint64_t t = T0; t <= T0 + 20000; t += 50) {
		unsigned before = f->pings;

		ws_alive_turn(&wheel, t);
		if (f->pings != before)
			ws_alive_pong(&wheel, &f->link, t + 50);
	}
	ck_assert_uint_eq(f->hangups, 0);
	/* every 1 s after the pong, late by a bucket at most: 20 s / 1.3 */
	ck_assert_uint_ge(f->pings, 15);
	ck_assert_uint_le(f->pings, 20);
}
END_TEST

START_TEST(test_frames_are_life)
{
	struct fake *f = &fakes[0];

	setup_wheel(1000, 3000);
	ws_alive_add(&wheel, &f->link, T0);
	for (uint64_t t = T0; t <= T0 + 10000; t += 100) {
		if ((t - T0) % 500 == 0)
			ws_alive_seen(&f->link, t);
		ws_alive_turn(&wheel, t);
	}
	ck_assert_uint_eq(f->pings, 0);
	ck_assert_uint_eq(f->hangups, 0);
	/* silence from here: ping, then hang-up, counted from the last */
	run(T0 + 10100, T0 + 13400);
	ck_assert_uint_eq(f->pings, 1);
	ck_assert_uint_eq(f->hangups, 1);
}
END_TEST

START_TEST(test_beyond_one_lap)
{
	uint64_t span = (uint64_t)WS_ALIVE_TICK_MS * WS_ALIVE_BUCKETS;
	struct fake *f = &fakes[0];

	/* --ws-ping 3600 --ws-hangup 7200 go round the wheel many times */
	setup_wheel(3600000, 7200000);
	ck_assert_uint_lt(span, 3600000);
	ws_alive_add(&wheel, &f->link, T0);
	for (uint64_t t = T0; t < T0 + 3600000; t += 1000)
		ws_alive_turn(&wheel, t);
	ck_assert_uint_eq(f->pings, 0);
	ws_alive_turn(&wheel, T0 + 3600000 + 250);
	ck_assert_uint_eq(f->pings, 1);
	/* looked at once per lap, not once per turn */
	ck_assert_uint_le(wheel.visits, 3600000 / span + 2);
}
END_TEST

/* The cost the wheel exists for: frames on 10,000 links cost no visit,
 * and a turn visits the links due, each once. */
START_TEST(test_cost_is_what_is_due)
{
	setup_wheel(30000, 60000);
	for (size_t i = 0; i < NLINKS; i++)
		ws_alive_add(&wheel, &fakes[i].link, T0 + i); /* 10 s spread */
	for (uint64_t t = T0; t < T0 + 30000; t += 200) {
		for (size_t i = 0; i < NLINKS; i += 100)
			ws_alive_seen(&fakes[i].link, t); /* 100 talk */
		ws_alive_turn(&wheel, t);
	}
	ck_assert_uint_eq(wheel.visits, 0);
	ck_assert_uint_eq(pings, 0);
	/* the first 250 ms of deadlines: about 250 links, not 10,000 */
	ws_alive_turn(&wheel, T0 + 30250);
	ck_assert_uint_le(wheel.visits, 300);
	ck_assert_uint_ge(wheel.visits, 200);
	run(T0 + 30300, T0 + 40300);
	/* each link once; the 100 talkers were filed again, not pinged */
	ck_assert_uint_eq(wheel.visits, NLINKS);
	ck_assert_uint_eq(pings, NLINKS - 100);
	ck_assert_uint_eq(hangups, 0);
	for (size_t i = 0; i < NLINKS; i++)
		ws_alive_remove(&fakes[i].link);
	run(T0 + 40400, T0 + 100000);
	ck_assert_uint_eq(wheel.visits, NLINKS);
}
END_TEST

static Suite *ws_alive_suite(void)
{
	Suite *s = suite_create("ws_alive");
	TCase *tc = tcase_create("wheel");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ping_then_hangup);
	tcase_add_test(tc, test_pong_keeps_it);
	tcase_add_test(tc, test_frames_are_life);
	tcase_add_test(tc, test_beyond_one_lap);
	tcase_add_test(tc, test_cost_is_what_is_due);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(ws_alive_suite)
