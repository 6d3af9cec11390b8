/* Names and text that arrive from outside: channel, event and client-id
 * syntax, UTF-8 well-formedness and "a,b,c" channel lists. */
#include "unit.h"

#include "validate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The byte is in [A-Za-z0-9] or in extra. */
static bool in_set(unsigned c, const char *extra)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c != 0 && strchr(extra, (int)c));
}

/* ---- channel names ---- */

START_TEST(test_channel_valid_examples)
{
	ck_assert(channel_name_valid(LIT("a")));
	ck_assert(channel_name_valid(LIT("chat:lobby")));
	ck_assert(channel_name_valid(LIT("A-Z_0.9:~x")));
	ck_assert(channel_name_valid(LIT("~")));
	ck_assert(channel_name_valid(LIT("...")));
	ck_assert(channel_name_valid(LIT(".a")));
	ck_assert(channel_name_valid(LIT("-")));
}
END_TEST

START_TEST(test_channel_dot_segments)
{
	/* a client's URL code turns /channels/. and /channels/.. into
	 * other paths, so these can never be subscribed to */
	ck_assert(!channel_name_valid(LIT(".")));
	ck_assert(!channel_name_valid(LIT("..")));
	ck_assert(channel_name_valid(LIT("...")));
	ck_assert(channel_name_valid(LIT("a..")));
	struct channel_list l;

	ck_assert_int_eq(channel_list_parse(LIT("a,.."), &l), -1);
	ck_assert_int_eq(channel_list_parse(LIT(".,a"), &l), -1);
}
END_TEST

START_TEST(test_channel_every_byte)
{
	/* one-byte names are valid exactly for the set, and so is the byte
	 * in the middle of an otherwise good name */
	for (unsigned b = 0; b < 256; b++) {
		char name[3] = { 'a', (char)b, 'b' };
		bool want = in_set(b, "_.:~-");

		/* "." alone is a URL dot segment, refused */
		ck_assert_msg(channel_name_valid(name + 1, 1) ==
				      (want && b != '.'),
			      "byte 0x%02x", b);
		ck_assert_msg(channel_name_valid(name, 3) == want,
			      "byte 0x%02x inside", b);
	}
}
END_TEST

START_TEST(test_channel_length_bounds)
{
	char name[CHANNEL_NAME_MAX + 2];

	memset(name, 'x', sizeof name);
	ck_assert(!channel_name_valid(name, 0));
	ck_assert(channel_name_valid(name, 1));
	ck_assert(channel_name_valid(name, CHANNEL_NAME_MAX));
	ck_assert(!channel_name_valid(name, CHANNEL_NAME_MAX + 1));
	ck_assert(!channel_name_valid(LIT("")));
}
END_TEST

START_TEST(test_channel_hostile)
{
	/* the explicit length counts: an embedded NUL is refused, never a
	 * place to stop reading */
	ck_assert(!channel_name_valid(LIT("abc\0")));
	ck_assert(!channel_name_valid(LIT("ab\0cd")));
	ck_assert(!channel_name_valid(LIT("\0")));
	/* but a shorter length only looks at its prefix */
	ck_assert(channel_name_valid("ab/cd", 2));
	ck_assert(!channel_name_valid(LIT("ab/cd")));
	ck_assert(!channel_name_valid(LIT("a b")));
	ck_assert(!channel_name_valid(LIT("a%20b")));
	ck_assert(!channel_name_valid(LIT("caf\xc3\xa9")));      /* café */
	ck_assert(!channel_name_valid(LIT("\xd0\xba\xd0\xb0"))); /* ка */
	ck_assert(!channel_name_valid(LIT("a,b")));
	ck_assert(!channel_name_valid(LIT("a?b")));
	ck_assert(!channel_name_valid(LIT("a#b")));
	ck_assert(!channel_name_valid(LIT("a\"b")));
	ck_assert(!channel_name_valid(LIT("a\\b")));
	ck_assert(!channel_name_valid(LIT("a\r\nb")));
	ck_assert(!channel_name_valid(LIT("..%2f")));
}
END_TEST

/* ---- event names and client ids ---- */

