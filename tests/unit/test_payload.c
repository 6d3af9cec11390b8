/* Publish bodies: JSON checked and compacted to one line, text carried as
 * a JSON string, binary as base64. Every byte here is attacker-chosen. */
#include "unit.h"

#include "payload.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* An accepted payload: NUL-terminated, json[len] == 0, on one line (SSE
 * puts it after "data: "), and parsed by cJSON as exactly one value. */
static void assert_sane(const struct payload *p)
{
	const char *end = NULL;
	cJSON *doc;

	ck_assert_ptr_nonnull(p->json);
	ck_assert_uint_eq(strlen(p->json), p->len);
	ck_assert_ptr_null(memchr(p->json, '\n', p->len));
	ck_assert_ptr_null(memchr(p->json, '\r', p->len));
	doc = cJSON_ParseWithLengthOpts(p->json, p->len, &end, false);
	ck_assert_msg(doc != NULL, "output does not parse: %s", p->json);
	ck_assert_ptr_eq(end, p->json + p->len);
	cJSON_Delete(doc);
}

/* ---- payload_from_json ---- */

struct json_ok {
	const char *in, *out;
};

static const struct json_ok json_ok[] = {
	{ "null", "null" },
	{ "true", "true" },
	{ "false", "false" },
	{ "0", "0" },
	{ "-0", "-0" },
	{ "42", "42" },
	{ "-1.5e10", "-1.5e10" },
	{ "1E+2", "1E+2" },
	{ "1e+5", "1e+5" },
	{ "0e0", "0e0" },
	{ "-0.0", "-0.0" },
	{ "[ -1.5E-3 , 0 , -0 , 10 ]", "[-1.5E-3,0,-0,10]" },
	{ "0.25", "0.25" },
	{ "\"\"", "\"\"" },
	{ "\"s\"", "\"s\"" },
	{ "[]", "[]" },
	{ "{}", "{}" },
	{ "[1,\"a\",null,true,{}]", "[1,\"a\",null,true,{}]" },
	{ "{\"a\":{\"b\":[false]}}", "{\"a\":{\"b\":[false]}}" },
	/* whitespace outside strings goes, inside strings it stays */
	{ " { \"a b\" : [ 1 , 2 ] ,\n\t\"c\" : \"x  y\" } \r\n",
	  "{\"a b\":[1,2],\"c\":\"x  y\"}" },
	{ "\n\n  7  \n", "7" },
	{ "[ \" \" , \"\\t\" ]", "[\" \",\"\\t\"]" },
	/* escapes are kept as sent, and do not end the string early */
	{ "\"a\\\"  b\"", "\"a\\\"  b\"" },
	{ "[ \"\\\\\" , \"x y\" ]", "[\"\\\\\",\"x y\"]" },
	{ "[\"\\\\\\\" }\" , 1]", "[\"\\\\\\\" }\",1]" },
	{ "\"\\n\\r\\t\\b\\f\\/\\u00e9\\ud83d\\ude00\"",
	  "\"\\n\\r\\t\\b\\f\\/\\u00e9\\ud83d\\ude00\"" },
	{ "\"\\u0000\"", "\"\\u0000\"" },
	/* numbers keep the publisher's digits, not a double's */
	{ "123456789012345678901234567890", "123456789012345678901234567890" },
	{ "[18446744073709551617, 0.1000000000000000000001]",
	  "[18446744073709551617,0.1000000000000000000001]" },
	/* UTF-8 passes through */
	{ "{ \"caf\xc3\xa9\" : \"\xe2\x9c\x93 \xf0\x9f\x98\x80\" }",
	  "{\"caf\xc3\xa9\":\"\xe2\x9c\x93 \xf0\x9f\x98\x80\"}" },
};

START_TEST(test_json_ok)
{
	const struct json_ok *c = &json_ok[_i];
	struct payload p;

	ck_assert_int_eq(payload_from_json(c->in, strlen(c->in), &p),
			 PAYLOAD_OK);
	ck_assert_str_eq(p.json, c->out);
	ck_assert_uint_eq(p.len, strlen(c->out));
	ck_assert(!p.binary);
	assert_sane(&p);
	payload_free(&p);
	ck_assert_ptr_null(p.json);
}
END_TEST

struct json_bad {
	const char *in;
	size_t len;
	const char *what;
};

#define JB(s, what)                        \
	{                                  \
		(s), sizeof(s) - 1, (what) \
	}

