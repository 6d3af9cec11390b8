/* libFuzzer target: a message's encoding, from any channel, event,
 * sender, payload (JSON, text, binary), timestamp, epoch and id that the
 * publish path lets through (names are first put to their validators, so
 * a validator that let a quote through would show here as an envelope
 * that does not parse).
 *
 * Asserts, for the envelope every transport sends (the WS frame, the poll
 * item, the SSE data line): one JSON object on one line, no control
 * byte, UTF-8, exactly the documented members, and each field round-trips
 * (channel, event, from, binary, ts, epoch, id; data equal to the
 * payload, byte for byte at data_off, and as JSON); "epoch":"E" and "id"
 * make a cursor E:ID that parses back. The same for the binary-frame form
 * ("data":null, "binary":"frame", the raw bytes kept) and for the shared
 * one-message poll reply. No message outlives the input. */
#include "cursor.h"
#include "message.h"
#include "payload.h"
#include "validate.h"
#include "wellformed.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHO "fuzz_encode"

static void check_envelope(const struct message *m, const char *s, size_t len,
			   const struct message_spec *spec,
			   const struct payload *data, int64_t ts, bool meta)
{
	const char *keys[10];
	size_t k = 0;
	char e[EPOCH_TEXT_MAX], text[CURSOR_TEXT_MAX], ts_text[32];
	cJSON *doc = wf_object(WHO, s, len);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data");
	struct cursor at = { m->epoch, m->id };
	int n;

	keys[k++] = "type";
	keys[k++] = "channel";
	keys[k++] = "event";
	keys[k++] = "data";
	keys[k++] = "ts";
	if (spec->from && spec->from[0])
		keys[k++] = "from";
	if (data->binary)
		keys[k++] = "binary";
	keys[k++] = "epoch";
	keys[k++] = "id";
	keys[k] = NULL;
	wf_members(WHO, doc, keys, s, len);
	wf_want_str(WHO, doc, "type", "message", s, len);
	wf_want_str(WHO, doc, "channel", spec->channel, s, len);
	wf_want_str(WHO, doc, "event", spec->event ? spec->event : "message", s,
		    len);
	if (spec->from && spec->from[0])
		wf_want_str(WHO, doc, "from", spec->from, s, len);
	wf_want_epoch(WHO, doc, m->epoch, s, len);
	wf_want_u64(WHO, doc, "id", m->id, s, len);
	/* ts: exact digits, signed */
	n = snprintf(ts_text, sizeof ts_text, "\"ts\":%lld,", (long long)ts);
	if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "ts")) ||
	    memmem(s, len, ts_text, (size_t)n) == NULL)
		wf_fail(WHO, "ts", s, len);
	if (meta) {
		if (!cJSON_IsNull(d))
			wf_fail(WHO, "a binary frame's data that is not null",
				s, len);
		wf_want_str(WHO, doc, "binary", "frame", s, len);
	} else {
		cJSON *want = cJSON_ParseWithLength(data->json, data->len);

		if (want == NULL || !wf_same(d, want))
			wf_fail(WHO, "data that is not the payload", s, len);
		cJSON_Delete(want);
		if (m->data_off + m->data_len > len ||
		    m->data_len != data->len ||
		    memcmp(s + m->data_off, data->json, data->len) != 0)
			wf_fail(WHO, "data not stored as sent", s, len);
		if (data->binary &&
		    !cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(doc, "binary")))
			wf_fail(WHO, "binary data without binary:true", s, len);
	}
	/* the envelope's epoch and id are the cursor of this message */
	cursor_epoch_text(m->epoch, e);
	n = snprintf(text, sizeof text, "%s:%llu", e,
		     (unsigned long long)m->id);
	wf_cursor_back(WHO, text, (size_t)n, &at, 1, s, len);
	cJSON_Delete(doc);
}

