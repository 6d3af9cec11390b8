/* The Redis layout against a real redis-server (tests/redis/
 * redis_server.h): ids and the epoch given atomically, history trimmed
 * and aged, reads after a cursor, idempotency keys, a channel Redis lost
 * starting a new epoch, the notification, and a message rebuilt from
 * Redis being byte for byte the one its publisher built. */
#include "../unit/unit.h"

#include "message.h"
#include "payload.h"
#include "redis_server.h"
#include "redis_store.h"

#include <string.h>

static struct redis_server rs;
static redisContext *rc;

static void setup(void)
{
	redis_server_start(&rs);
	rc = redis_server_connect(&rs);
}

static void teardown(void)
{
	redisFree(rc);
	redis_server_stop(&rs);
}

/* Run a built command, sending the script's text after NOSCRIPT. */
static redisReply *run(struct redis_cmd *cmd, bool *had_noscript)
{
	redisReply *r = redisCommandArgv(rc, cmd->argc, cmd->argv,
					 cmd->argvlen);

	ck_assert_ptr_nonnull(r);
	if (had_noscript)
		*had_noscript = redis_store_noscript(r);
	return r;
}

static struct redis_publish spec(const char *channel, const char *data)
{
	struct redis_publish p = {
		.channel = channel,
		.channel_len = strlen(channel),
		.event = "message",
		.from = "",
		.data = data,
		.data_len = strlen(data),
		.ts_ms = 1700000000123,
		.new_epoch = 4242,
		.history_size = 100,
		.history_age_ms = 60000,
		.idem_window_ms = 60000,
	};
	return p;
}

/* Publish (EVAL, so a fresh server needs no SCRIPT LOAD). */
static struct redis_published publish(const struct redis_publish *p)
{
	struct redis_published out;
	struct redis_cmd cmd;
	redisReply *r;

	redis_store_publish_cmd(p, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_msg(r->type != REDIS_REPLY_ERROR, "publish: %s", r->str);
	ck_assert_int_eq(redis_store_publish_reply(r, p->idem_hash, &out), 0);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	return out;
}

static redisReply *read_range(const char *channel, uint64_t after, size_t count,
			      struct redis_range *range)
{
	struct redis_cmd cmd;
	redisReply *r;

	redis_store_read_cmd(channel, strlen(channel), after, count, 0, 0, true,
			     &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, range), 0);
	redis_cmd_free(&cmd);
	return r;
}