static const struct json_bad json_bad[] = {
	JB("", "empty body"),
	JB("   \r\n", "only whitespace"),
	JB("{", "unclosed object"),
	JB("[1,2", "unclosed array"),
	JB("\"abc", "unterminated string"),
	JB("}", "stray close"),
	JB("{} x", "trailing garbage"),
	JB("{}}", "extra close"),
	JB("1 2", "two values"),
	JB("{}{}", "two objects"),
	JB("[1,]", "trailing comma in array"),
	JB("{\"a\":1,}", "trailing comma in object"),
	JB("{a:1}", "unquoted key"),
	JB("{\"a\" 1}", "missing colon"),
	JB("'a'", "single quotes"),
	JB("nul", "truncated literal"),
	JB("True", "capitalised literal"),
	JB("undefined", "not JSON"),
	JB("NaN", "NaN"),
	JB("Infinity", "Infinity"),
	JB("+1", "plus sign"),
	JB(".5", "no integer part"),
	JB("-", "lone minus"),
	JB("0x10", "hex"),
	JB("1e", "exponent without digits"),
	JB("\"\\x41\"", "bad escape"),
	JB("\"\\u12\"", "short unicode escape"),
	JB("\"\\ud800\"", "lone high surrogate escape"),
	JB("\"a\tb\"", "raw tab inside a string"),
	JB("\"a\nb\"", "raw newline inside a string"),
	JB("\"a\rb\"", "raw CR inside a string"),
	JB("[\"\x01\"]", "raw control byte inside a string"),
	JB("\"\x1f\"", "raw 0x1f inside a string"),
	JB("1\0", "NUL after a value"),
	JB("\"a\0b\"", "NUL inside a string"),
	JB("\0", "only NUL"),
	JB("/* c */ 1", "comment"),
	JB("\"\xc0\x80\"", "overlong UTF-8 in a string"),
	JB("\"\xed\xa0\x80\"", "surrogate UTF-8 in a string"),
	JB("\"\xf4\x90\x80\x80\"", "UTF-8 above U+10FFFF"),
	JB("\"\xff\"", "byte 0xff"),
	JB("[\"\xe2\x9c\"]", "truncated UTF-8 in a string"),
	JB("\xc3\xa9", "UTF-8 letter as a document"),
};

START_TEST(test_json_bad)
{
	const struct json_bad *c = &json_bad[_i];
	struct payload p;

	p.json = (char *)"sentinel";
	ck_assert_msg(payload_from_json(c->in, c->len, &p) == PAYLOAD_BAD_JSON,
		      "%s: not refused as BAD_JSON", c->what);
	ck_assert_ptr_null(p.json); /* nothing to free after an error */
}
END_TEST

/* Not JSON by RFC 8259's grammar, yet accepted by cJSON: its number
 * parser takes whatever strtod() takes, and it skips every byte <= 0x20
 * as whitespace. Stored verbatim, they make envelopes such as
 * {"data":01,...} or {"data":\x0c1,...} that JSON.parse in every browser
 * refuses, so the message is lost for every subscriber. */
static const struct json_bad json_lax[] = {
	JB("01", "leading zero"),
	JB("-01", "negative leading zero"),
	JB("00", "double zero"),
	JB("1.", "no fraction digits"),
	JB("0.", "zero, no fraction digits"),
	JB("1.e3", "no fraction digits before exponent"),
	JB("-.5", "minus, no integer part"),
	JB("[01]", "leading zero in an array"),
	JB("{\"n\":1.}", "no fraction digits in an object"),
	JB("\x0c"
	   "1",
	   "form feed before a value"),
	JB("[1,\x0b"
	   "2]",
	   "vertical tab between values"),
	JB("{\x01\"a\":1}", "control byte inside an object"),
	JB("\x1f"
	   "true",
	   "control byte before a literal"),
};

START_TEST(test_json_lax)
{
	const struct json_bad *c = &json_lax[_i];
	struct payload p;
	enum payload_error e = payload_from_json(c->in, c->len, &p);

	payload_free(&p); /* before asserting: a failure must not leak */
	ck_assert_msg(e == PAYLOAD_BAD_JSON, "%s: accepted as JSON", c->what);
}
END_TEST

