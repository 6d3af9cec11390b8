/* Rate limits (abuse.h): CIDR lists, whose X-Forwarded-For is believed,
 * the token buckets per IP, per client id and for new channels, and a
 * table that stays bounded under many IPs. */
#include "unit.h"

#include "abuse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const char *ip_of(const char *peer, const char *xff)
{
	static char ip[LIMITS_IP_MAX];
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, peer, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, peer, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	limits_client_ip((struct sockaddr *)&ss, xff, ip);
	return ip;
}

START_TEST(test_cidr_syntax)
{
	ck_assert(limits_cidrs_valid(""));
	ck_assert(limits_cidrs_valid("127.0.0.1"));
	ck_assert(limits_cidrs_valid("10.0.0.0/8, ::1, fd00::/8"));
	ck_assert(limits_cidrs_valid("0.0.0.0/0"));
	ck_assert(!limits_cidrs_valid("10.0.0.0/33"));
	ck_assert(!limits_cidrs_valid("::/129"));
	ck_assert(!limits_cidrs_valid("10.0.0.0/"));
	ck_assert(!limits_cidrs_valid("10.0.0.0/-1"));
	ck_assert(!limits_cidrs_valid("example.com"));
	ck_assert(!limits_cidrs_valid("1.2.3.4,"));
}
END_TEST

START_TEST(test_client_ip)
{
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "127.0.0.1, 10.0.0.0/8");
	/* an untrusted peer's header is its own: ignored */
	ck_assert_str_eq(ip_of("192.0.2.1", "198.51.100.1"), "192.0.2.1");
	ck_assert_str_eq(ip_of("127.0.0.1", NULL), "127.0.0.1");
	ck_assert_str_eq(ip_of("127.0.0.1", "198.51.100.1"), "198.51.100.1");
	/* the rightmost untrusted entry; what the client wrote left of it
	 * is not believed */
	ck_assert_str_eq(ip_of("127.0.0.1", "6.6.6.6, 198.51.100.1"),
			 "198.51.100.1");
	ck_assert_str_eq(ip_of("127.0.0.1", "6.6.6.6,198.51.100.1, 10.2.3.4"),
			 "198.51.100.1");
	ck_assert_str_eq(ip_of("127.0.0.1", " 2001:db8::1 "), "2001:db8::1");
	/* a malformed entry stops the walk at the last one believed */
	ck_assert_str_eq(ip_of("127.0.0.1", "junk"), "127.0.0.1");
	ck_assert_str_eq(ip_of("127.0.0.1", "198.51.100.1, junk, 10.0.0.1"),
			 "10.0.0.1");
	ck_assert_str_eq(ip_of("127.0.0.1", ""), "127.0.0.1");
	/* 11.x is outside 10.0.0.0/8 */
	ck_assert_str_eq(ip_of("11.0.0.1", "198.51.100.1"), "11.0.0.1");
	/* a v4 client of a dual-stack socket */
	ck_assert_str_eq(ip_of("::ffff:192.0.2.7", NULL), "192.0.2.7");
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
}
END_TEST

START_TEST(test_bucket)
{
	unsigned retry = 0;

	limits_configure(&(struct limits_rates){ 3, 0, 0 }, "");
	for (int i = 0; i < 3; i++)
		ck_assert(limits_publish("192.0.2.1", 1000, &retry));
	ck_assert(!limits_publish("192.0.2.1", 1000, &retry));
	ck_assert_uint_eq(retry, 1);
	/* another IP has its own bucket */
	ck_assert(limits_publish("192.0.2.2", 1000, &retry));
	/* a third of a second refills one */
	ck_assert(!limits_publish("192.0.2.1", 1300, &retry));
	ck_assert(limits_publish("192.0.2.1", 1340, &retry));
	ck_assert(!limits_publish("192.0.2.1", 1340, &retry));
	/* never more than a second's worth */
	for (int i = 0; i < 3; i++)
		ck_assert(limits_publish("192.0.2.1", 100000, &retry));
	ck_assert(!limits_publish("192.0.2.1", 100000, &retry));
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
	ck_assert(limits_publish("192.0.2.1", 100000, &retry));
	/* one a second, two in the same millisecond: the bucket is exactly
	 * empty and one second brings a token back (it said 2) */
	limits_configure(&(struct limits_rates){ 1, 0, 0 }, "");
	ck_assert(limits_publish("192.0.2.3", 5000, &retry));
	ck_assert(!limits_publish("192.0.2.3", 5000, &retry));
	ck_assert_uint_eq(retry, 1);
	ck_assert(!limits_publish("192.0.2.3", 5400, &retry));
	ck_assert_uint_eq(retry, 1);
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
}
END_TEST