START_TEST(test_event_names)
{
	char name[EVENT_NAME_MAX + 1];

	memset(name, 'e', sizeof name);
	ck_assert(event_name_valid(LIT("message")));
	ck_assert(event_name_valid(LIT("user.joined:v2-x_y")));
	ck_assert(event_name_valid(name, EVENT_NAME_MAX));
	ck_assert(!event_name_valid(name, EVENT_NAME_MAX + 1));
	ck_assert(!event_name_valid(LIT("")));
	ck_assert(!event_name_valid(LIT("a~b"))); /* ~ is for channels only */
	ck_assert(!event_name_valid(LIT("a b")));
	ck_assert(!event_name_valid(LIT("a\0")));
	ck_assert(!event_name_valid(LIT("a\nb")));
	ck_assert(!event_name_valid(LIT("\xc3\xa9")));
}
END_TEST

START_TEST(test_event_every_byte)
{
	for (unsigned b = 0; b < 256; b++) {
		char c = (char)b;

		ck_assert_msg(event_name_valid(&c, 1) == in_set(b, "_.:-"),
			      "byte 0x%02x", b);
	}
}
END_TEST

START_TEST(test_event_reserved)
{
	static const char *const reserved[] = { "welcome", "gap",  "ping",
						"cursor",  "open", "error",
						"join",    "leave" };
	static const char *const allowed[] = { "message", "ack",  "Gap",
					       "gaps",    "gap.", "xgap",
					       "ping2",   "PING", "joined" };

	for (size_t i = 0; i < NELEM(reserved); i++)
		ck_assert_msg(
			event_name_reserved(reserved[i], strlen(reserved[i])),
			"%s", reserved[i]);
	for (size_t i = 0; i < NELEM(allowed); i++)
		ck_assert_msg(
			!event_name_reserved(allowed[i], strlen(allowed[i])),
			"%s", allowed[i]);
	/* the length counts, not a NUL: "gap" followed by more bytes */
	ck_assert(!event_name_reserved("gapx", 4));
	ck_assert(event_name_reserved("gapx", 3));
	ck_assert(!event_name_reserved("", 0));
}
END_TEST

START_TEST(test_client_ids)
{
	char id[CLIENT_ID_MAX + 1];

	memset(id, 'Q', sizeof id);
	ck_assert(client_id_valid(LIT("abc-DEF_123")));
	ck_assert(client_id_valid(id, CLIENT_ID_MAX));
	ck_assert(!client_id_valid(id, CLIENT_ID_MAX + 1));
	ck_assert(!client_id_valid(LIT("")));
	ck_assert(!client_id_valid(LIT("a.b")));
	ck_assert(!client_id_valid(LIT("a:b")));
	ck_assert(!client_id_valid(LIT("a~b")));
	ck_assert(!client_id_valid(LIT("a=b")));
	ck_assert(!client_id_valid(LIT("a&b")));
	ck_assert(!client_id_valid(LIT("a\0b")));
}
END_TEST

START_TEST(test_client_every_byte)
{
	for (unsigned b = 0; b < 256; b++) {
		char c = (char)b;

		ck_assert_msg(client_id_valid(&c, 1) == in_set(b, "_-"),
			      "byte 0x%02x", b);
	}
}
END_TEST

/* ---- UTF-8 ---- */

struct utf8_case {
	const char *bytes;
	size_t len;
	bool valid;
	const char *what;
};

#define U(s, v, what)                     \
	{                                 \
		s, sizeof(s) - 1, v, what \
	}

