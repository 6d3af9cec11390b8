/* Cursors: "17", "k3x9a2bq:17" or "17,k3x9a2bq:4,0": per channel an
 * optional base-36 epoch and a strict decimal u64 id. */
#include "unit.h"

#include "cursor.h"
#include "validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

START_TEST(test_parse_single)
{
	struct cursor c = { 5, 99 };

	ck_assert_int_eq(cursor_parse(LIT("17"), 1, &c), 0);
	ck_assert_uint_eq(c.id, 17);
	ck_assert_uint_eq(c.epoch, 0); /* plain: no epoch */
	ck_assert_int_eq(cursor_parse(LIT("0"), 1, &c), 0);
	ck_assert_uint_eq(c.id, 0);
	ck_assert_int_eq(cursor_parse(LIT("18446744073709551615"), 1, &c), 0);
	ck_assert(c.id == UINT64_MAX);
	/* 20 digits with leading zeros still fit the 20-digit rule */
	ck_assert_int_eq(cursor_parse(LIT("00000000000000000001"), 1, &c), 0);
	ck_assert_uint_eq(c.id, 1);
}
END_TEST

START_TEST(test_parse_several)
{
	struct cursor ids[3];

	ck_assert_int_eq(cursor_parse(LIT("17,4,0"), 3, ids), 0);
	ck_assert_uint_eq(ids[0].id, 17);
	ck_assert_uint_eq(ids[1].id, 4);
	ck_assert_uint_eq(ids[2].id, 0);
	ck_assert_int_eq(
		cursor_parse(LIT("18446744073709551615,0,18446744073709551614"),
			     3, ids),
		0);
	ck_assert(ids[0].id == UINT64_MAX && ids[1].id == 0 &&
		  ids[2].id == UINT64_MAX - 1);
	/* epochs per channel, each optional */
	ck_assert_int_eq(cursor_parse(LIT("a:17,4,zz:0"), 3, ids), 0);
	ck_assert_uint_eq(ids[0].epoch, 10);
	ck_assert_uint_eq(ids[0].id, 17);
	ck_assert_uint_eq(ids[1].epoch, 0);
	ck_assert_uint_eq(ids[1].id, 4);
	ck_assert_uint_eq(ids[2].epoch, 35 * 36 + 35);
	ck_assert_uint_eq(ids[2].id, 0);
	/* the largest epoch: 2^64 - 1 in base 36 */
	ck_assert_int_eq(cursor_parse(LIT("3w5e11264sgsf:1"), 1, ids), 0);
	ck_assert(ids[0].epoch == UINT64_MAX);
}
END_TEST

START_TEST(test_parse_count_mismatch)
{
	struct cursor ids[4];

	ck_assert_int_eq(cursor_parse(LIT("1,2,3"), 2, ids), -1);
	ck_assert_int_eq(cursor_parse(LIT("1,2,3"), 4, ids), -1);
	ck_assert_int_eq(cursor_parse(LIT("1"), 2, ids), -1);
	ck_assert_int_eq(cursor_parse(LIT("1,2"), 1, ids), -1);
}
END_TEST

START_TEST(test_parse_count_mismatch_writes_in_bounds)
{
	/* ids has room for count entries only: a longer cursor must not be
	 * written past it */
	struct cursor ids[3] = { { 0, 7 }, { 0, 7 }, { 0xdead, 0xdead } };

	ck_assert_int_eq(cursor_parse(LIT("1,2,3,4,5"), 2, ids), -1);
	ck_assert_uint_eq(ids[2].id, 0xdead);
	ck_assert_uint_eq(ids[2].epoch, 0xdead);
}
END_TEST

struct bad_case {
	const char *s;
	size_t len;
	size_t count;
	const char *what;
};

#define B(s, n, what)                           \
	{                                       \
		(s), sizeof(s) - 1, (n), (what) \
	}

