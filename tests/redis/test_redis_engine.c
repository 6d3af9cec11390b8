/* The Redis engine: two nodes (a bus and an engine each) in this process
 * and a redis-server of the test's own. Every scenario checks the exact
 * ids a subscriber gets, so a lost, duplicated or reordered message
 * fails it: fan-out to a node with local subscribers, a lost
 * notification (a hole) filled from the stream, the subscription
 * connection killed while the other node publishes (caught up once it
 * is back), Redis killed (publishes DOWN, health off) and restarted
 * with its data (same epoch, nothing twice), without (the gap) or from
 * an older snapshot (a new epoch, the gap); a full read starts a ring at
 * Redis' newest entries. Each
 * node's info counts the other's subscribers; a delete on one node ends
 * the subscribers of the other, which moves to a new epoch. */
#include "../unit/unit.h"

#include "bus.h"
#include "message.h"
#include "payload.h"
#include "redis_engine.h"
#include "redis_server.h"
#include "redis_store.h"
#include "transport.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define WAIT_MS 5000
#define MAXI 64

static struct redis_server rs, rs2;
static size_t nshards = 1;            /* 2: rs and rs2 (the "shards" case) */
static uint64_t engine_history = 100; /* what node_start gives the engine */

struct node {
	struct bus *bus;
	struct redis_engine *engine;
};

static struct node a, b;

/* ---- a subscriber that only counts ---- */

static void noop_sub(struct subscriber *s)
{
	(void)s;
}

static const struct sub_host fake_host = {
	.name = "fake",
	.park = noop_sub,
	.wake = noop_sub,
	.cut = noop_sub,
};
static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void node_start(struct node *n)
{
	const struct bus_config bc = {
		.history_size = 100,
		.history_age_ms = 60000,
		.history_bytes = 1 << 24,
		.max_channels = 1000,
		.lag_limit = 1 << 24,
		.presence_window_ms = 5000,
		.max_pollers = 100,
		.idem_window_ms = 60000,
		.max_idem_keys = 100,
	};
	struct redis_target t[2] = { 0 };
	struct redis_engine_config ec = {
		.shards = t,
		.nshards = nshards,
		.history_size = engine_history,
		.history_age_ms = 60000,
		.idem_window_ms = 60000,
		.retry_ms = 50,
	};

	snprintf(t[0].path, sizeof t[0].path, "%s", rs.sock);
	snprintf(t[1].path, sizeof t[1].path, "%s", rs2.sock);
	n->bus = bus_new(&bc);
	n->engine = redis_engine_start(&ec, n->bus);
	ck_assert_ptr_nonnull(n->engine);
}

static void node_stop(struct node *n)
{
	redis_engine_stop(n->engine);
	bus_free(n->bus);
	redis_engine_free(n->engine);
}

static bool wait_healthy(struct node *n, bool want)
{
	for (int i = 0; i < WAIT_MS / 10; i++) {
		if (redis_engine_healthy(n->engine) == want)
			return true;
		sleep_ms(10);
	}
	return false;
}

static void setup(void)
{
	redis_server_start(&rs);
	node_start(&a);
	node_start(&b);
	ck_assert(wait_healthy(&a, true));
	ck_assert(wait_healthy(&b, true));
}

static void teardown(void)
{
	node_stop(&a);
	node_stop(&b);
	redis_server_stop(&rs);
}

static void setup_shards(void)
{
	nshards = 2;
	redis_server_start(&rs2);
	setup();
}

static void teardown_shards(void)
{
	teardown();
	redis_server_stop(&rs2);
}

/* ---- publishing through a node, waiting for Redis' answer ---- */

struct answer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	enum redis_engine_status st;
	uint64_t epoch, id;
};

static void on_done(void *cls, enum redis_engine_status st, uint64_t epoch,
		    uint64_t id)
{
	struct answer *ans = cls;

	pthread_mutex_lock(&ans->lock);
	ans->done = true;
	ans->st = st;
	ans->epoch = epoch;
	ans->id = id;
	pthread_cond_signal(&ans->cond);
	pthread_mutex_unlock(&ans->lock);
}

static struct answer publish(struct node *n, const char *ch, const char *text)
{
	struct payload p = { .json = (char *)text, .len = strlen(text) };
	struct message_spec spec = { .channel = ch, .data = &p };
	struct answer ans = { .done = false };
	struct timespec until;