START_TEST(test_table_bounded)
{
	unsigned retry;
	char ip[LIMITS_IP_MAX];
	unsigned long long before = abuse_ips_evicted;

	limits_configure(&(struct limits_rates){ 1, 0, 0 }, "");
	/* 100000 IPs into 16384 slots: most are evicted, none fails */
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(ip, sizeof ip, "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
			 i & 255);
		ck_assert(limits_publish(ip, 5000, &retry));
	}
	ck_assert_uint_ge(abuse_ips_evicted - before, 100000 - 16384);
	/* a recent IP is still known: its bucket is empty */
	ck_assert(!limits_publish("10.1.134.159", 5000, &retry));
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
}
END_TEST

START_TEST(test_client_bucket)
{
	unsigned retry = 0;

	limits_configure(&(struct limits_rates){ 0, 2, 0 }, "");
	ck_assert_int_eq(limits_publish_from("192.0.2.9", "alice", 7000, &retry),
			 LIMITS_OK);
	/* the client id's bucket, whatever the IP */
	ck_assert_int_eq(limits_publish_from("192.0.2.10", "alice", 7000, &retry),
			 LIMITS_OK);
	ck_assert_int_eq(limits_publish_from("192.0.2.11", "alice", 7000, &retry),
			 LIMITS_CLIENT);
	ck_assert_uint_eq(retry, 1);
	/* another id, or none, is not limited by it */
	ck_assert_int_eq(limits_publish_from("192.0.2.9", "bob", 7000, &retry),
			 LIMITS_OK);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(limits_publish_from("192.0.2.9", NULL, 7000,
						     &retry),
				 LIMITS_OK);
	/* an id is not an IP: the namespaces are apart */
	limits_configure(&(struct limits_rates){ 1, 1, 0 }, "");
	ck_assert_int_eq(limits_publish_from("carol", "carol", 8000, &retry),
			 LIMITS_OK);
	/* both buckets or neither: the IP's token refused by the id's comes
	 * back */
	ck_assert_int_eq(limits_publish_from("192.0.2.20", "carol", 8000,
					     &retry),
			 LIMITS_CLIENT);
	ck_assert_int_eq(limits_publish_from("192.0.2.20", "dave", 8000, &retry),
			 LIMITS_OK);
	ck_assert_int_eq(limits_publish_from("192.0.2.20", "erin", 8000, &retry),
			 LIMITS_IP);
	/* a second later both have refilled */
	ck_assert_int_eq(limits_publish_from("192.0.2.20", "carol", 9000,
					     &retry),
			 LIMITS_OK);
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
}
END_TEST

START_TEST(test_new_channels)
{
	unsigned retry = 0;

	ck_assert(!limits_new_channels_on());
	ck_assert(limits_new_channels("192.0.2.30", 32, 1000, &retry));
	limits_configure(&(struct limits_rates){ 0, 0, 2 }, "");
	ck_assert(limits_new_channels_on());
	/* existing channels cost nothing */
	for (int i = 0; i < 5; i++)
		ck_assert(limits_new_channels("192.0.2.30", 0, 1000, &retry));
	ck_assert(limits_new_channels("192.0.2.30", 1, 1000, &retry));
	ck_assert(limits_new_channels("192.0.2.30", 1, 1000, &retry));
	ck_assert(!limits_new_channels("192.0.2.30", 1, 1000, &retry));
	ck_assert_uint_eq(retry, 1);
	/* a refund gives one back */
	limits_new_channels_refund("192.0.2.30", 1, 1000);
	ck_assert(limits_new_channels("192.0.2.30", 1, 1000, &retry));
	/* more at once than the bucket holds: served on credit, then the
	 * debt is paid before the next: 6 new with 2 a second leaves -4,
	 * and one token is back 2.5 s later (a little more: floats) */
	ck_assert(limits_new_channels("192.0.2.31", 6, 2000, &retry));
	ck_assert(!limits_new_channels("192.0.2.31", 1, 2000, &retry));
	ck_assert_uint_eq(retry, 3);
	ck_assert(!limits_new_channels("192.0.2.31", 1, 4400, &retry));
	ck_assert(limits_new_channels("192.0.2.31", 1, 4510, &retry));
	/* the publish buckets of the same IP are apart */
	limits_configure(&(struct limits_rates){ 1, 0, 1 }, "");
	ck_assert(limits_new_channels("192.0.2.32", 1, 1000, &retry));
	ck_assert(limits_publish("192.0.2.32", 1000, &retry));
	limits_configure(&(struct limits_rates){ 0, 0, 0 }, "");
}
END_TEST

static Suite *abuse_suite(void)
{
	Suite *s = suite_create("abuse");
	TCase *tc = tcase_create("abuse");

	tcase_add_test(tc, test_cidr_syntax);
	tcase_add_test(tc, test_client_ip);
	tcase_add_test(tc, test_bucket);
	tcase_add_test(tc, test_table_bounded);
	tcase_add_test(tc, test_client_bucket);
	tcase_add_test(tc, test_new_channels);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(abuse_suite)
