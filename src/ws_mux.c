/* Frames are checked twice, on purpose: payload_from_json gives the
 * strict, compact text (RFC 8259 numbers, no control bytes), cJSON reads
 * the small fields, and "data" is cut out of the compact text as it is,
 * so a publisher's numbers keep their exact digits. */
#include "ws_mux.h"

#include "cursor.h"
#include "xalloc.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct mux_error *err, const char *code, const char *msg)
{
	err->code = code;
	err->message = msg;
	return -1;
}

/* p at a '"': the position after the closing quote. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

/* p at a value in compact JSON: the position after it. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;

	do {
		if (*p == '"') {
			p = skip_string(p, end);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (depth == 0 && *p == ',')
			break;
		p++;
	} while (p < end && depth > 0);
	while (depth == 0 && p < end && *p != ',' && *p != '}')
		p++;
	return p;
}

/* The raw text of top-level member `key` of the compact object, or NULL. */
static const char *member_span(const char *obj, size_t len, const char *key,
			       size_t *vlen)
{
	const char *p = obj + 1, *end = obj + len;
	size_t klen = strlen(key);

	while (p < end && *p == '"') {
		const char *k = p + 1, *kend = skip_string(p, end), *v;

		if (kend >= end || *kend != ':')
			return NULL;
		v = kend + 1;
		p = skip_value(v, end);
		if ((size_t)(kend - 1 - k) == klen &&
		    memcmp(k, key, klen) == 0) {
			*vlen = (size_t)(p - v);
			return v;
		}
		if (p < end && *p == ',')
			p++;
	}
	return NULL;
}

static int read_ref(cJSON *doc, struct mux_op *op, struct mux_error *err)
{
	cJSON *ref = cJSON_GetObjectItemCaseSensitive(doc, "ref");

	if (ref == NULL)
		return 0;
	/* range first: casting an out-of-range double is undefined */
	if (!cJSON_IsNumber(ref) || !(ref->valuedouble >= 0) ||
	    ref->valuedouble > 9007199254740991.0 ||
	    ref->valuedouble != (double)(long long)ref->valuedouble)
		return fail(err, "bad_ref",
			    "ref must be a whole number from 0 to 2^53-1");
	op->has_ref = true;
	op->ref = (long long)ref->valuedouble;
	return 0;
}

static int read_channel(cJSON *doc, struct mux_op *op, struct mux_error *err)
{
	cJSON *ch = cJSON_GetObjectItemCaseSensitive(doc, "channel");

	if (!cJSON_IsString(ch) ||
	    !channel_name_valid(ch->valuestring, strlen(ch->valuestring)))
		return fail(err, "bad_channel",
			    "channel names match [A-Za-z0-9_.:~-]{1,200}");
	snprintf(op->channel, sizeof op->channel, "%s", ch->valuestring);
	return 0;
}

static int read_since(cJSON *doc, struct mux_op *op, struct mux_error *err)
{
	cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "since");

	if (s == NULL || cJSON_IsNull(s))
		return 0;
	if (!cJSON_IsString(s) ||
	    cursor_parse(s->valuestring, strlen(s->valuestring), 1,
			 &op->since) < 0)
		return fail(err, "bad_cursor",
			    "since is one cursor, as a string: "
			    "\"17\" or \"EPOCH:17\"");
	op->has_since = true;
	return 0;
}

static bool flag(cJSON *doc, const char *name)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, name));
}

/* The key is read from the compact text, not from cJSON: cJSON ends its
 * strings at a "\u0000", so "ab\u0000cd" would pass as the key "ab".
 * A valid key needs no escape, so its raw text is the key. */
static int read_key(cJSON *doc, const char *text, size_t len,
		    struct mux_op *op, struct mux_error *err)
{
	const char *raw;
	size_t n;

	if (cJSON_GetObjectItemCaseSensitive(doc, "key") == NULL)
		return 0;
	raw = member_span(text, len, "key", &n);
	if (raw == NULL || n < 2 || raw[0] != '"' || raw[n - 1] != '"' ||
	    !idem_key_valid(raw + 1, n - 2))
		return fail(err, "bad_idempotency_key",
			    "key must match [A-Za-z0-9_.:-]{1,64}");
	memcpy(op->key, raw + 1, n - 2);
	op->key[n - 2] = '\0';
	return 0;
}