/* {"messages":[ENVELOPE],"next":"E:ID"} */
static void check_single(struct message *m)
{
	static const char *const keys[] = { "messages", "next", NULL };
	struct cursor at = { m->epoch, m->id };
	size_t len, built;
	const char *s = message_single_reply(m, &len, &built);
	cJSON *doc = wf_object(WHO, s, len), *env;
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(doc, "messages");
	const char *next = wf_str(doc, "next");

	wf_members(WHO, doc, keys, s, len);
	if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) != 1 ||
	    next == NULL)
		wf_fail(WHO, "a single reply without its message", s, len);
	env = cJSON_ParseWithLength(message_json(m), m->json_len);
	if (!wf_same(cJSON_GetArrayItem(msgs, 0), env))
		wf_fail(WHO, "a single reply with another message", s, len);
	cJSON_Delete(env);
	wf_cursor_back(WHO, next, strlen(next), &at, 1, s, len);
	if (built == 0 || message_single_reply(m, &len, &built) != s ||
	    built != 0)
		wf_fail(WHO, "a single reply built twice", s, len);
	cJSON_Delete(doc);
}

/* The body as the kind asks: 0 JSON, 1 text, 2 binary, 3 JSON else
 * text (a /ws text frame). 0 or -1 (refused, as publish would). */
static int make_payload(unsigned kind, const char *body, size_t len,
			struct payload *out)
{
	switch (kind) {
	case 0:
		return payload_from_json(body, len, out) == PAYLOAD_OK ? 0 : -1;
	case 1:
		return payload_from_text(body, len, out) == PAYLOAD_OK ? 0 : -1;
	case 2:
		payload_from_binary(body, len, out);
		return 0;
	default:
		return payload_from_any(body, len, out) == PAYLOAD_OK ? 0 : -1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	unsigned flags = in_byte(&in);
	bool raw = flags & 4;
	int64_t ts = (int64_t)in_u64(&in);
	uint64_t epoch = in_u64(&in), id = in_u64(&in);
	char channel[CHANNEL_NAME_MAX + 2], event[EVENT_NAME_MAX + 2],
		from[CLIENT_ID_MAX + 2];
	size_t clen = in_name(&in, raw, CHANNEL_NAME_MAX, channel);
	size_t elen = in_name(&in, raw, EVENT_NAME_MAX, event);
	size_t flen = in_name(&in, raw, CLIENT_ID_MAX, from);
	struct payload body = { 0 };
	struct message_spec spec = {
		.channel = channel,
		.event = flags & 8 ? event : NULL,
		.from = flags & 16 ? from : NULL,
		.exclude_sender = flags & 32,
		.data = &body,
	};
	struct message *m;

	/* what publish refuses never becomes a message (reserved event
	 * names included: the bus itself publishes join and leave) */
	if (!channel_name_valid(channel, clen) ||
	    (spec.event && !event_name_valid(event, elen)) ||
	    (spec.from && flen && !client_id_valid(from, flen)))
		return 0;
	if (make_payload(flags & 3, (const char *)in.p, in.left, &body) < 0)
		return 0;
	/* an epoch is never 0: 0 means "none given" in a cursor */
	if (epoch == 0)
		epoch = 1;
	m = message_new(&spec, ts, 0);
	message_seal(m, epoch, id);
	if (m->exclude_sender != (spec.exclude_sender && spec.from && flen))
		wf_fail(WHO, "exclude_sender without a sender", "", 0);
	check_envelope(m, message_json(m), m->json_len, &spec, &body, ts,
		       false);
	if (body.binary) {
		if (m->meta_len == 0 || m->raw_len != in.left ||
		    memcmp(message_raw(m), in.p, in.left) != 0)
			wf_fail(WHO, "a binary message without its bytes",
				message_json(m), m->json_len);
		check_envelope(m, message_meta(m), m->meta_len, &spec, &body,
			       ts, true);
	} else if (m->meta_len != 0) {
		wf_fail(WHO, "a binary frame of a text message",
			message_meta(m), m->meta_len);
	}
	check_single(m);
	message_unref(m);
	payload_free(&body);
	if (message_alive() != 0)
		wf_fail(WHO, "a message reference was lost", "", 0);
	return 0;
}