	pthread_mutex_init(&ans.lock, NULL);
	pthread_cond_init(&ans.cond, NULL);
	redis_engine_publish(n->engine, ch, strlen(ch),
			     message_new(&spec, bus_wall_ms(), bus_now_ms()),
			     NULL, 0, on_done, &ans);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&ans.lock);
	while (!ans.done)
		if (pthread_cond_timedwait(&ans.cond, &ans.lock, &until) != 0)
			break;
	pthread_mutex_unlock(&ans.lock);
	ck_assert_msg(ans.done, "no answer to a publish within 5 s");
	pthread_mutex_destroy(&ans.lock);
	pthread_cond_destroy(&ans.cond);
	return ans;
}

/* ---- subscribing ---- */

struct tsub {
	struct subscriber sub;
	uint64_t ids[256], epochs[256]; /* 0: a gap */
	size_t n;
};

static void attach(struct node *n, struct tsub *t, const char *ch)
{
	struct channel_list list = { .count = 1 };
	struct cursor start;
	struct bus_channel_info info;

	memset(t, 0, sizeof *t);
	t->sub.transport = &transport_sse;
	t->sub.host = &fake_host;
	list.name[0] = ch;
	list.len[0] = strlen(ch);
	ck_assert_int_eq(bus_attach(n->bus, &t->sub, &list, NULL, &start),
			 BUS_OK);
	/* synced: the channel has Redis' epoch */
	for (int i = 0; i < WAIT_MS / 10; i++) {
		bus_info(n->bus, ch, strlen(ch), &info);
		if (info.epoch)
			return;
		sleep_ms(10);
	}
	ck_abort_msg("channel %s not synced within 5 s", ch);
}

/* Pull until the subscriber has want items, or for at most ms. */
static void collect_for(struct node *n, struct tsub *t, size_t want, int ms)
{
	for (int i = 0; i < ms / 10 && t->n < want; i++) {
		struct bus_item items[MAXI];
		struct bus_pull out;

		bus_pull(n->bus, &t->sub, items, MAXI, 1 << 20, false, &out);
		for (size_t k = 0; k < out.count && t->n < 256; k++) {
			t->ids[t->n] = items[k].msg ? items[k].msg->id : 0;
			t->epochs[t->n++] = items[k].epoch;
		}
		bus_items_release(items, out.count);
		if (out.count == 0)
			sleep_ms(10);
	}
}

static void collect(struct node *n, struct tsub *t, size_t want)
{
	collect_for(n, t, want, WAIT_MS);
}

/* Whatever else arrives within 300 ms: there should be nothing. */
static void settle(struct node *n, struct tsub *t)
{
	collect_for(n, t, SIZE_MAX, 300);
}

/* Exactly the ids first..last, in order: nothing lost, twice or out of
 * order. */
static void expect_ids(const struct tsub *t, size_t from, uint64_t first,
		       uint64_t last, uint64_t epoch)
{
	ck_assert_uint_eq(t->n - from, last - first + 1);
	for (size_t i = 0; i <= last - first; i++) {
		ck_assert_uint_eq(t->ids[from + i], first + i);
		ck_assert_uint_eq(t->epochs[from + i], epoch);
	}
}

START_TEST(test_fanout_between_nodes)
{
	struct tsub s;
	struct answer ans;
	uint64_t epoch = 0;

	attach(&a, &s, "c");
	for (int i = 1; i <= 20; i++) {
		ans = publish(&b, "c", "1");
		ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
		ck_assert_uint_eq(ans.id, (uint64_t)i);
		epoch = ans.epoch;
	}
	collect(&a, &s, 20);
	settle(&a, &s); /* nothing more may come */
	expect_ids(&s, 0, 1, 20, epoch);
	/* a node's own publishes reach its own subscribers too */
	ans = publish(&a, "c", "2");
	collect(&a, &s, 21);
	settle(&a, &s);
	expect_ids(&s, 0, 1, 21, epoch);
	bus_detach(a.bus, &s.sub);
}
END_TEST

