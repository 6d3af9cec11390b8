/* wellformed.h: what the targets that check the gateway's output share:
 * reading the fuzzer's input as fields, and the checks of well-formed
 * text (one JSON object, no control byte, UTF-8, a cursor that parses
 * back). Each check abort()s with the text it refused, so libFuzzer keeps
 * the input. Included by one file of each target. */
#ifndef ANYPUSH_WELLFORMED_H
#define ANYPUSH_WELLFORMED_H

#include "cursor.h"
#include "validate.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the input, read field by field (zeros once it runs out) ---- */

struct input {
	const uint8_t *p;
	size_t left;
};

static inline unsigned in_byte(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint64_t in_u64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | in_byte(in);
	return v;
}

/* A name of up to max bytes into buf (NUL-terminated): the input's bytes
 * as they are when raw, else mapped onto the characters names may have,
 * so that most inputs reach the formatting and the others test the
 * validators. The length. */
static inline size_t in_name(struct input *in, bool raw, size_t max, char *buf)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
				    "KLMNOPQRSTUVWXYZ0123456789_.:~-";
	size_t len = in_byte(in) % (max + 2);

	for (size_t i = 0; i < len; i++) {
		unsigned c = in_byte(in);

		buf[i] = raw ? (char)c : chars[c % (sizeof chars - 1)];
	}
	buf[len] = '\0';
	return len;
}

/* ---- checks ---- */

static inline void wf_fail(const char *who, const char *what, const char *text,
			   size_t len)
{
	fprintf(stderr, "%s: %s\n  in %zu bytes: %.*s\n", who, what, len,
		(int)(len > 2000 ? 2000 : len), text);
	abort();
}

/* No control byte and well-formed UTF-8; '\n' only where newline_ok. A
 * '\r' is never ok: SSE ends a line at it too. */
static inline void wf_printable(const char *who, const char *s, size_t len,
				bool newline_ok)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && !(c == '\n' && newline_ok))
			wf_fail(who, "a control byte", s, len);
	}
	if (!utf8_valid((const unsigned char *)s, len))
		wf_fail(who, "not UTF-8", s, len);
}

/* One JSON object that is all of s, on one line. */
static inline cJSON *wf_object(const char *who, const char *s, size_t len)
{
	const char *end = NULL;
	cJSON *doc;

	wf_printable(who, s, len, false);
	doc = cJSON_ParseWithLengthOpts(s, len, &end, false);
	if (doc == NULL || end != s + len || !cJSON_IsObject(doc))
		wf_fail(who, "not one JSON object", s, len);
	return doc;
}

static inline const char *wf_str(const cJSON *doc, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline void wf_want_str(const char *who, const cJSON *doc,
			       const char *key, const char *want,
			       const char *text, size_t len)
{
	const char *got = wf_str(doc, key);

	if (got == NULL || strcmp(got, want) != 0)
		wf_fail(who, key, text, len);
}

/* The member is a number equal to want, and "key":N is in text with
 * exactly want's digits (cJSON reads numbers as doubles, which cannot
 * tell 2^53 from 2^53+1; text of several objects may hold the key more
 * than once, so any occurrence will do). */
static inline void wf_want_u64(const char *who, const cJSON *doc,
			       const char *key, uint64_t want, const char *text,
			       size_t len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
	char member[96];
	size_t n = (size_t)snprintf(member, sizeof member, "\"%s\":%llu", key,
				    (unsigned long long)want);

	if (!cJSON_IsNumber(v) || v->valuedouble != (double)want)
		wf_fail(who, key, text, len);
	for (const char *at = memmem(text, len, member, n); at;
	     at = memmem(at + 1, len - (size_t)(at + 1 - text), member, n))
		if ((size_t)(at - text) + n < len &&
		    (at[n] == ',' || at[n] == '}'))
			return;
	wf_fail(who, key, text, len);
}

/* A cursor the gateway hands out: it parses back to exactly count
 * positions c. */
static inline void wf_cursor_back(const char *who, const char *s, size_t len,
				  const struct cursor *c, size_t count,
				  const char *text, size_t tlen)
{
	struct cursor back[CHANNELS_PER_SUBSCRIPTION_MAX];

	if (count > CHANNELS_PER_SUBSCRIPTION_MAX ||
	    cursor_parse(s, len, count, back) != 0)
		wf_fail(who, "a cursor that does not parse", text, tlen);
	if (memcmp(back, c, count * sizeof back[0]) != 0)
		wf_fail(who, "a cursor that is not the position", text, tlen);
}

/* "epoch":"E", E the text of epoch. */
static inline void wf_want_epoch(const char *who, const cJSON *doc,
				 uint64_t epoch, const char *text, size_t len)
{
	char e[EPOCH_TEXT_MAX];

	cursor_epoch_text(epoch, e);
	wf_want_str(who, doc, "epoch", e, text, len);
}

/* The same JSON value, members in the same order. cJSON_Compare says a
 * number that overflows a double (1e999) differs from itself, since it
 * compares inf - inf, a NaN, with a tolerance: numbers compare with ==
 * here. */
static inline bool wf_same(const cJSON *a, const cJSON *b)
{
	const cJSON *x, *y;

	if (a == NULL || b == NULL || (a->type & 0xFF) != (b->type & 0xFF))
		return false;
	if (cJSON_IsNumber(a))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (!cJSON_IsArray(a) && !cJSON_IsObject(a))
		return true;
	for (x = a->child, y = b->child; x && y; x = x->next, y = y->next)
		if ((cJSON_IsObject(a) && strcmp(x->string, y->string) != 0) ||
		    !wf_same(x, y))
			return false;
	return x == NULL && y == NULL;
}

/* The object has exactly these members (a NULL-terminated list). */
static inline void wf_members(const char *who, const cJSON *doc,
			      const char *const *keys, const char *text,
			      size_t len)
{
	size_t want = 0;

	for (; keys[want]; want++)
		if (!cJSON_GetObjectItemCaseSensitive(doc, keys[want]))
			wf_fail(who, keys[want], text, len);
	if ((size_t)cJSON_GetArraySize(doc) != want)
		wf_fail(who, "members no one asked for", text, len);
}

#endif