static long long integer(const char *fmt, const char *arg)
{
	redisReply *r = redisCommand(rc, fmt, arg);
	long long v;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

START_TEST(test_script_sha)
{
	struct redis_publish p = spec("c", "1");
	struct redis_cmd cmd;
	redisReply *r;
	bool noscript;

	/* a fresh server has no script: EVALSHA says so */
	redis_store_publish_cmd(&p, false, &cmd);
	r = run(&cmd, &noscript);
	ck_assert(noscript);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	publish(&p);
	/* EVAL cached the text: its SHA1 is the one EVALSHA sends */
	redis_store_publish_cmd(&p, false, &cmd);
	r = run(&cmd, &noscript);
	ck_assert(!noscript);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	redis_store_read_cmd(LIT("c"), 0, 1, 0, 0, true, &cmd);
	freeReplyObject(run(&cmd, NULL));
	redis_cmd_free(&cmd);
	redis_store_read_cmd(LIT("c"), 0, 1, 0, 0, false, &cmd);
	r = run(&cmd, &noscript);
	ck_assert(!noscript);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
}
END_TEST

START_TEST(test_ids_and_epoch)
{
	struct redis_publish p = spec("chat", "\"hi\"");
	struct redis_published a, b, c;

	a = publish(&p);
	/* the epoch offered later is ignored: the channel has one */
	p.new_epoch = 777;
	b = publish(&p);
	c = publish(&p);
	ck_assert_int_eq(a.kind, REDIS_STORED);
	ck_assert_uint_eq(a.epoch, 4242);
	ck_assert_uint_eq(b.epoch, 4242);
	ck_assert_uint_eq(c.epoch, 4242);
	ck_assert_uint_eq(a.id, 1);
	ck_assert_uint_eq(b.id, 2);
	ck_assert_uint_eq(c.id, 3);
	/* another channel has its own ids */
	p = spec("other", "1");
	ck_assert_uint_eq(publish(&p).id, 1);
}
END_TEST

START_TEST(test_history_trimmed_and_aged)
{
	struct redis_publish p = spec("h", "1");
	struct redis_record rec;
	struct redis_range range;
	redisReply *r;
	long long ttl;

	p.history_size = 3;
	p.history_age_ms = 30000;
	for (int i = 0; i < 5; i++)
		publish(&p);
	ck_assert_int_eq(integer("XLEN %s", "ap:{h}:s"), 3);
	ttl = integer("PTTL %s", "ap:{h}:s");
	ck_assert_int_gt(ttl, 0);
	ck_assert_int_le(ttl, 30000);
	/* the epoch and last id outlive the history, like a tomb */
	ck_assert_int_gt(integer("PTTL %s", "ap:{h}:m"), 30000);
	r = read_range("h", 0, 100, &range);
	ck_assert(range.exists);
	ck_assert_uint_eq(range.epoch, 4242);
	ck_assert_uint_eq(range.last_id, 5);
	ck_assert_uint_eq(range.count, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(redis_store_range_entry(&range, i, &rec), 0);
		ck_assert_uint_eq(rec.id, 3 + i);
		ck_assert_uint_eq(rec.epoch, 4242);
	}
	freeReplyObject(r);
}
END_TEST

START_TEST(test_read_after_cursor)
{
	struct redis_publish p = spec("r", "1");
	struct redis_record rec;
	struct redis_range range;
	redisReply *r;

	for (int i = 0; i < 6; i++)
		publish(&p);
	r = read_range("r", 4, 100, &range);
	ck_assert_uint_eq(range.count, 2);
	ck_assert_int_eq(redis_store_range_entry(&range, 0, &rec), 0);
	ck_assert_uint_eq(rec.id, 5);
	freeReplyObject(r);
	/* a count bounds the read */
	r = read_range("r", 0, 2, &range);
	ck_assert_uint_eq(range.count, 2);
	ck_assert_int_eq(redis_store_range_entry(&range, 1, &rec), 0);
	ck_assert_uint_eq(rec.id, 2);
	ck_assert_int_eq(redis_store_range_entry(&range, 2, &rec), -1);
	freeReplyObject(r);
	/* the head alone */
	r = read_range("r", 0, 0, &range);
	ck_assert(range.exists);
	ck_assert_uint_eq(range.last_id, 6);
	ck_assert_uint_eq(range.count, 0);
	freeReplyObject(r);
	/* a channel Redis does not know */
	r = read_range("nobody", 0, 10, &range);
	ck_assert(!range.exists);
	freeReplyObject(r);
	ck_assert_int_eq(integer("EXISTS %s", "ap:{nobody}:m"), 0);
}
END_TEST

/* A node reading a channel nobody published to yet creates it, so all
 * nodes agree on the epoch a first publish will use. */
START_TEST(test_read_creates_channel)
{
	struct redis_publish p = spec("fresh", "1");
	struct redis_published a;
	struct redis_range range;
	struct redis_cmd cmd;
	redisReply *r;

	redis_store_read_cmd(LIT("fresh"), 0, 8, 31337, 60000, true, &cmd);
	r = run(&cmd, NULL);
	redis_cmd_free(&cmd);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert(range.exists);
	ck_assert_uint_eq(range.epoch, 31337);
	ck_assert_uint_eq(range.last_id, 0);
	ck_assert_uint_eq(range.count, 0);
	freeReplyObject(r);
	ck_assert_int_gt(integer("PTTL %s", "ap:{fresh}:m"), 60000);
	/* another node's read, and the publish, keep that epoch */
	redis_store_read_cmd(LIT("fresh"), 0, 8, 555, 60000, true, &cmd);
	r = run(&cmd, NULL);
	redis_cmd_free(&cmd);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.epoch, 31337);
	freeReplyObject(r);
	a = publish(&p);
	ck_assert_uint_eq(a.epoch, 31337);
	ck_assert_uint_eq(a.id, 1);
}
END_TEST