START_TEST(test_json_bom)
{
	/* A byte-order mark is not JSON whitespace. cJSON skips one; either
	 * refuse the body or drop the BOM, but never store it in front of
	 * the value (JSON.parse would fail on the envelope). */
	static const struct json_bad boms[] = {
		JB("\xef\xbb\xbf{}", "BOM"),
		JB("\xef\xbb\xbf\xef\xbb\xbf"
		   "1",
		   "two BOMs"),
		JB("\xef\xbb\xbf \xef\xbb\xbf"
		   "1",
		   "BOM, space, BOM"),
		JB(" \xef\xbb\xbf"
		   "1",
		   "space, BOM"),
		JB("[\xef\xbb\xbf"
		   "1]",
		   "BOM inside"),
	};
	struct payload p;

	for (size_t i = 0; i < NELEM(boms); i++) {
		if (payload_from_json(boms[i].in, boms[i].len, &p) !=
		    PAYLOAD_OK)
			continue;
		bool bom_kept = memmem(p.json, p.len, "\xef\xbb\xbf", 3) !=
				NULL;

		payload_free(&p);
		ck_assert_msg(!bom_kept, "%s kept in the stored data",
			      boms[i].what);
	}
	/* a BOM and nothing else is an empty body */
	ck_assert_int_eq(payload_from_json(LIT("\xef\xbb\xbf"), &p),
			 PAYLOAD_BAD_JSON);
	ck_assert_int_eq(payload_from_json(LIT("\xef\xbb\xbf \n"), &p),
			 PAYLOAD_BAD_JSON);
}
END_TEST

/* `depth` nested arrays, closed or not */
static char *nested(size_t depth, bool closed)
{
	char *s = malloc(2 * depth + 1);
	size_t n = 0;

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < depth; i++)
		s[n++] = '[';
	for (size_t i = 0; closed && i < depth; i++)
		s[n++] = ']';
	s[n] = '\0';
	return s;
}

START_TEST(test_json_nesting)
{
	struct payload p;
	char *s;

	s = nested(100, true);
	ck_assert_int_eq(payload_from_json(s, strlen(s), &p), PAYLOAD_OK);
	ck_assert_str_eq(p.json, s);
	payload_free(&p);
	free(s);

	/* too deep: refused, not a stack overflow */
	s = nested(2000, true);
	ck_assert_int_eq(payload_from_json(s, strlen(s), &p), PAYLOAD_BAD_JSON);
	free(s);
	s = nested(200000, false);
	ck_assert_int_eq(payload_from_json(s, strlen(s), &p), PAYLOAD_BAD_JSON);
	free(s);
	s = malloc(5 * 100000 + 1);
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < 100000; i++)
		memcpy(s + 5 * i, "{\"a\":", 5);
	s[5 * 100000] = '\0';
	ck_assert_int_eq(payload_from_json(s, strlen(s), &p), PAYLOAD_BAD_JSON);
	free(s);
}
END_TEST

START_TEST(test_json_explicit_length)
{
	struct payload p;

	/* the length ends the body, not a NUL */
	ck_assert_int_eq(payload_from_json("[1] junk", 3, &p), PAYLOAD_OK);
	ck_assert_str_eq(p.json, "[1]");
	payload_free(&p);
	ck_assert_int_eq(payload_from_json("[1,2]", 4, &p), PAYLOAD_BAD_JSON);
	ck_assert_int_eq(payload_from_json("123", 2, &p), PAYLOAD_OK);
	ck_assert_str_eq(p.json, "12");
	payload_free(&p);
}
END_TEST

START_TEST(test_json_large_document)
{
	/* a 64 KiB array of strings with spaces: compacted, intact */
	size_t n = 6000, len = 0;
	char *in = malloc(n * 12 + 3), *want = malloc(n * 12 + 3);
	size_t wlen = 0;
	struct payload p;

	ck_assert(in && want);
	in[len++] = '[';
	want[wlen++] = '[';
	for (size_t i = 0; i < n; i++) {
		len += (size_t)sprintf(in + len, "%s \"a b\" ", i ? "," : "");
		wlen += (size_t)sprintf(want + wlen, "%s\"a b\"", i ? "," : "");
	}
	in[len++] = ']';
	want[wlen++] = ']';
	want[wlen] = '\0';
	ck_assert_int_eq(payload_from_json(in, len, &p), PAYLOAD_OK);
	ck_assert_uint_eq(p.len, wlen);
	ck_assert_str_eq(p.json, want);
	payload_free(&p);
	free(in);
	free(want);
}
END_TEST

/* ---- payload_from_text ---- */

struct text_case {
	const char *in;
	size_t len;
	const char *out;
};

#define TC(s, out)                        \
	{                                 \
		(s), sizeof(s) - 1, (out) \
	}