static const struct bad_case bad[] = {
	B("", 1, "empty"),
	B("18446744073709551616", 1, "u64 max + 1"),
	B("18446744073709551620", 1, "overflow in last digit"),
	B("99999999999999999999", 1, "20 nines"),
	B("184467440737095516150", 1, "21 digits"),
	B("000000000000000000001", 1, "21 digits, small value"),
	B("-1", 1, "sign"),
	B("-0", 1, "negative zero"),
	B("+1", 1, "plus"),
	B(" 1", 1, "leading space"),
	B("1 ", 1, "trailing space"),
	B("1,", 1, "trailing comma"),
	B(",1", 1, "leading comma"),
	B("1,", 2, "trailing comma, two wanted"),
	B(",1", 2, "leading comma, two wanted"),
	B("1,,2", 3, "empty middle"),
	B(",", 2, "lone comma"),
	B("0x10", 1, "hex"),
	B("1a", 1, "hex digit"),
	B("ff", 1, "hex letters"),
	B("1.0", 1, "decimal point"),
	B("1e3", 1, "exponent"),
	B("1\0", 1, "NUL inside the length"),
	B("\0", 1, "only NUL"),
	B("1;2", 2, "other separator"),
	B("1%2C2", 2, "percent-encoded comma"),
	B("\xd9\xa1", 1, "Arabic-Indic digit one"),
	B(":1", 1, "empty epoch"),
	B("abc:", 1, "epoch without id"),
	B("abc", 1, "epoch alone"),
	B("0:1", 1, "epoch zero"),
	B("000:1", 1, "epoch zero, padded"),
	B("ABC:1", 1, "upper-case epoch"),
	B("a-b:1", 1, "dash in epoch"),
	B("a:b:1", 1, "two colons"),
	B("a::1", 1, "double colon"),
	B("3w5e11264sgsg:1", 1, "epoch u64 max + 1"),
	B("zzzzzzzzzzzzz:1", 1, "epoch overflow"),
	B("00000000000001:1", 1, "epoch of 14 digits"),
	B("a:1:2", 1, "colon in id"),
	B("a:-1", 1, "signed id after epoch"),
	B("a:18446744073709551616", 1, "id overflow after epoch"),
	B("a:1,b:", 2, "second id missing"),
	B("a%3A1", 1, "percent-encoded colon"),
	B("\xef\xbc\x91", 1, "fullwidth digit one"),
	B("1\n", 1, "newline"),
};

START_TEST(test_parse_bad)
{
	const struct bad_case *c = &bad[_i];
	struct cursor ids[4];

	ck_assert_msg(cursor_parse(c->s, c->len, c->count, ids) == -1,
		      "%s accepted", c->what);
}
END_TEST

START_TEST(test_parse_explicit_length)
{
	struct cursor ids[2];

	/* the length, not the NUL, ends the text */
	ck_assert_int_eq(cursor_parse("12,34", 2, 1, ids), 0);
	ck_assert_uint_eq(ids[0].id, 12);
	ck_assert_int_eq(cursor_parse("123456", 3, 1, ids), 0);
	ck_assert_uint_eq(ids[0].id, 123);
	ck_assert_int_eq(cursor_parse("12,34", 3, 1, ids), -1);
	ck_assert_int_eq(cursor_parse("1,2x", 3, 2, ids), 0);
	ck_assert_uint_eq(ids[1].id, 2);
	ck_assert_int_eq(cursor_parse("ab:12", 4, 1, ids), 0);
	ck_assert_uint_eq(ids[0].id, 1);
	ck_assert_int_eq(cursor_parse("ab:12", 3, 1, ids), -1);
}
END_TEST

START_TEST(test_format)
{
	char buf[CURSOR_TEXT_MAX];
	const struct cursor one = { 0, 0 };
	const struct cursor three[] = { { 0, 17 }, { 0, 4 }, { 0, 0 } };
	const struct cursor mixed[] = { { 10, 17 }, { 0, 4 }, { 36, 0 } };

	ck_assert_uint_eq(cursor_format(&one, 1, buf), 1);
	ck_assert_str_eq(buf, "0");
	ck_assert_uint_eq(cursor_format(three, 3, buf), 6);
	ck_assert_str_eq(buf, "17,4,0");
	ck_assert_uint_eq(cursor_format(three, 0, buf), 0);
	ck_assert_str_eq(buf, "");
	ck_assert_uint_eq(cursor_format(mixed, 3, buf), 11);
	ck_assert_str_eq(buf, "a:17,4,10:0");
}
END_TEST