START_TEST(test_hole_filled_from_stream)
{
	struct redis_publish p = {
		.channel = "h",
		.channel_len = 1,
		.event = "message",
		.from = "",
		.data = "7",
		.data_len = 1,
		.ts_ms = bus_wall_ms(),
		.new_epoch = 1,
		.history_size = 100,
		.history_age_ms = 60000,
		.idem_window_ms = 1,
	};
	redisContext *rc = redis_server_connect(&rs);
	struct redis_cmd cmd;
	struct tsub s;
	struct answer ans;
	redisReply *r;

	attach(&a, &s, "h");
	/* stored, but its notification goes nowhere: a lost one */
	redis_store_publish_cmd(&p, true, &cmd);
	for (int i = 0; i < cmd.argc; i++)
		if (cmd.argvlen[i] == 8 &&
		    memcmp(cmd.argv[i], "ap:{h}:n", 8) == 0)
			cmd.argv[i] = "ap:{x}:n";
	r = redisCommandArgv(rc, cmd.argc, cmd.argv, cmd.argvlen);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	settle(&a, &s);
	ck_assert_uint_eq(s.n, 0); /* no notification: nothing yet */
	ans = publish(&b, "h", "8");
	ck_assert_uint_eq(ans.id, 2);
	collect(&a, &s, 2);
	settle(&a, &s);
	expect_ids(&s, 0, 1, 2, ans.epoch);
	redisFree(rc);
	bus_detach(a.bus, &s.sub);
}
END_TEST

START_TEST(test_catch_up_after_pubsub_lost)
{
	redisContext *rc = redis_server_connect(&rs);
	struct tsub s;
	struct answer ans;
	redisReply *r;

	attach(&a, &s, "k");
	ans = publish(&b, "k", "1");
	collect(&a, &s, 1);
	/* both nodes lose their subscriptions; b's publishes go on */
	r = redisCommand(rc, "CLIENT KILL TYPE pubsub");
	freeReplyObject(r);
	for (int i = 0; i < 5; i++)
		ans = publish(&b, "k", "2");
	ck_assert(wait_healthy(&a, true));
	collect(&a, &s, 6);
	settle(&a, &s);
	expect_ids(&s, 0, 1, 6, ans.epoch);
	redisFree(rc);
	bus_detach(a.bus, &s.sub);
}
END_TEST

START_TEST(test_redis_restart_with_data)
{
	redisContext *rc = redis_server_connect(&rs);
	struct answer ans, first;
	struct tsub s;
	redisReply *r;

	attach(&a, &s, "d");
	first = publish(&b, "d", "1");
	publish(&b, "d", "2");
	collect(&a, &s, 2);
	r = redisCommand(rc, "SAVE");
	freeReplyObject(r);
	redisFree(rc);
	redis_server_kill(&rs);
	ck_assert(wait_healthy(&b, false));
	ans = publish(&b, "d", "3");
	ck_assert_int_eq(ans.st, REDIS_ENGINE_DOWN);
	redis_server_run(&rs);
	ck_assert(wait_healthy(&a, true));
	ck_assert(wait_healthy(&b, true));
	ans = publish(&b, "d", "4");
	ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
	ck_assert_uint_eq(ans.epoch, first.epoch);
	ck_assert_uint_eq(ans.id, 3);
	collect(&a, &s, 3);
	settle(&a, &s);
	expect_ids(&s, 0, 1, 3, first.epoch);
	bus_detach(a.bus, &s.sub);
}
END_TEST

START_TEST(test_redis_restart_without_data_is_a_gap)
{
	struct answer ans, first;
	struct tsub s;

	attach(&a, &s, "g");
	first = publish(&b, "g", "1");
	collect(&a, &s, 1);
	redis_server_kill(&rs);
	unlink(rs.rdb);
	ck_assert(wait_healthy(&a, false));
	redis_server_run(&rs);
	ck_assert(wait_healthy(&a, true));
	ck_assert(wait_healthy(&b, true));
	ans = publish(&b, "g", "2");
	ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
	ck_assert_uint_ne(ans.epoch, first.epoch);
	ck_assert_uint_eq(ans.id, 1);
	collect(&a, &s, 3);
	settle(&a, &s);
	/* 1 of the old epoch, then the gap, then 1 of the new one */
	ck_assert_uint_eq(s.n, 3);
	ck_assert_uint_eq(s.ids[0], 1);
	ck_assert_uint_eq(s.epochs[0], first.epoch);
	ck_assert_uint_eq(s.ids[1], 0);
	ck_assert_uint_eq(s.epochs[1], ans.epoch);
	ck_assert_uint_eq(s.ids[2], 1);
	ck_assert_uint_eq(s.epochs[2], ans.epoch);
	bus_detach(a.bus, &s.sub);
}
END_TEST