static const struct text_case text_cases[] = {
	TC("", "\"\""),
	TC("hello world", "\"hello world\""),
	TC("say \"hi\"", "\"say \\\"hi\\\"\""),
	TC("a\\b", "\"a\\\\b\""),
	TC("\\\"", "\"\\\\\\\"\""),
	TC("l1\nl2\r\n", "\"l1\\nl2\\r\\n\""),
	TC("a\tb", "\"a\\tb\""),
	TC("\x01\x1f", "\"\\u0001\\u001f\""),
	TC("\b\f", "\"\\u0008\\u000c\""),
	TC("a\0b", "\"a\\u0000b\""),
	TC("\x7f", "\"\\u007f\""),
	TC("{\"not\":\"parsed\"}", "\"{\\\"not\\\":\\\"parsed\\\"}\""),
	TC("</script>", "\"</script>\""),
	TC("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80",
	   "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\""),
};

START_TEST(test_text_escaping)
{
	const struct text_case *c = &text_cases[_i];
	struct payload p;

	ck_assert_int_eq(payload_from_text(c->in, c->len, &p), PAYLOAD_OK);
	ck_assert_str_eq(p.json, c->out);
	ck_assert_uint_eq(p.len, strlen(c->out));
	ck_assert(!p.binary);
	assert_sane(&p);
	payload_free(&p);
}
END_TEST

START_TEST(test_text_round_trip)
{
	/* every byte 1..127 and some UTF-8: cJSON reads back the same */
	char in[200];
	size_t n = 0;
	struct payload p, again;
	cJSON *doc;

	for (int c = 1; c < 128; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", 9);
	n += 9;
	in[n] = '\0';
	ck_assert_int_eq(payload_from_text(in, n, &p), PAYLOAD_OK);
	assert_sane(&p);
	doc = cJSON_ParseWithLength(p.json, p.len);
	ck_assert_ptr_nonnull(doc);
	ck_assert(cJSON_IsString(doc));
	ck_assert_str_eq(cJSON_GetStringValue(doc), in);
	cJSON_Delete(doc);
	/* and our own JSON check takes it unchanged */
	ck_assert_int_eq(payload_from_json(p.json, p.len, &again), PAYLOAD_OK);
	ck_assert_str_eq(again.json, p.json);
	payload_free(&again);
	payload_free(&p);
}
END_TEST

START_TEST(test_text_bad_utf8)
{
	static const struct json_bad bad[] = {
		JB("\xc0\x80", "overlong"),
		JB("ok \xed\xa0\x80", "surrogate"),
		JB("\xf4\x90\x80\x80", "above U+10FFFF"),
		JB("\xfe\xff", "UTF-16 BOM"),
		JB("abc\xe2\x9c", "truncated"),
		JB("\x80", "lone continuation"),
		JB("latin-1 caf\xe9", "Latin-1"),
	};

	for (size_t i = 0; i < NELEM(bad); i++) {
		struct payload p;

		p.json = (char *)"sentinel";
		ck_assert_msg(payload_from_text(bad[i].in, bad[i].len, &p) ==
				      PAYLOAD_BAD_UTF8,
			      "%s accepted", bad[i].what);
		ck_assert_ptr_null(p.json);
	}
}
END_TEST

/* ---- payload_from_binary ---- */

/* Decode standard padded base64 from a JSON string; -1 if malformed. */
static long b64_decode(const char *json, size_t len, unsigned char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 0;

	if (len < 2 || json[0] != '"' || json[len - 1] != '"' ||
	    (len - 2) % 4 != 0)
		return -1;
	for (size_t i = 1; i + 1 < len; i += 4) {
		uint32_t v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			const char *at;

			if (json[i + k] == '=' && k >= 2 && i + 5 == len) {
				pad++;
				v <<= 6;
				continue;
			}
			at = memchr(alphabet, json[i + k], 64);
			if (at == NULL || pad)
				return -1;
			v = (v << 6) | (uint32_t)(at - alphabet);
		}
		out[n++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[n++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[n++] = (unsigned char)v;
	}
	return (long)n;
}

START_TEST(test_binary_vectors)
{
	/* RFC 4648, section 10 */
	static const char *const want[] = {
		"\"\"",         "\"Zg==\"",     "\"Zm8=\"",     "\"Zm9v\"",
		"\"Zm9vYg==\"", "\"Zm9vYmE=\"", "\"Zm9vYmFy\"",
	};

	for (size_t n = 0; n < NELEM(want); n++) {
		struct payload p;

		payload_from_binary("foobar", n, &p);
		ck_assert_str_eq(p.json, want[n]);
		ck_assert_uint_eq(p.len, strlen(want[n]));
		ck_assert(p.binary);
		payload_free(&p);
	}
}
END_TEST

START_TEST(test_binary_small)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} c[] = {
		{ "\0", 1, "\"AA==\"" },
		{ "\0\0", 2, "\"AAA=\"" },
		{ "\0\0\0", 3, "\"AAAA\"" },
		{ "\xff", 1, "\"/w==\"" },
		{ "\xff\xff", 2, "\"//8=\"" },
		{ "\xff\xff\xff", 3, "\"////\"" },
		{ "\xfb\xff", 2, "\"+/8=\"" },
	};

	for (size_t i = 0; i < NELEM(c); i++) {
		struct payload p;

		payload_from_binary(c[i].in, c[i].len, &p);
		ck_assert_str_eq(p.json, c[i].out);
		payload_free(&p);
	}
}
END_TEST

