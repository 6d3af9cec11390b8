/* The one libwebsockets protocol that serves WebSockets, SSE streams and
 * long polls on the loops (lws_ws_protocol): what lws allocates
 * per connection stays small, and what it may send in one send() is not
 * cut to that. With tx_packet_size left 0, lws 4.1.6 cut every send() to
 * rx_buffer_size (1 KiB) and sent the rest from later writable
 * callbacks: a 4 KiB SSE message took four system calls and loop turns,
 * and 64 KiB messages fell seconds behind (bench/run --full, size65536). */
#include "unit.h"

#include "lws_guests.h"

#include <libwebsockets.h>

START_TEST(test_receive_buffer_small)
{
	const struct lws_protocols *p = &lws_ws_protocol;

	/* allocated for every connection, idle ones too (bench/idle_mem.py) */
	ck_assert_uint_le(p->rx_buffer_size, 1024);
}
END_TEST

START_TEST(test_sends_not_cut_to_the_receive_buffer)
{
	const struct lws_protocols *p = &lws_ws_protocol;

	ck_assert_uint_ne(p->tx_packet_size, 0);
	/* at least the largest write a stream makes in one go: an SSE
	 * batch, a 64 KiB message with its frame or chunk head */
	ck_assert_uint_ge(p->tx_packet_size, (64u << 10) + 64);
}
END_TEST

static Suite *ws_protocol_suite(void)
{
	Suite *s = suite_create("ws_protocol");
	TCase *tc = tcase_create("protocol");

	tcase_add_test(tc, test_receive_buffer_small);
	tcase_add_test(tc, test_sends_not_cut_to_the_receive_buffer);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(ws_protocol_suite)