START_TEST(test_idempotency_keys)
{
	struct redis_publish p = spec("k", "\"x\"");
	struct redis_published a, b, c, d;
	struct redis_range range;
	redisReply *r;
	long long ttl;

	publish(&p);
	p.idem_key = "order-1";
	p.idem_hash = 77;
	p.idem_window_ms = 20000;
	a = publish(&p);
	ck_assert_int_eq(a.kind, REDIS_STORED);
	ck_assert_uint_eq(a.id, 2);
	ttl = integer("PTTL %s", "ap:{k}:k:order-1");
	ck_assert_int_gt(ttl, 0);
	ck_assert_int_le(ttl, 20000);
	/* the retry is answered from the key, and nothing is appended */
	b = publish(&p);
	ck_assert_int_eq(b.kind, REDIS_REPLAYED);
	ck_assert_uint_eq(b.epoch, a.epoch);
	ck_assert_uint_eq(b.id, 2);
	r = read_range("k", 0, 0, &range);
	ck_assert_uint_eq(range.last_id, 2);
	freeReplyObject(r);
	ck_assert_int_eq(integer("XLEN %s", "ap:{k}:s"), 2);
	/* the same key for another message */
	p.idem_hash = 78;
	c = publish(&p);
	ck_assert_int_eq(c.kind, REDIS_CONFLICT);
	/* keys are per channel */
	p.channel = "k2";
	p.channel_len = 2;
	d = publish(&p);
	ck_assert_int_eq(d.kind, REDIS_STORED);
	ck_assert_uint_eq(d.id, 1);
}
END_TEST

START_TEST(test_lost_channel_new_epoch)
{
	struct redis_publish p = spec("lost", "1");
	struct redis_published a;
	redisReply *r;

	publish(&p);
	publish(&p);
	r = redisCommand(rc, "FLUSHALL");
	freeReplyObject(r);
	p.new_epoch = 9999;
	a = publish(&p);
	ck_assert_uint_eq(a.epoch, 9999);
	ck_assert_uint_eq(a.id, 1);
	/* a stream that outlived its meta (evicted meta) does not leak old
	 * entries into the new epoch */
	r = redisCommand(rc, "DEL ap:{lost}:m");
	freeReplyObject(r);
	p.new_epoch = 10000;
	a = publish(&p);
	ck_assert_uint_eq(a.epoch, 10000);
	ck_assert_uint_eq(a.id, 1);
	ck_assert_int_eq(integer("XLEN %s", "ap:{lost}:s"), 1);
}
END_TEST

/* Redis came back with older data (a snapshot before the last writes):
 * a node holding ids past Redis' last in the same epoch moves the
 * channel to a new epoch in the read itself, once: a second node (or the
 * same one again) holding the old epoch finds the new one and changes
 * nothing, and the next publish is id 1 there. */
START_TEST(test_read_behind_held_new_epoch)
{
	struct redis_publish p = spec("rb", "1");
	struct redis_read rd = {
		.count = 100,
		.new_epoch = 777,
		.history_age_ms = 60000,
		.held_epoch = 4242,
		.held_last_id = 3,
		.newest = true,
	};
	struct redis_range range;
	struct redis_published a;
	struct redis_cmd cmd;
	redisReply *r;

	for (int i = 0; i < 3; i++)
		publish(&p);
	/* held == Redis' last: nothing lost, nothing changed */
	redis_store_read_held_cmd(LIT("rb"), &rd, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.epoch, 4242);
	ck_assert_uint_eq(range.last_id, 3);
	ck_assert_uint_eq(range.count, 3);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	/* held past Redis' last, but 0 for the new epoch (a backfill):
	 * nothing created nor reset */
	rd.held_last_id = 5;
	rd.new_epoch = 0;
	redis_store_read_held_cmd(LIT("rb"), &rd, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.epoch, 4242);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	/* held past Redis' last in its epoch: lost, a new epoch, empty */
	rd.new_epoch = 777;
	redis_store_read_held_cmd(LIT("rb"), &rd, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.epoch, 777);
	ck_assert_uint_eq(range.last_id, 0);
	ck_assert_uint_eq(range.count, 0);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	ck_assert_int_eq(integer("EXISTS %s", "ap:{rb}:s"), 0);
	/* a second node holding the old epoch: the new one, not another */
	rd.new_epoch = 888;
	redis_store_read_held_cmd(LIT("rb"), &rd, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.epoch, 777);
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	a = publish(&p);
	ck_assert_uint_eq(a.epoch, 777);
	ck_assert_uint_eq(a.id, 1);
}
END_TEST

