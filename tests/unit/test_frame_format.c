/* The WebSocket frames around the envelopes: the welcome at its largest
 * (tests/fuzz/fuzz_framing.c found it cut), and the /ws acks and errors
 * that lws_ws.c queues. */
#include "unit.h"

#include "cursor.h"
#include "frame_format.h"
#include "ws_mux.h"

#include <cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

START_TEST(test_welcome_largest_fits)
{
	/* a client may send 32 cursors of 13-character epochs and 20-digit
	 * ids, which the welcome echoes, and a 64-character client id */
	struct cursor c[CHANNELS_PER_SUBSCRIPTION_MAX];
	char cursor[CURSOR_TEXT_MAX], client[CLIENT_ID_MAX + 1];
	char buf[FRAME_WELCOME_MAX];
	size_t n;
	cJSON *doc;

	for (size_t i = 0; i < NELEM(c); i++)
		c[i] = (struct cursor){ UINT64_MAX, UINT64_MAX };
	cursor_format(c, NELEM(c), cursor);
	memset(client, 'x', CLIENT_ID_MAX);
	client[CLIENT_ID_MAX] = '\0';
	n = frame_format_welcome(buf, sizeof buf, client, ULONG_MAX, cursor);
	ck_assert_uint_lt(n, sizeof buf - 1);
	doc = cJSON_ParseWithLength(buf, n);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "cursor")->valuestring,
		cursor);
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "client")->valuestring,
		client);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_error_escapes_and_echoes_ref)
{
	struct mux_op op = { .has_ref = true, .ref = 9007199254740991LL };
	struct mux_op none = { .has_ref = false };
	char buf[FRAME_CTL_MAX];
	size_t n = frame_format_error(buf, sizeof buf, &op, "bad_cursor",
				      "say \"17\" \\ or not");
	cJSON *doc = cJSON_ParseWithLength(buf, n);

	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "message")->valuestring,
		"say \"17\" \\ or not");
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "code")->valuestring,
		"bad_cursor");
	ck_assert_ptr_nonnull(strstr(buf, "\"ref\":9007199254740991,"));
	cJSON_Delete(doc);
	n = frame_format_error(buf, sizeof buf, &none, "bad_frame", "x");
	ck_assert_str_eq(buf, "{\"type\":\"error\",\"ref\":null,\"code\":"
			      "\"bad_frame\",\"message\":\"x\"}");
	ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_acks)
{
	struct mux_op op = { .has_ref = true, .ref = 7 };
	struct mux_op none = { .has_ref = false };
	struct cursor start = { 0, 17 }, stored = { 35, 18 };
	char buf[FRAME_CTL_MAX];

	frame_format_ack(buf, sizeof buf, &op, NULL, NULL, false);
	ck_assert_str_eq(buf, "{\"type\":\"ack\",\"ref\":7}");
	frame_format_ack(buf, sizeof buf, &none, &start, NULL, false);
	ck_assert_str_eq(buf,
			 "{\"type\":\"ack\",\"ref\":null,\"cursor\":\"17\"}");
	start.epoch = 36;
	frame_format_ack(buf, sizeof buf, &op, &start, NULL, false);
	ck_assert_str_eq(buf,
			 "{\"type\":\"ack\",\"ref\":7,\"cursor\":\"10:17\"}");
	frame_format_ack(buf, sizeof buf, &op, NULL, &stored, false);
	ck_assert_str_eq(
		buf, "{\"type\":\"ack\",\"ref\":7,\"id\":18,\"epoch\":\"z\"}");
	/* a publish whose idempotency key was stored before */
	frame_format_ack(buf, sizeof buf, &op, NULL, &stored, true);
	ck_assert_str_eq(buf, "{\"type\":\"ack\",\"ref\":7,\"id\":18,"
			      "\"epoch\":\"z\",\"replayed\":true}");
}
END_TEST

/* The end of one /ws subscription after a token refresh: it names the
 * channel, and the longest name fits. */
START_TEST(test_channel_error_longest_fits)
{
	char name[CHANNEL_NAME_MAX + 1], buf[FRAME_CTL_MAX];
	size_t n;
	cJSON *doc;

	memset(name, 'c', CHANNEL_NAME_MAX);
	name[CHANNEL_NAME_MAX] = '\0';
	n = frame_format_channel_error(buf, sizeof buf, name, "forbidden",
				       "the new token does not cover this "
				       "channel: unsubscribed");
	ck_assert_uint_lt(n, sizeof buf - 1);
	doc = cJSON_ParseWithLength(buf, n);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "channel")->valuestring,
		name);
	ck_assert_str_eq(
		cJSON_GetObjectItemCaseSensitive(doc, "code")->valuestring,
		"forbidden");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(doc, "ref")));
	cJSON_Delete(doc);
}
END_TEST

/* The header of a frame written several to a send: RFC 6455 5.2, at each
 * edge of the length encodings, as a client's parser reads it. */
START_TEST(test_head_at_every_length_edge)
{
	static const size_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536,
				       (size_t)1 << 32 };
	unsigned char h[FRAME_HEAD_MAX];

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		size_t want = lens[i] < 126 ? 2 : lens[i] <= 0xffff ? 4 : 10;
		size_t n = frame_format_head(h, i % 2 == 1, lens[i]);
		uint64_t got = h[1] & 0x7f;

		ck_assert_uint_eq(n, want);
		/* FIN, no RSV bits, text or binary; never masked */
		ck_assert_uint_eq(h[0], i % 2 == 1 ? 0x82 : 0x81);
		ck_assert_uint_eq(h[1] & 0x80, 0);
		if (got == 126) {
			got = (uint64_t)h[2] << 8 | h[3];
		} else if (got == 127) {
			got = 0;
			for (int k = 0; k < 8; k++)
				got = got << 8 | h[2 + k];
		}
		ck_assert_uint_eq(got, lens[i]);
		/* the shortest form: RFC 6455 requires it */
		if (n == 4)
			ck_assert_uint_ge(got, 126);
		if (n == 10)
			ck_assert_uint_gt(got, 0xffff);
	}
}
END_TEST

static Suite *frame_format_suite(void)
{
	Suite *s = suite_create("frame_format");
	TCase *tc = tcase_create("frames");

	tcase_add_test(tc, test_welcome_largest_fits);
	tcase_add_test(tc, test_error_escapes_and_echoes_ref);
	tcase_add_test(tc, test_acks);
	tcase_add_test(tc, test_channel_error_longest_fits);
	tcase_add_test(tc, test_head_at_every_length_edge);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(frame_format_suite)
