/* The cost counters' arithmetic (cost.c): a loop's batch of wake-ups,
 * timed once, is shared among the transports by count with nothing lost
 * to rounding; a held connection's bytes are read from the kernel only
 * when its last read is COST_BYTES_EVERY_MS old, and then all of them. */
#include "unit.h"

#include "cost.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t cpu_of(enum transport_id t)
{
	return atomic_load(&metrics.cpu_ns[t]);
}

static uint64_t bytes_of(enum transport_id t)
{
	return atomic_load(&metrics.sent_bytes[t]);
}

/* burn some thread CPU, so the batch has time to share */
static void spin(void)
{
	uint64_t start = cost_cpu_now();
	volatile unsigned x = 0;

	while (cost_cpu_now() - start < 2000000) /* 2 ms */
		x++;
}

START_TEST(test_shared_whole_and_by_count)
{
	unsigned served[TRANSPORT_COUNT] = { 0 };
	uint64_t before[TRANSPORT_COUNT], got[TRANSPORT_COUNT], sum = 0;
	uint64_t since, spent;

	for (int t = 0; t < TRANSPORT_COUNT; t++)
		before[t] = cpu_of(t);
	served[TRANSPORT_SSE] = 1;
	served[TRANSPORT_WS] = 3;
	since = cost_cpu_now();
	spin();
	cost_cpu_shared(since, served);
	spent = cost_cpu_now() - since;
	for (int t = 0; t < TRANSPORT_COUNT; t++) {
		got[t] = cpu_of(t) - before[t];
		sum += got[t];
	}
	ck_assert_uint_eq(got[TRANSPORT_POLL], 0);
	ck_assert_uint_eq(got[TRANSPORT_LONGPOLL], 0);
	/* all of the batch, and no more than the clock saw */
	ck_assert_uint_ge(sum, 2000000);
	ck_assert_uint_le(sum, spent);
	/* 1 : 3, to the nanosecond of rounding */
	ck_assert_uint_le(got[TRANSPORT_SSE] * 3, got[TRANSPORT_WS] + 3);
	ck_assert_uint_ge(got[TRANSPORT_SSE] * 3 + 3, got[TRANSPORT_WS]);
}
END_TEST

START_TEST(test_shared_nothing_served)
{
	unsigned served[TRANSPORT_COUNT] = { 0 };
	uint64_t before[TRANSPORT_COUNT];
	uint64_t since = cost_cpu_now();

	for (int t = 0; t < TRANSPORT_COUNT; t++)
		before[t] = cpu_of(t);
	spin();
	cost_cpu_shared(since, served);
	for (int t = 0; t < TRANSPORT_COUNT; t++)
		ck_assert_uint_eq(cpu_of(t), before[t]);
}
END_TEST

/* a loopback TCP pair: *a writes, *b reads */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(*a, (struct sockaddr *)&sa, sizeof sa), 0);
	*b = accept(l, NULL, NULL);
	ck_assert_int_ge(*b, 0);
	close(l);
}

START_TEST(test_bytes_lazy)
{
	struct cost_tally tally = { 0, 0 };
	char buf[1000];
	uint64_t before = bytes_of(TRANSPORT_SSE), now = 5000;
	int a, b;

	memset(buf, 'x', sizeof buf);
	tcp_pair(&a, &b);
	/* the first write round reads at once */
	ck_assert_int_eq(write(a, buf, 100), 100);
	cost_bytes_lazy(TRANSPORT_SSE, a, &tally, now);
	ck_assert_uint_eq(bytes_of(TRANSPORT_SSE) - before, 100);
	/* within the second: no read */
	ck_assert_int_eq(write(a, buf, 300), 300);
	cost_bytes_lazy(TRANSPORT_SSE, a, &tally, now + COST_BYTES_EVERY_MS - 1);
	ck_assert_uint_eq(bytes_of(TRANSPORT_SSE) - before, 100);
	/* a second on: everything since the last read */
	ck_assert_int_eq(write(a, buf, 600), 600);
	cost_bytes_lazy(TRANSPORT_SSE, a, &tally, now + COST_BYTES_EVERY_MS);
	ck_assert_uint_eq(bytes_of(TRANSPORT_SSE) - before, 1000);
	/* the close reads whatever the lazy reads left */
	ck_assert_int_eq(write(a, buf, 50), 50);
	cost_bytes_lazy(TRANSPORT_SSE, a, &tally, now + COST_BYTES_EVERY_MS + 1);
	cost_bytes(TRANSPORT_SSE, a, &tally.base);
	ck_assert_uint_eq(bytes_of(TRANSPORT_SSE) - before, 1050);
	close(a);
	close(b);
}
END_TEST

static Suite *cost_suite(void)
{
	Suite *s = suite_create("cost");
	TCase *tc = tcase_create("cost");

	tcase_add_test(tc, test_shared_whole_and_by_count);
	tcase_add_test(tc, test_shared_nothing_served);
	tcase_add_test(tc, test_bytes_lazy);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(cost_suite)