/* Redis restarted from a snapshot older than the last writes: the node
 * whose ring has ids past Redis' last moves the channel to a new epoch
 * on its catch-up read, so its subscriber gets the gap and then id 1 of
 * the new epoch, never a new message under an id it already had. */
START_TEST(test_redis_back_with_older_data_is_a_gap)
{
	redisContext *rc = redis_server_connect(&rs);
	struct answer ans, first;
	struct bus_channel_info info;
	struct tsub s;
	redisReply *r;

	attach(&a, &s, "o");
	first = publish(&b, "o", "1");
	publish(&b, "o", "2");
	r = redisCommand(rc, "SAVE");
	freeReplyObject(r);
	redisFree(rc);
	publish(&b, "o", "3");
	publish(&b, "o", "4");
	collect(&a, &s, 4);
	redis_server_kill(&rs);
	ck_assert(wait_healthy(&a, false));
	redis_server_run(&rs);
	ck_assert(wait_healthy(&a, true));
	ck_assert(wait_healthy(&b, true));
	for (int i = 0; i < WAIT_MS / 10; i++) {
		bus_info(a.bus, "o", 1, &info);
		if (info.epoch != first.epoch)
			break;
		sleep_ms(10);
	}
	ck_assert_uint_ne(info.epoch, first.epoch);
	ans = publish(&b, "o", "5");
	ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
	ck_assert_uint_eq(ans.epoch, info.epoch);
	ck_assert_uint_eq(ans.id, 1);
	collect(&a, &s, 6);
	settle(&a, &s);
	/* 1..4 of the old epoch, the gap, 1 of the new one */
	ck_assert_uint_eq(s.n, 6);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(s.ids[i], i + 1);
		ck_assert_uint_eq(s.epochs[i], first.epoch);
	}
	ck_assert_uint_eq(s.ids[4], 0);
	ck_assert_uint_eq(s.epochs[4], ans.epoch);
	expect_ids(&s, 5, 1, 1, ans.epoch);
	bus_detach(a.bus, &s.sub);
}
END_TEST

/* The same loss with no reconnect (say a replica promoted behind a
 * proxy that kept the connections): the node's own publish gets an id
 * its ring already has, and the read that asks for finds Redis behind
 * the ring. That publish falls inside the gap; the next is id 1. */
START_TEST(test_own_publish_behind_the_ring_is_a_gap)
{
	redisContext *rc = redis_server_connect(&rs);
	struct answer ans, first, lost;
	struct tsub s;
	redisReply *r;
	bool early;

	attach(&a, &s, "p");
	first = publish(&a, "p", "1");
	for (int i = 0; i < 3; i++)
		publish(&a, "p", "1");
	collect(&a, &s, 4);
	/* Redis forgets ids 3 and 4 */
	r = redisCommand(rc, "HSET ap:{p}:m last 2");
	freeReplyObject(r);
	r = redisCommand(rc, "XTRIM ap:{p}:s MAXLEN 0");
	freeReplyObject(r);
	r = redisCommand(rc, "XSETID ap:{p}:s 2-0");
	freeReplyObject(r);
	redisFree(rc);
	lost = publish(&a, "p", "2");
	ck_assert_int_eq(lost.st, REDIS_ENGINE_STORED);
	/* The loss is found by the read this publish triggers when it comes
	 * back with an id the ring holds (3), or sooner: a read the node
	 * sent for its own earlier publishes may reach Redis after the
	 * forgetting, and then this publish already opens the new epoch. */
	early = lost.epoch != first.epoch;
	ck_assert_uint_eq(lost.id, early ? 1 : 3);
	collect(&a, &s, early ? 6 : 5);
	ans = publish(&a, "p", "3");
	ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
	ck_assert_uint_ne(ans.epoch, first.epoch);
	ck_assert_uint_eq(ans.id, early ? 2 : 1);
	collect(&a, &s, early ? 7 : 6);
	settle(&a, &s);
	ck_assert_uint_eq(s.n, early ? 7 : 6);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_uint_eq(s.ids[i], i + 1);
		ck_assert_uint_eq(s.epochs[i], first.epoch);
	}
	/* the gap, then the new epoch from its first id, nothing twice */
	ck_assert_uint_eq(s.ids[4], 0);
	ck_assert_uint_eq(s.epochs[4], ans.epoch);
	expect_ids(&s, 5, 1, ans.id, ans.epoch);
	bus_detach(a.bus, &s.sub);
}
END_TEST

/* A node whose engine keeps fewer entries than the stream holds starts
 * its ring at Redis' head (the newest entries), not at the oldest. */