START_TEST(test_format_round_trip_max)
{
	/* the largest text: 32 cursors of a 13-digit epoch and 20 digits */
	struct cursor ids[CHANNELS_PER_SUBSCRIPTION_MAX],
		back[CHANNELS_PER_SUBSCRIPTION_MAX];
	char buf[CURSOR_TEXT_MAX + 8];
	size_t len;

	memset(buf, 'Z', sizeof buf);
	for (size_t i = 0; i < NELEM(ids); i++)
		ids[i] = (struct cursor){ UINT64_MAX - i, UINT64_MAX - i };
	len = cursor_format(ids, NELEM(ids), buf);
	ck_assert_uint_eq(len, 32 * (13 + 1 + 20) + 31);
	ck_assert_uint_eq(strlen(buf), len);
	ck_assert(len < CURSOR_TEXT_MAX);
	ck_assert_int_eq(buf[CURSOR_TEXT_MAX], 'Z'); /* nothing written past */
	ck_assert_int_eq(cursor_parse(buf, len, NELEM(back), back), 0);
	ck_assert(memcmp(ids, back, sizeof ids) == 0);
}
END_TEST

START_TEST(test_epoch_text)
{
	char buf[EPOCH_TEXT_MAX];
	struct cursor c;

	ck_assert_uint_eq(cursor_epoch_text(1, buf), 1);
	ck_assert_str_eq(buf, "1");
	ck_assert_uint_eq(cursor_epoch_text(UINT64_MAX, buf), 13);
	ck_assert_str_eq(buf, "3w5e11264sgsf");
	for (int i = 0; i < 1000; i++) {
		uint64_t e = cursor_epoch_new();
		char text[EPOCH_TEXT_MAX + 4];
		size_t n = cursor_epoch_text(e, buf);

		/* fresh epochs are 8 characters: short on every SSE id */
		ck_assert_uint_eq(n, 8);
		snprintf(text, sizeof text, "%s:0", buf);
		ck_assert_int_eq(cursor_parse(text, n + 2, 1, &c), 0);
		ck_assert(c.epoch == e);
	}
}
END_TEST

START_TEST(test_format_round_trip_mixed)
{
	uint64_t seed = 0x9E3779B97F4A7C15ULL;

	for (int round = 0; round < 200; round++) {
		struct cursor ids[CHANNELS_PER_SUBSCRIPTION_MAX],
			back[NELEM(ids)];
		size_t n = (size_t)round % NELEM(ids) + 1, len;
		char buf[CURSOR_TEXT_MAX];

		for (size_t i = 0; i < n; i++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			/* all magnitudes, from 0 to 20 digits; every
			 * other one with an epoch of any length */
			ids[i].id = seed >> (seed % 64);
			ids[i].epoch = i % 2 ? (seed >> (seed % 61)) | 1 : 0;
		}
		len = cursor_format(ids, n, buf);
		ck_assert_int_eq(cursor_parse(buf, len, n, back), 0);
		ck_assert(memcmp(ids, back, n * sizeof ids[0]) == 0);
	}
}
END_TEST

static Suite *cursor_suite(void)
{
	Suite *s = suite_create("cursor");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_parse_single);
	tcase_add_test(tc, test_parse_several);
	tcase_add_test(tc, test_parse_count_mismatch);
	tcase_add_test(tc, test_parse_count_mismatch_writes_in_bounds);
	tcase_add_loop_test(tc, test_parse_bad, 0, (int)NELEM(bad));
	tcase_add_test(tc, test_parse_explicit_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_format_round_trip_max);
	tcase_add_test(tc, test_format_round_trip_mixed);
	tcase_add_test(tc, test_epoch_text);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(cursor_suite)