/* newest: the last count entries after the id, in rising order; without
 * it, the first. */
START_TEST(test_read_newest)
{
	struct redis_publish p = spec("nw", "1");
	struct redis_read rd = { .count = 3, .newest = true };
	struct redis_range range;
	struct redis_record rec;
	struct redis_cmd cmd;
	redisReply *r;

	for (int i = 0; i < 10; i++)
		publish(&p);
	redis_store_read_held_cmd(LIT("nw"), &rd, true, &cmd);
	r = run(&cmd, NULL);
	ck_assert_int_eq(redis_store_read_reply(r, &range), 0);
	ck_assert_uint_eq(range.count, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(redis_store_range_entry(&range, i, &rec), 0);
		ck_assert_uint_eq(rec.id, 8 + i);
	}
	freeReplyObject(r);
	redis_cmd_free(&cmd);
	r = read_range("nw", 0, 3, &range);
	ck_assert_int_eq(redis_store_range_entry(&range, 0, &rec), 0);
	ck_assert_uint_eq(rec.id, 1);
	freeReplyObject(r);
}
END_TEST

START_TEST(test_notification)
{
	struct redis_publish p = spec("news", "{\"a\":1}");
	redisContext *sub = redis_server_connect(&rs);
	char chan[REDIS_KEY_MAX];
	struct redis_record rec;
	const char *name;
	size_t name_len;
	redisReply *r;

	redis_store_notice_channel(LIT("news"), chan);
	ck_assert_str_eq(chan, "ap:{news}:n");
	r = redisCommand(sub, "SUBSCRIBE %s", chan);
	freeReplyObject(r);
	p.event = "update";
	p.from = "alice";
	p.exclude_sender = true;
	publish(&p);
	ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
	ck_assert_uint_eq(r->elements, 3);
	ck_assert_int_eq(redis_store_channel_of_notice(r->element[1]->str,
						       r->element[1]->len,
						       &name, &name_len),
			 0);
	ck_assert_uint_eq(name_len, 4);
	ck_assert_int_eq(memcmp(name, "news", 4), 0);
	ck_assert_int_eq(redis_store_decode_notice(r->element[2]->str,
						   r->element[2]->len, &rec),
			 0);
	ck_assert_uint_eq(rec.epoch, 4242);
	ck_assert_uint_eq(rec.id, 1);
	ck_assert_int_eq(rec.ts_ms, 1700000000123);
	ck_assert_str_eq(rec.event, "update");
	ck_assert_str_eq(rec.from, "alice");
	ck_assert(rec.exclude_sender);
	ck_assert(!rec.binary);
	ck_assert_uint_eq(rec.data_len, 7);
	ck_assert_int_eq(memcmp(rec.data, "{\"a\":1}", 7), 0);
	freeReplyObject(r);
	redisFree(sub);
}
END_TEST

/* The local build of a message and the rebuild from its Redis record,
 * both sealed at the same place, are the same bytes. */