START_TEST(test_full_read_takes_the_newest)
{
	struct bus_channel_info info;
	struct tsub s;

	node_stop(&a);
	engine_history = 3;
	node_start(&a);
	engine_history = 100;
	ck_assert(wait_healthy(&a, true));
	for (int i = 0; i < 10; i++)
		publish(&b, "nw", "1");
	attach(&a, &s, "nw");
	bus_info(a.bus, "nw", 2, &info);
	ck_assert_uint_eq(info.oldest_id, 8);
	ck_assert_uint_eq(info.last_id, 10);
	bus_detach(a.bus, &s.sub);
}
END_TEST

/* ---- what nodes tell each other: counts, info, control ---- */

struct info_answer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done, down;
	struct redis_info in;
	long long n;
};

static void on_info(void *cls, const struct redis_info *in)
{
	struct info_answer *ans = cls;

	pthread_mutex_lock(&ans->lock);
	ans->done = true;
	ans->down = in == NULL;
	if (in)
		ans->in = *in;
	pthread_cond_signal(&ans->cond);
	pthread_mutex_unlock(&ans->lock);
}

static void on_admin(void *cls, long long n)
{
	struct info_answer *ans = cls;

	pthread_mutex_lock(&ans->lock);
	ans->done = true;
	ans->n = n;
	pthread_cond_signal(&ans->cond);
	pthread_mutex_unlock(&ans->lock);
}

static void answer_wait(struct info_answer *ans)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&ans->lock);
	while (!ans->done)
		if (pthread_cond_timedwait(&ans->cond, &ans->lock, &until) != 0)
			break;
	pthread_mutex_unlock(&ans->lock);
	ck_assert_msg(ans->done, "no answer from the engine within 5 s");
	pthread_mutex_destroy(&ans->lock);
	pthread_cond_destroy(&ans->cond);
}

static struct redis_info ask_info(struct node *n, const char *ch)
{
	struct info_answer ans = { .done = false };

	pthread_mutex_init(&ans.lock, NULL);
	pthread_cond_init(&ans.cond, NULL);
	redis_engine_info(n->engine, ch, strlen(ch), on_info, &ans);
	answer_wait(&ans);
	ck_assert(!ans.down);
	return ans.in;
}

/* Other nodes' SSE count of ch as n's info sees it reaches want. */
static void wait_others_sse(struct node *n, const char *ch, size_t want)
{
	size_t got = 0;

	for (int i = 0; i < WAIT_MS / 20; i++) {
		got = ask_info(n, ch).subscribers[TRANSPORT_SSE];
		if (got == want)
			return;
		sleep_ms(20);
	}
	ck_abort_msg("other nodes' sse count of %s: %zu, want %zu", ch, got,
		     want);
}

/* Each node's info counts the other's subscribers, not its own; a
 * channel in use on no node is known from Redis. */
START_TEST(test_counts_and_info)
{
	struct tsub s1, s2, s3;
	struct redis_info in;

	attach(&a, &s1, "cnt");
	attach(&a, &s2, "cnt");
	attach(&b, &s3, "cnt");
	wait_others_sse(&b, "cnt", 2);
	wait_others_sse(&a, "cnt", 1);
	bus_detach(a.bus, &s1.sub);
	wait_others_sse(&b, "cnt", 1);
	bus_detach(a.bus, &s2.sub);
	wait_others_sse(&b, "cnt", 0);
	bus_detach(b.bus, &s3.sub);
	for (int i = 1; i <= 3; i++)
		ck_assert_int_eq(publish(&a, "quiet", "1").st,
				 REDIS_ENGINE_STORED);
	in = ask_info(&b, "quiet");
	ck_assert(in.exists);
	ck_assert_uint_eq(in.last_id, 3);
	ck_assert_uint_eq(in.oldest_id, 1);
	ck_assert_uint_eq(in.retained, 3);
	in = ask_info(&b, "never");
	ck_assert(!in.exists);
	ck_assert_uint_eq(in.oldest_id, 1);
}
END_TEST

/* A delete removes the channel's keys and ends its subscribers on the
 * other node, whose ring moves to a new epoch: an old cursor is a gap. */