static const struct utf8_case utf8_cases[] = {
	U("", true, "empty"),
	U("hello", true, "ASCII"),
	U("a\0b", true, "NUL is a character"),
	U("\x7f", true, "DEL"),
	U("\xc2\x80", true, "U+0080, smallest 2-byte"),
	U("\xdf\xbf", true, "U+07FF, largest 2-byte"),
	U("\xe0\xa0\x80", true, "U+0800, smallest 3-byte"),
	U("\xed\x9f\xbf", true, "U+D7FF, below surrogates"),
	U("\xee\x80\x80", true, "U+E000, above surrogates"),
	U("\xef\xbf\xbf", true, "U+FFFF"),
	U("\xef\xbb\xbf", true, "BOM"),
	U("\xf0\x90\x80\x80", true, "U+10000, smallest 4-byte"),
	U("\xf4\x8f\xbf\xbf", true, "U+10FFFF, largest"),
	U("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", true, "mixed"),
	U("\xc0\x80", false, "overlong NUL"),
	U("\xc0\xaf", false, "overlong /"),
	U("\xc1\xbf", false, "overlong 2-byte"),
	U("\xe0\x80\x80", false, "overlong 3-byte NUL"),
	U("\xe0\x80\xaf", false, "overlong 3-byte /"),
	U("\xe0\x9f\xbf", false, "overlong U+07FF"),
	U("\xf0\x80\x80\x80", false, "overlong 4-byte NUL"),
	U("\xf0\x8f\xbf\xbf", false, "overlong U+FFFF"),
	U("\xed\xa0\x80", false, "surrogate U+D800"),
	U("\xed\xaf\xbf", false, "surrogate U+DBFF"),
	U("\xed\xb0\x80", false, "surrogate U+DC00"),
	U("\xed\xbf\xbf", false, "surrogate U+DFFF"),
	U("\xed\xa0\xbd\xed\xb8\x80", false, "CESU-8 pair"),
	U("\xf4\x90\x80\x80", false, "U+110000"),
	U("\xf7\xbf\xbf\xbf", false, "U+1FFFFF"),
	U("\xf8\x88\x80\x80\x80", false, "5-byte form"),
	U("\xfc\x84\x80\x80\x80\x80", false, "6-byte form"),
	U("\x80", false, "lone continuation"),
	U("\xbf", false, "lone continuation BF"),
	U("a\x80z", false, "continuation inside ASCII"),
	U("\xc2", false, "truncated 2-byte"),
	U("\xe0\xa0", false, "truncated 3-byte"),
	U("\xf0\x90\x80", false, "truncated 4-byte"),
	U("abc\xe2\x9c", false, "truncated at the end"),
	U("\xc2\x41", false, "ASCII as continuation"),
	U("\xe0\xa0\xc0", false, "bad third byte"),
	U("\xf0\x90\x80\x7f", false, "bad fourth byte"),
	U("\xc2\xc2\x80", false, "lead byte as continuation"),
};

START_TEST(test_utf8_table)
{
	const struct utf8_case *c = &utf8_cases[_i];

	ck_assert_msg(
		utf8_valid((const unsigned char *)c->bytes, c->len) == c->valid,
		"%s: expected %s", c->what, c->valid ? "valid" : "invalid");
}
END_TEST

START_TEST(test_utf8_never_lead_bytes)
{
	/* F5..FF, C0 and C1 never occur in UTF-8, whatever follows */
	static const unsigned char lead[] = { 0xC0, 0xC1, 0xF5, 0xF6, 0xF7,
					      0xF8, 0xF9, 0xFA, 0xFB, 0xFC,
					      0xFD, 0xFE, 0xFF };

	for (size_t i = 0; i < NELEM(lead); i++) {
		unsigned char b[4] = { lead[i], 0x80, 0x80, 0x80 };

		for (size_t len = 1; len <= 4; len++)
			ck_assert_msg(!utf8_valid(b, len), "0x%02x len %zu",
				      b[0], len);
	}
}
END_TEST

START_TEST(test_utf8_explicit_length)
{
	const unsigned char s[] = "\xe2\x9c\x93"; /* ✓ */

	ck_assert(utf8_valid(s, 3));
	ck_assert(!utf8_valid(s, 1));
	ck_assert(!utf8_valid(s, 2));
	ck_assert(utf8_valid(s, 0));
}
END_TEST

/* ---- channel lists ---- */

START_TEST(test_list_basic)
{
	static const char s[] = "a,bb,c:d";
	struct channel_list l;

	ck_assert_int_eq(channel_list_parse(LIT(s), &l), 0);
	ck_assert_uint_eq(l.count, 3);
	ck_assert_ptr_eq(l.name[0], s);
	ck_assert_uint_eq(l.len[0], 1);
	ck_assert_ptr_eq(l.name[1], s + 2);
	ck_assert_uint_eq(l.len[1], 2);
	ck_assert_ptr_eq(l.name[2], s + 5);
	ck_assert_uint_eq(l.len[2], 3);
}
END_TEST

START_TEST(test_list_single)
{
	struct channel_list l;

	ck_assert_int_eq(channel_list_parse(LIT("only"), &l), 0);
	ck_assert_uint_eq(l.count, 1);
	ck_assert_uint_eq(l.len[0], 4);
	/* the length bounds the list, not the NUL */
	ck_assert_int_eq(channel_list_parse("a,b,c", 3, &l), 0);
	ck_assert_uint_eq(l.count, 2);
	ck_assert_uint_eq(l.len[1], 1);
}
END_TEST