static int read_publish(cJSON *doc, const char *text, size_t len,
			struct mux_op *op, struct mux_error *err)
{
	cJSON *ev = cJSON_GetObjectItemCaseSensitive(doc, "event");
	const char *data;
	size_t dlen;

	if (ev && (!cJSON_IsString(ev) ||
		   !event_name_valid(ev->valuestring, strlen(ev->valuestring))))
		return fail(err, "bad_event",
			    "event names match [A-Za-z0-9_.:-]{1,64}");
	if (ev && event_name_reserved(ev->valuestring, strlen(ev->valuestring)))
		return fail(err, "bad_event",
			    "the event names " EVENT_NAMES_RESERVED
			    " are the gateway's own");
	if (ev)
		snprintf(op->event, sizeof op->event, "%s", ev->valuestring);
	if (read_key(doc, text, len, op, err) < 0)
		return -1;
	op->exclude_sender = flag(doc, "exclude_sender");
	op->binary = flag(doc, "binary");
	if (op->binary)
		return 0;
	data = member_span(text, len, "data", &dlen);
	if (data == NULL)
		return fail(
			err, "missing_data",
			"publish needs data (or binary:true and a binary frame)");
	op->data.json = xstrndup(data, dlen);
	op->data.len = dlen;
	return 0;
}

static int read_op(cJSON *doc, const char *text, size_t len, struct mux_op *op,
		   struct mux_error *err)
{
	cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "op");
	const char *k = cJSON_IsString(kind) ? kind->valuestring : "";

	if (strcmp(k, "hello") == 0) {
		cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "binary");

		op->kind = MUX_HELLO;
		op->binary_frames = cJSON_IsString(b) &&
				    strcmp(b->valuestring, "frames") == 0;
		return 0;
	}
	if (strcmp(k, "auth") == 0) {
		cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "token");

		op->kind = MUX_AUTH;
		if (!cJSON_IsString(t))
			return fail(err, "bad_token",
				    "auth needs a token (a string)");
		op->token = xstrdup(t->valuestring);
		return 0;
	}
	if (strcmp(k, "subscribe") == 0)
		op->kind = MUX_SUBSCRIBE;
	else if (strcmp(k, "unsubscribe") == 0)
		op->kind = MUX_UNSUBSCRIBE;
	else if (strcmp(k, "publish") == 0)
		op->kind = MUX_PUBLISH;
	else
		return fail(err, "bad_op",
			    "op is subscribe, unsubscribe, publish, hello or "
			    "auth");
	if (read_channel(doc, op, err) < 0)
		return -1;
	if (op->kind == MUX_SUBSCRIBE) {
		op->presence = flag(doc, "presence");
		return read_since(doc, op, err);
	}
	if (op->kind == MUX_PUBLISH)
		return read_publish(doc, text, len, op, err);
	return 0;
}

int ws_mux_parse(const char *frame, size_t len, struct mux_op *op,
		 struct mux_error *err)
{
	struct payload compact;
	cJSON *doc = NULL;
	int r = -1;

	memset(op, 0, sizeof *op);
	if (payload_from_json(frame, len, &compact) != PAYLOAD_OK)
		return fail(err, "bad_frame", "frames are JSON objects");
	doc = cJSON_ParseWithLength(compact.json, compact.len);
	if (!cJSON_IsObject(doc)) {
		fail(err, "bad_frame", "frames are JSON objects");
		goto out;
	}
	if (read_ref(doc, op, err) < 0)
		goto out;
	r = read_op(doc, compact.json, compact.len, op, err);
out:
	if (r < 0)
		ws_mux_op_free(op);
	cJSON_Delete(doc);
	payload_free(&compact);
	return r;
}

void ws_mux_op_free(struct mux_op *op)
{
	payload_free(&op->data);
	free(op->token);
	op->token = NULL;
}
