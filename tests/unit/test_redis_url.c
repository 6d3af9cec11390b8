/* --redis: URLs and lists (good ones, and refusals with a reason), and
 * the shard of a channel: fixed across runs and nodes, spread evenly. */
#include "unit.h"

#include "redis_url.h"

#include <stdio.h>
#include <string.h>

static char why[256];

static int parse(const char *url, struct redis_target *t)
{
	why[0] = '\0';
	return redis_url_parse(url, strlen(url), t, why, sizeof why);
}

START_TEST(test_tcp_urls)
{
	struct redis_target t;

	ck_assert_int_eq(parse("redis://127.0.0.1", &t), 0);
	ck_assert_str_eq(t.host, "127.0.0.1");
	ck_assert_uint_eq(t.port, 6379);
	ck_assert_uint_eq(t.db, 0);
	ck_assert_str_eq(t.path, "");
	ck_assert_int_eq(parse("redis://redis-1.example:16390/3", &t), 0);
	ck_assert_str_eq(t.host, "redis-1.example");
	ck_assert_uint_eq(t.port, 16390);
	ck_assert_uint_eq(t.db, 3);
	ck_assert_int_eq(parse("redis://h/", &t), 0);
	ck_assert_uint_eq(t.db, 0);
}
END_TEST

START_TEST(test_unix_urls)
{
	struct redis_target t;

	ck_assert_int_eq(parse("unix:/run/redis/redis.sock", &t), 0);
	ck_assert_str_eq(t.path, "/run/redis/redis.sock");
	ck_assert_str_eq(t.host, "");
	ck_assert_int_eq(parse("unix:/tmp/r.sock?db=2", &t), 0);
	ck_assert_str_eq(t.path, "/tmp/r.sock");
	ck_assert_uint_eq(t.db, 2);
}
END_TEST

START_TEST(test_refused)
{
	static const char *bad[] = {
		"",
		"127.0.0.1:6379",
		"redis://",
		"redis://:6379",
		"redis://h:",
		"redis://h:0",
		"redis://h:65536",
		"redis://h:6379x",
		"redis://h:-1",
		"redis://h/16",
		"redis://h/1/2",
		"redis://user:pw@h",
		"redis://[::1]:6379",
		"rediss://h",
		"unix:",
		"unix:relative.sock",
		"unix:/s?db=",
		"unix:/s?db=99",
		"unix:/s?x=1",
	};
	struct redis_target t;

	for (size_t i = 0; i < NELEM(bad); i++) {
		ck_assert_msg(parse(bad[i], &t) == -1, "accepted \"%s\"",
			      bad[i]);
		ck_assert_msg(strstr(why, "--redis") != NULL,
			      "no reason for \"%s\"", bad[i]);
	}
}
END_TEST

START_TEST(test_lists)
{
	struct redis_target t[REDIS_SHARDS_MAX];
	char list[REDIS_SHARDS_MAX * 24 + 32];
	size_t n = 0;

	ck_assert_int_eq(redis_url_list_parse("redis://a:1,unix:/b,redis://c",
					      t, why, sizeof why),
			 3);
	ck_assert_str_eq(t[0].host, "a");
	ck_assert_str_eq(t[1].path, "/b");
	ck_assert_uint_eq(t[2].port, 6379);
	/* one instance twice would be one shard counted as two */
	ck_assert_int_eq(redis_url_list_parse("redis://a:1,redis://a:1/0", t,
					      why, sizeof why),
			 -1);
	ck_assert_ptr_nonnull(strstr(why, "twice"));
	ck_assert_int_eq(redis_url_list_parse("redis://a,", t, why, sizeof why),
			 -1);
	for (int i = 0; i <= REDIS_SHARDS_MAX; i++)
		n += (size_t)snprintf(list + n, sizeof list - n,
				      "%sredis://h:%d", i ? "," : "", 1000 + i);
	ck_assert_int_eq(redis_url_list_parse(list, t, why, sizeof why), -1);
	ck_assert_ptr_nonnull(strstr(why, "more than"));
}
END_TEST

START_TEST(test_shards)
{
	size_t count[4] = { 0 };
	char name[32];

	ck_assert_uint_eq(redis_shard_of(LIT("a"), 1), 0);
	/* fixed values: a change here splits every running gateway */
	ck_assert_uint_eq(redis_shard_of(LIT("news"), 4),
			  redis_shard_of(LIT("news"), 4));
	ck_assert_uint_eq(redis_shard_of(LIT("news"), 4), 0);
	ck_assert_uint_eq(redis_shard_of(LIT("chat:42"), 3), 2);
	for (int i = 0; i < 4000; i++) {
		int n = snprintf(name, sizeof name, "ch%d", i);

		count[redis_shard_of(name, (size_t)n, 4)]++;
	}
	for (int i = 0; i < 4; i++)
		ck_assert_msg(count[i] > 850 && count[i] < 1150,
			      "shard %d has %zu of 4000", i, count[i]);
}
END_TEST

static Suite *redis_url_suite(void)
{
	Suite *s = suite_create("redis_url");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_tcp_urls);
	tcase_add_test(tc, test_unix_urls);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_lists);
	tcase_add_test(tc, test_shards);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(redis_url_suite)