START_TEST(test_binary_all_bytes)
{
	/* every byte value, at every length 0..256 (all three paddings) */
	unsigned char bytes[256], back[256];

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= 256; n++) {
		struct payload p;

		payload_from_binary(bytes, n, &p);
		ck_assert(p.binary);
		ck_assert_uint_eq(p.len, (n + 2) / 3 * 4 + 2);
		assert_sane(&p);
		ck_assert_int_eq(b64_decode(p.json, p.len, back), (long)n);
		ck_assert(memcmp(bytes, back, n) == 0);
		payload_free(&p);
	}
}
END_TEST

/* ---- payload_from_any ---- */

START_TEST(test_any)
{
	static const struct {
		const char *in;
		size_t len;
		enum payload_error err;
		const char *out;
	} c[] = {
		{ LIT("{ \"a\" : 1 }"), PAYLOAD_OK, "{\"a\":1}" },
		{ LIT(" 42 "), PAYLOAD_OK, "42" },
		{ LIT("\"quoted\""), PAYLOAD_OK, "\"quoted\"" },
		{ LIT("hello world"), PAYLOAD_OK, "\"hello world\"" },
		{ LIT("{"), PAYLOAD_OK, "\"{\"" },
		{ LIT("1 2"), PAYLOAD_OK, "\"1 2\"" },
		{ LIT("01"), PAYLOAD_OK, "\"01\"" }, /* not a JSON number */
		{ LIT("\x0c"
		      "1"),
		  PAYLOAD_OK, "\"\\u000c1\"" },
		{ LIT(""), PAYLOAD_OK, "\"\"" },
		{ LIT("\"a\nb\""), PAYLOAD_OK, "\"\\\"a\\nb\\\"\"" },
		{ LIT("nul\0"), PAYLOAD_OK, "\"nul\\u0000\"" },
		{ LIT("caf\xc3\xa9"), PAYLOAD_OK, "\"caf\xc3\xa9\"" },
		{ LIT("\"\xc0\x80\""), PAYLOAD_BAD_UTF8, NULL },
		{ LIT("\xff"), PAYLOAD_BAD_UTF8, NULL },
	};

	for (size_t i = 0; i < NELEM(c); i++) {
		struct payload p;

		ck_assert_msg(payload_from_any(c[i].in, c[i].len, &p) ==
				      c[i].err,
			      "case %zu", i);
		if (c[i].out == NULL) {
			ck_assert_ptr_null(p.json);
			continue;
		}
		ck_assert_str_eq(p.json, c[i].out);
		ck_assert(!p.binary);
		assert_sane(&p);
		payload_free(&p);
	}
}
END_TEST

START_TEST(test_free_twice)
{
	struct payload p;

	payload_from_binary("x", 1, &p);
	payload_free(&p);
	ck_assert_ptr_null(p.json);
	ck_assert_uint_eq(p.len, 0);
	payload_free(&p); /* harmless */
}
END_TEST

static Suite *payload_suite(void)
{
	Suite *s = suite_create("payload");
	TCase *tc = tcase_create("json");

	tcase_add_loop_test(tc, test_json_ok, 0, (int)NELEM(json_ok));
	tcase_add_loop_test(tc, test_json_bad, 0, (int)NELEM(json_bad));
	tcase_add_loop_test(tc, test_json_lax, 0, (int)NELEM(json_lax));
	tcase_add_test(tc, test_json_bom);
	tcase_add_test(tc, test_json_nesting);
	tcase_add_test(tc, test_json_explicit_length);
	tcase_add_test(tc, test_json_large_document);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_loop_test(tc, test_text_escaping, 0, (int)NELEM(text_cases));
	tcase_add_test(tc, test_text_round_trip);
	tcase_add_test(tc, test_text_bad_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary");
	tcase_add_test(tc, test_binary_vectors);
	tcase_add_test(tc, test_binary_small);
	tcase_add_test(tc, test_binary_all_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("any");
	tcase_add_test(tc, test_any);
	tcase_add_test(tc, test_free_twice);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(payload_suite)
