/* Connections per client IP (ipconns.h): exact counts, a refusal at the
 * limit that changes nothing, give-backs that free the IP, and the
 * hand-over by socket number to libmicrohttpd's thread. */
#include "unit.h"

#include "ipconns.h"

#include <pthread.h>
#include <stdio.h>

START_TEST(test_off)
{
	ipconns_configure(0);
	ck_assert(!ipconns_on());
	ck_assert_ptr_null(ipconns_take("192.0.2.1"));
	ipconns_give(NULL);
	ck_assert_uint_eq(ipconns_held(), 0);
}
END_TEST

START_TEST(test_limit)
{
	struct ipconn *a[3], *b;
	unsigned long long refused = ipconns_refused;

	ipconns_configure(3);
	ck_assert(ipconns_on());
	for (int i = 0; i < 3; i++) {
		a[i] = ipconns_take("192.0.2.1");
		ck_assert_ptr_nonnull(a[i]);
	}
	ck_assert_ptr_null(ipconns_take("192.0.2.1"));
	ck_assert_uint_eq(ipconns_refused - refused, 1);
	/* another IP has its own count */
	b = ipconns_take("192.0.2.2");
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(ipconns_held(), 4);
	ck_assert_uint_eq(ipconns_ips(), 2);
	/* one closed makes room for one */
	ipconns_give(a[1]);
	a[1] = ipconns_take("192.0.2.1");
	ck_assert_ptr_nonnull(a[1]);
	ck_assert_ptr_null(ipconns_take("192.0.2.1"));
	for (int i = 0; i < 3; i++)
		ipconns_give(a[i]);
	ipconns_give(b);
	ck_assert_uint_eq(ipconns_held(), 0);
	ck_assert_uint_eq(ipconns_ips(), 0);
	ipconns_configure(0);
}
END_TEST

START_TEST(test_park)
{
	struct ipconn *c, *d;

	ipconns_configure(2);
	c = ipconns_take("192.0.2.3");
	ipconns_park(7, c);
	ck_assert_ptr_eq(ipconns_claim(7), c);
	/* claimed once */
	ck_assert_ptr_null(ipconns_claim(7));
	ck_assert_ptr_null(ipconns_claim(100000));
	/* a number parked again whose handle was never claimed: that
	 * socket was dropped unannounced, and its count is given back */
	ipconns_park(5000, c);
	d = ipconns_take("192.0.2.3");
	ipconns_park(5000, d);
	ck_assert_uint_eq(ipconns_held(), 1);
	ck_assert_ptr_eq(ipconns_claim(5000), d);
	ipconns_give(d);
	ck_assert_uint_eq(ipconns_held(), 0);
	ipconns_configure(0);
}
END_TEST

/* Many threads taking and giving back on a few IPs: the counts stay
 * exact and never pass the limit. */
#define THREADS 4
#define ROUNDS 20000

static void *churn(void *arg)
{
	char ip[32];
	struct ipconn *held[4] = { NULL };

	for (int r = 0; r < ROUNDS; r++) {
		int k = r % 4;

		snprintf(ip, sizeof ip, "198.51.100.%d", (int)(long)arg % 2);
		if (held[k]) {
			ipconns_give(held[k]);
			held[k] = NULL;
		} else {
			held[k] = ipconns_take(ip);
		}
		ck_assert_uint_le(ipconns_held(), 2 * 5);
	}
	for (int k = 0; k < 4; k++)
		ipconns_give(held[k]);
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[THREADS];

	ipconns_configure(5);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(ipconns_held(), 0);
	ck_assert_uint_eq(ipconns_ips(), 0);
	ipconns_configure(0);
}
END_TEST

static Suite *ipconns_suite(void)
{
	Suite *s = suite_create("ipconns");
	TCase *tc = tcase_create("ipconns");

	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_park);
	tcase_add_test(tc, test_threads);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(ipconns_suite)