static void same_message(const char *event, const char *from, bool excl,
			 const struct payload *data)
{
	struct message_spec ms = { .channel = "same",
				   .event = event,
				   .from = from,
				   .exclude_sender = excl,
				   .data = data };
	struct redis_publish p = spec("same", "");
	struct message *local, *remote;
	struct redis_published at;
	struct redis_record rec;
	struct redis_range range;
	redisReply *r;

	p.event = event;
	p.from = from;
	p.exclude_sender = excl;
	p.binary = data->binary;
	p.data = data->binary ? data->raw : data->json;
	p.data_len = data->binary ? data->raw_len : data->len;
	at = publish(&p);
	local = message_new(&ms, p.ts_ms, 5);
	message_seal(local, at.epoch, at.id);
	r = read_range("same", at.id - 1, 1, &range);
	ck_assert_uint_eq(range.count, 1);
	ck_assert_int_eq(redis_store_range_entry(&range, 0, &rec), 0);
	remote = redis_store_message(LIT("same"), &rec, 5);
	ck_assert_ptr_nonnull(remote);
	message_seal(remote, rec.epoch, rec.id);
	ck_assert_uint_eq(remote->json_len, local->json_len);
	ck_assert_int_eq(memcmp(message_json(remote), message_json(local),
				local->json_len),
			 0);
	ck_assert_uint_eq(remote->meta_len, local->meta_len);
	ck_assert_uint_eq(remote->raw_len, local->raw_len);
	ck_assert_int_eq(
		memcmp(message_raw(remote), message_raw(local), local->raw_len),
		0);
	message_unref(local);
	message_unref(remote);
	freeReplyObject(r);
}

START_TEST(test_rebuilt_message_same_bytes)
{
	static const unsigned char bytes[] = { 0, '\n', 0xff, '\r', 7, '"' };
	struct payload text, json, bin;

	ck_assert_int_eq(payload_from_text(LIT("héllo \"you\""), &text), 0);
	ck_assert_int_eq(payload_from_json(LIT("{\"a\": [1, 2]}"), &json), 0);
	payload_from_binary(bytes, sizeof bytes, &bin);
	same_message("message", "", false, &text);
	same_message("chat.line", "bob", true, &json);
	same_message("blob", "carol", false, &bin);
	payload_free(&text);
	payload_free(&json);
	payload_free(&bin);
}
END_TEST

START_TEST(test_bad_records_refused)
{
	struct redis_record rec = { 0 };

	ck_assert_int_eq(redis_store_decode_notice(
				 LIT("1\n2\n3\n0\nmessage\n\nx"), &rec),
			 0);
	ck_assert_int_eq(redis_store_decode_notice(LIT(""), &rec), -1);
	ck_assert_int_eq(
		redis_store_decode_notice(LIT("x\n2\n3\n0\nm\n\n1"), &rec), -1);
	/* flags, event and sender are checked as a publish checks them */
	ck_assert_int_eq(
		redis_store_decode_notice(LIT("1\n2\n3\n9\nm\n\n1"), &rec), -1);
	ck_assert_int_eq(
		redis_store_decode_notice(LIT("1\n2\n3\n0\nb d\n\n1"), &rec),
		-1);
	ck_assert_int_eq(
		redis_store_decode_notice(LIT("1\n2\n3\n0\nm\na b\n1"), &rec),
		-1);
	ck_assert_int_eq(
		redis_store_decode_notice(LIT("1\n2\n3\n0\nm\n"), &rec), -1);
	ck_assert_int_eq(
		redis_store_decode_notice(
			LIT("99999999999999999999\n2\n3\n0\nm\n\n1"), &rec),
		-1);
	/* text data with a line break would end an SSE event early */
	ck_assert_int_eq(redis_store_decode_notice(
				 LIT("1\n2\n3\n0\nm\n\n\"a\nb\""), &rec),
			 0);
	ck_assert_ptr_null(redis_store_message(LIT("c"), &rec, 0));
}
END_TEST

static Suite *redis_store_suite(void)
{
	Suite *s = suite_create("redis_store");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_script_sha);
	tcase_add_test(tc, test_ids_and_epoch);
	tcase_add_test(tc, test_history_trimmed_and_aged);
	tcase_add_test(tc, test_read_after_cursor);
	tcase_add_test(tc, test_read_creates_channel);
	tcase_add_test(tc, test_idempotency_keys);
	tcase_add_test(tc, test_lost_channel_new_epoch);
	tcase_add_test(tc, test_read_behind_held_new_epoch);
	tcase_add_test(tc, test_read_newest);
	tcase_add_test(tc, test_notification);
	tcase_add_test(tc, test_rebuilt_message_same_bytes);
	tcase_add_test(tc, test_bad_records_refused);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(redis_store_suite)