START_TEST(test_delete_reaches_every_node)
{
	struct info_answer ans = { .done = false };
	struct tsub s;
	struct bus_channel_info info;
	uint64_t old;
	bool ended = false;

	attach(&a, &s, "del");
	old = publish(&b, "del", "1").epoch;
	publish(&b, "del", "2");
	collect(&a, &s, 2);
	expect_ids(&s, 0, 1, 2, old);
	pthread_mutex_init(&ans.lock, NULL);
	pthread_cond_init(&ans.cond, NULL);
	redis_engine_delete(b.engine, "del", 3, on_admin, &ans);
	answer_wait(&ans);
	ck_assert_int_eq(ans.n, 2); /* meta and stream */
	for (int i = 0; i < WAIT_MS / 10 && !ended; i++) {
		struct bus_item items[MAXI];
		struct bus_pull out;

		bus_pull(a.bus, &s.sub, items, MAXI, 1 << 20, false, &out);
		bus_items_release(items, out.count);
		ended = out.end == SUB_END_ADMIN;
		if (!ended)
			sleep_ms(10);
	}
	ck_assert_msg(ended, "node A's subscriber was not ended");
	bus_detach(a.bus, &s.sub);
	for (int i = 0; i < WAIT_MS / 10; i++) {
		bus_info(a.bus, "del", 3, &info);
		if (info.epoch != old && info.epoch != 0)
			break;
		sleep_ms(10);
	}
	ck_assert_uint_ne(info.epoch, old);
	ck_assert_uint_eq(publish(&b, "del", "3").id, 1);
}
END_TEST

/* The keys of channels (not the nodes' counts, redis_nodes.h). */
static long long channel_keys(const struct redis_server *server)
{
	redisContext *c = redis_server_connect(server);
	redisReply *r = redisCommand(c, "KEYS ap:{*");
	long long n;

	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	n = (long long)r->elements;
	freeReplyObject(r);
	redisFree(c);
	return n;
}

/* Channels spread over two Redis instances, each channel's ids its own,
 * and a node reading channels of both. */
START_TEST(test_two_shards)
{
	static const char *names[] = { "s0", "s1", "s2", "s3",
				       "s4", "s5", "s6", "s7" };
	struct tsub subs[8];
	uint64_t epochs[8];
	size_t on[2] = { 0, 0 };

	for (size_t i = 0; i < 8; i++) {
		attach(&a, &subs[i], names[i]);
		on[redis_shard_of(names[i], 2, 2)]++;
	}
	/* the fixed hash puts some of these names on each shard */
	ck_assert_uint_gt(on[0], 0);
	ck_assert_uint_gt(on[1], 0);
	for (int round = 1; round <= 5; round++)
		for (size_t i = 0; i < 8; i++) {
			struct answer ans = publish(&b, names[i], "1");

			ck_assert_int_eq(ans.st, REDIS_ENGINE_STORED);
			ck_assert_uint_eq(ans.id, (uint64_t)round);
			epochs[i] = ans.epoch;
		}
	for (size_t i = 0; i < 8; i++) {
		collect(&a, &subs[i], 5);
		settle(&a, &subs[i]);
		expect_ids(&subs[i], 0, 1, 5, epochs[i]);
		bus_detach(a.bus, &subs[i].sub);
	}
	/* each instance holds the keys of its own channels: 2 per channel
	 * (meta and stream) */
	ck_assert_int_eq(channel_keys(&rs), (long long)(2 * on[0]));
	ck_assert_int_eq(channel_keys(&rs2), (long long)(2 * on[1]));
}
END_TEST

static Suite *redis_engine_suite(void)
{
	Suite *s = suite_create("redis_engine");
	TCase *tc = tcase_create("core");
	TCase *shards = tcase_create("shards");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fanout_between_nodes);
	tcase_add_test(tc, test_hole_filled_from_stream);
	tcase_add_test(tc, test_catch_up_after_pubsub_lost);
	tcase_add_test(tc, test_redis_restart_with_data);
	tcase_add_test(tc, test_redis_restart_without_data_is_a_gap);
	tcase_add_test(tc, test_redis_back_with_older_data_is_a_gap);
	tcase_add_test(tc, test_own_publish_behind_the_ring_is_a_gap);
	tcase_add_test(tc, test_full_read_takes_the_newest);
	tcase_add_test(tc, test_counts_and_info);
	tcase_add_test(tc, test_delete_reaches_every_node);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(shards, setup_shards, teardown_shards);
	tcase_add_test(shards, test_two_shards);
	suite_add_tcase(s, shards);
	return s;
}

UNIT_MAIN(redis_engine_suite)