START_TEST(test_list_malformed)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ LIT("") },      { LIT(",") },          { LIT("a,,b") },
		{ LIT("a,") },    { LIT(",a") },         { LIT("a,b,") },
		{ LIT(",,") },    { LIT("a,a") },        { LIT("a,b,a") },
		{ LIT("a,b/c") }, { LIT("a, b") },       { LIT("a,b%2Cc") },
		{ LIT("a\0,b") }, { LIT("a,\0") },       { LIT("a;b") },
		{ LIT("x,x,x") }, { LIT("\xc3\xa9,a") },
	};

	for (size_t i = 0; i < NELEM(bad); i++) {
		struct channel_list l;

		ck_assert_msg(channel_list_parse(bad[i].s, bad[i].len, &l) < 0,
			      "case %zu accepted", i);
	}
}
END_TEST

START_TEST(test_list_case_and_prefix_are_distinct)
{
	struct channel_list l;

	ck_assert_int_eq(channel_list_parse(LIT("a,A,ab,b"), &l), 0);
	ck_assert_uint_eq(l.count, 4);
}
END_TEST

/* "c0,c1,...": n distinct names */
static size_t make_list(char *buf, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(buf + len, "%sc%zu", i ? "," : "", i);
	return len;
}

START_TEST(test_list_count_limit)
{
	char buf[64 * 8];
	struct channel_list l;
	size_t len;

	len = make_list(buf, CHANNELS_PER_SUBSCRIPTION_MAX);
	ck_assert_int_eq(channel_list_parse(buf, len, &l), 0);
	ck_assert_uint_eq(l.count, CHANNELS_PER_SUBSCRIPTION_MAX);
	ck_assert_uint_eq(l.len[31], 3);
	ck_assert(memcmp(l.name[31], "c31", 3) == 0);

	len = make_list(buf, CHANNELS_PER_SUBSCRIPTION_MAX + 1);
	ck_assert_int_eq(channel_list_parse(buf, len, &l), -1);
	len = make_list(buf, 60);
	ck_assert_int_eq(channel_list_parse(buf, len, &l), -1);
}
END_TEST

START_TEST(test_list_long_names)
{
	char buf[2 * (CHANNEL_NAME_MAX + 1) + 1];
	struct channel_list l;

	memset(buf, 'n', sizeof buf);
	buf[CHANNEL_NAME_MAX] = ',';
	buf[CHANNEL_NAME_MAX + 1] = 'm';
	/* 200 + ',' + 200 */
	ck_assert_int_eq(channel_list_parse(buf, 2 * CHANNEL_NAME_MAX + 1, &l),
			 0);
	ck_assert_uint_eq(l.count, 2);
	ck_assert_uint_eq(l.len[1], CHANNEL_NAME_MAX);
	/* the second one is 201 long */
	ck_assert_int_eq(channel_list_parse(buf, 2 * CHANNEL_NAME_MAX + 2, &l),
			 -1);
}
END_TEST

static Suite *validate_suite(void)
{
	Suite *s = suite_create("validate");
	TCase *tc = tcase_create("names");

	tcase_add_test(tc, test_channel_valid_examples);
	tcase_add_test(tc, test_channel_every_byte);
	tcase_add_test(tc, test_channel_dot_segments);
	tcase_add_test(tc, test_channel_length_bounds);
	tcase_add_test(tc, test_channel_hostile);
	tcase_add_test(tc, test_event_names);
	tcase_add_test(tc, test_event_every_byte);
	tcase_add_test(tc, test_event_reserved);
	tcase_add_test(tc, test_client_ids);
	tcase_add_test(tc, test_client_every_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8_table, 0, (int)NELEM(utf8_cases));
	tcase_add_test(tc, test_utf8_never_lead_bytes);
	tcase_add_test(tc, test_utf8_explicit_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("channel_list");
	tcase_add_test(tc, test_list_basic);
	tcase_add_test(tc, test_list_single);
	tcase_add_test(tc, test_list_malformed);
	tcase_add_test(tc, test_list_case_and_prefix_are_distinct);
	tcase_add_test(tc, test_list_count_limit);
	tcase_add_test(tc, test_list_long_names);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(validate_suite)
