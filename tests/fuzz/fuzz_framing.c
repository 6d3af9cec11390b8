/* libFuzzer target: every transport's framing around the envelopes, from
 * any cursor list (1 to 32 channels, plain ids or EPOCH:ID), client id,
 * heartbeat, channel names, items (message, gap, skip) and /ws frame.
 *
 * Each piece is checked as the client reads it:
 * - SSE (welcome, message named or not, gap, skip): every line is
 *   "field: value" of a known field, no '\r' anywhere, one data line
 *   that is one JSON object, the block ends in one blank line, and the
 *   id: line is the cursor, which parses back to the positions;
 * - WebSocket: the welcome (with and without a cursor), the gap and
 *   cursor frames, and the /ws acks and errors (for whatever ws_mux_parse
 *   makes of a frame) are JSON objects with exactly the documented
 *   members, ids and refs exact, codes from the documented table;
 * - poll: the reply (head, envelopes, tail; gaps, more, the cut at the
 *   byte limit) is one JSON object whose messages are the envelopes,
 *   whose gaps name their channels, and whose next parses back; the
 *   one-message reply too.
 * Every buffer is the size the transports use, so output that does not
 * fit (fmt_at cuts it) shows as text that does not parse. */
#include "bus.h"
#include "cursor.h"
#include "frame_format.h"
#include "message.h"
#include "payload.h"
#include "poll_format.h"
#include "sse_format.h"
#include "validate.h"
#include "wellformed.h"
#include "ws_mux.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WHO "fuzz_framing"
#define ITEMS_MAX 8

/* /ws error codes, as docs/messaging.md lists them */
static const char *const mux_codes[] = {
	"bad_frame",
	"bad_ref",
	"bad_op",
	"bad_channel",
	"bad_cursor",
	"bad_event",
	"missing_data",
	"already_subscribed",
	"not_subscribed",
	"too_many_channels",
	"unexpected_binary",
	"binary_replaced",
	"shutting_down",
	"over_capacity",
	"unauthorized",
	"forbidden",
	"bad_token",
	"token_expired",
	"client_mismatch",
	NULL,
};

struct world {
	size_t nch;
	struct cursor pos[CHANNELS_PER_SUBSCRIPTION_MAX];
	char cursor[CURSOR_TEXT_MAX];
	size_t cursor_len;
	char names[CHANNELS_PER_SUBSCRIPTION_MAX][CHANNEL_NAME_MAX + 2];
	struct channel_list chs;
	char client[CLIENT_ID_MAX + 2];
	unsigned long heartbeat;
	struct message *msg[ITEMS_MAX];
	struct bus_item items[ITEMS_MAX];
	size_t count;
};

/* ---- SSE ---- */

/* One line "field: value" at s (of block), known field; its value and
 * the position after its '\n'. */
static const char *sse_line(const char *block, size_t len, const char *s,
			    const char **field, const char **value,
			    size_t *vlen)
{
	static const char *const fields[] = { "retry", "id", "event", "data" };
	const char *nl = memchr(s, '\n', (size_t)(block + len - s));
	const char *colon = memchr(s, ':', nl ? (size_t)(nl - s) : 0);

	if (nl == NULL || colon == NULL || colon[1] != ' ')
		wf_fail(WHO, "an SSE line that is not field: value", block,
			len);
	*field = NULL;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (strlen(fields[i]) == (size_t)(colon - s) &&
		    memcmp(fields[i], s, (size_t)(colon - s)) == 0)
			*field = fields[i];
	if (*field == NULL)
		wf_fail(WHO, "an SSE field of no name", block, len);
	*value = colon + 2;
	*vlen = (size_t)(nl - *value);
	return nl + 1;
}

/* One SSE event block: its id, event and data lines as the client reads
 * them; id must be the world's cursor. data: one JSON object or NULL. */
static cJSON *sse_event(const struct world *w, const char *block, size_t len,
			const char *s, const char **event, size_t *elen)
{
	const char *field, *value;
	size_t vlen;
	bool id = false;
	cJSON *data = NULL;

	*event = NULL;
	*elen = 0;
	while (s < block + len && *s != '\n') {
		s = sse_line(block, len, s, &field, &value, &vlen);
		if (strcmp(field, "id") == 0) {
			if (id || data || *event)
				wf_fail(WHO, "an SSE id out of place", block,
					len);
			id = true;
			wf_cursor_back(WHO, value, vlen, w->pos, w->nch, block,
				       len);
			if (vlen != w->cursor_len ||
			    memcmp(value, w->cursor, vlen) != 0)
				wf_fail(WHO, "an SSE id that is not the cursor",
					block, len);
		} else if (strcmp(field, "event") == 0) {
			if (*event || data || !event_name_valid(value, vlen))
				wf_fail(WHO, "an SSE event name out of place",
					block, len);
			*event = value;
			*elen = vlen;
		} else if (strcmp(field, "data") == 0) {
			if (data)
				wf_fail(WHO, "SSE data on two lines", block,
					len);
			data = wf_object(WHO, value, vlen);
		} else {
			wf_fail(WHO, "an SSE retry inside an event", block,
				len);
		}
	}
	if (!id || s + 1 != block + len)
		wf_fail(WHO, "an SSE block without its id or its end", block,
			len);
	return data;
}

static void check_sse_welcome(const struct world *w)
{
	static const char *const keys[] = { "client", "heartbeat", "cursor",
					    NULL };
	static const char retry[] = "retry: 2000\n\n";
	char buf[SSE_FORMAT_MAX];
	size_t n = sse_format_welcome(buf, sizeof buf, w->cursor, w->client,
				      w->heartbeat),
	       elen;
	const char *event;
	cJSON *doc;

	wf_printable(WHO, buf, n, true);
	if (n < sizeof retry - 1 || memcmp(buf, retry, sizeof retry - 1) != 0)
		wf_fail(WHO, "an SSE welcome without retry", buf, n);
	doc = sse_event(w, buf, n, buf + sizeof retry - 1, &event, &elen);
	if (doc == NULL || elen != 7 || memcmp(event, "welcome", 7) != 0)
		wf_fail(WHO, "an SSE welcome that is not one", buf, n);
	wf_members(WHO, doc, keys, buf, n);
	wf_want_str(WHO, doc, "client", w->client, buf, n);
	wf_want_str(WHO, doc, "cursor", w->cursor, buf, n);
	wf_want_u64(WHO, doc, "heartbeat", w->heartbeat, buf, n);
	cJSON_Delete(doc);
}

static void check_gap(const cJSON *doc, const struct world *w,
		      const struct bus_item *it, const char *text, size_t len)
{
	char name[CHANNEL_NAME_MAX + 1];

	memcpy(name, w->chs.name[it->tap], w->chs.len[it->tap]);
	name[w->chs.len[it->tap]] = '\0';
	wf_want_str(WHO, doc, "channel", name, text, len);
	wf_want_epoch(WHO, doc, it->epoch, text, len);
	wf_want_u64(WHO, doc, "cursor", it->cursor, text, len);
	if (!it->skip)
		wf_want_u64(WHO, doc, "last_seen", it->gap_last, text, len);
}

static void check_sse_item(const struct world *w, const struct bus_item *it,
			   bool named)
{
	static const char *const gap_keys[] = { "channel", "last_seen",
						"cursor", "epoch", NULL };
	char *buf = malloc(SSE_FORMAT_MAX), *block;
	size_t n = sse_format_item(buf, SSE_FORMAT_MAX, w->cursor,
				   w->chs.name[it->tap], w->chs.len[it->tap],
				   it, named),
	       len, elen;
	const char *event;
	cJSON *doc;

	/* as sse_out.c stages it: the text, the envelope, "\n\n" */
	len = n + (it->msg ? it->msg->json_len + 2 : 0);
	block = malloc(len + 1);
	memcpy(block, buf, n);
	if (it->msg) {
		memcpy(block + n, message_json(it->msg), it->msg->json_len);
		memcpy(block + len - 2, "\n\n", 2);
	}
	block[len] = '\0';
	free(buf);
	wf_printable(WHO, block, len, true);
	doc = sse_event(w, block, len, block, &event, &elen);
	if (it->skip) {
		if (doc || event)
			wf_fail(WHO, "an SSE skip that is more than an id",
				block, len);
	} else if (it->msg == NULL) {
		if (doc == NULL || elen != 3 || memcmp(event, "gap", 3) != 0)
			wf_fail(WHO, "an SSE gap that is not one", block, len);
		wf_members(WHO, doc, gap_keys, block, len);
		check_gap(doc, w, it, block, len);
	} else {
		const char *want = it->msg->event;

		if (doc == NULL ||
		    (named ? event == NULL || elen != strlen(want) ||
				     memcmp(event, want, elen) != 0 :
			     event != NULL))
			wf_fail(WHO, "an SSE message under another name", block,
				len);
		wf_want_u64(WHO, doc, "id", it->msg->id, block, len);
	}
	cJSON_Delete(doc);
	free(block);
}

/* ---- WebSocket ---- */

static void check_ws_welcome(const struct world *w, bool mux)
{
	static const char *const keys[] = { "type", "client", "heartbeat",
					    "cursor", NULL };
	static const char *const mux_keys[] = { "type", "client", "heartbeat",
						NULL };
	char buf[FRAME_WELCOME_MAX];
	size_t n = frame_format_welcome(buf, sizeof buf, w->client,
					w->heartbeat, mux ? NULL : w->cursor);
	cJSON *doc = wf_object(WHO, buf, n);
	const char *got = wf_str(doc, "cursor");

	wf_members(WHO, doc, mux ? mux_keys : keys, buf, n);
	wf_want_str(WHO, doc, "type", "welcome", buf, n);
	wf_want_str(WHO, doc, "client", w->client, buf, n);
	wf_want_u64(WHO, doc, "heartbeat", w->heartbeat, buf, n);
	if (got)
		wf_cursor_back(WHO, got, strlen(got), w->pos, w->nch, buf, n);
	cJSON_Delete(doc);
}

static void check_ws_item(const struct world *w, const struct bus_item *it)
{
	static const char *const gap_keys[] = { "type",      "channel",
						"last_seen", "cursor",
						"epoch",     NULL };
	static const char *const skip_keys[] = { "type", "channel", "cursor",
						 "epoch", NULL };
	char buf[FRAME_ITEM_MAX], name[CHANNEL_NAME_MAX + 1];
	size_t n;
	cJSON *doc;

	if (it->msg)
		return; /* the envelope itself: fuzz_encode */
	/* lws_ws.c passes the name as a C string */
	memcpy(name, w->chs.name[it->tap], w->chs.len[it->tap]);
	name[w->chs.len[it->tap]] = '\0';
	n = frame_format_item(buf, sizeof buf, name, it);
	doc = wf_object(WHO, buf, n);
	wf_members(WHO, doc, it->skip ? skip_keys : gap_keys, buf, n);
	wf_want_str(WHO, doc, "type", it->skip ? "cursor" : "gap", buf, n);
	check_gap(doc, w, it, buf, n);
	cJSON_Delete(doc);
}

/* "ref":N as the op had it, or "ref":null. */
static void check_ref(const cJSON *doc, const struct mux_op *op,
		      const char *text, size_t len)
{
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(doc, "ref");

	if (!op->has_ref) {
		if (!cJSON_IsNull(ref))
			wf_fail(WHO, "a ref out of nowhere", text, len);
		return;
	}
	if (op->ref < 0)
		wf_fail(WHO, "a negative ref accepted", text, len);
	wf_want_u64(WHO, doc, "ref", (uint64_t)op->ref, text, len);
}

/* What lws_ws.c answers a /ws frame with: the error of a frame
 * that does not parse; for one that does, its ack, with the subscribe's
 * start cursor or the publish's stored position from the input. */
static void check_mux(const struct world *w, const char *frame, size_t flen,
		      uint64_t id)
{
	static const char *const err_keys[] = { "type", "ref", "code",
						"message", NULL };
	static const char *const ack_keys[] = { "type", "ref", NULL };
	static const char *const sub_keys[] = { "type", "ref", "cursor", NULL };
	static const char *const pub_keys[] = { "type", "ref", "id", "epoch",
						NULL };
	char buf[FRAME_CTL_MAX];
	struct mux_error err;
	struct mux_op op;
	struct cursor stored = { w->pos[0].epoch ? w->pos[0].epoch : 1, id };
	size_t n;
	cJSON *doc;
	const char *got;

	if (ws_mux_parse(frame, flen, &op, &err) < 0) {
		size_t k = 0;

		n = frame_format_error(buf, sizeof buf, &op, err.code,
				       err.message);
		doc = wf_object(WHO, buf, n);
		wf_members(WHO, doc, err_keys, buf, n);
		wf_want_str(WHO, doc, "type", "error", buf, n);
		wf_want_str(WHO, doc, "message", err.message, buf, n);
		check_ref(doc, &op, buf, n);
		got = wf_str(doc, "code");
		while (mux_codes[k] && got && strcmp(mux_codes[k], got) != 0)
			k++;
		if (got == NULL || mux_codes[k] == NULL)
			wf_fail(WHO, "an undocumented /ws error code", buf, n);
		cJSON_Delete(doc);
		return;
	}
	switch (op.kind) {
	case MUX_SUBSCRIBE:
		n = frame_format_ack(buf, sizeof buf, &op, &w->pos[0], NULL,
				     false);
		doc = wf_object(WHO, buf, n);
		wf_members(WHO, doc, sub_keys, buf, n);
		got = wf_str(doc, "cursor");
		if (got == NULL)
			wf_fail(WHO, "a subscribe ack without cursor", buf, n);
		wf_cursor_back(WHO, got, strlen(got), &w->pos[0], 1, buf, n);
		break;
	case MUX_PUBLISH:
		n = frame_format_ack(buf, sizeof buf, &op, NULL, &stored, false);
		doc = wf_object(WHO, buf, n);
		wf_members(WHO, doc, pub_keys, buf, n);
		wf_want_u64(WHO, doc, "id", stored.id, buf, n);
		wf_want_epoch(WHO, doc, stored.epoch, buf, n);
		break;
	default:
		n = frame_format_ack(buf, sizeof buf, &op, NULL, NULL, false);
		doc = wf_object(WHO, buf, n);
		wf_members(WHO, doc, ack_keys, buf, n);
		break;
	}
	wf_want_str(WHO, doc, "type", "ack", buf, n);
	check_ref(doc, &op, buf, n);
	cJSON_Delete(doc);
	ws_mux_op_free(&op);
}

/* ---- poll ---- */

/* The reply as pollreply.c sends it: the shared one-message reply, or
 * the head, the envelopes joined by commas, then the tail. */
static void check_poll(const struct world *w, bool more)
{
	static const char *const keys[] = { "messages", "next", NULL };
	static const char *const more_keys[] = { "messages", "next", "more",
						 NULL };
	static const char *const gap_keys[] = { "messages", "next", "gap",
						"gaps", NULL };
	static const char *const all_keys[] = { "messages", "next", "gap",
						"gaps",     "more", NULL };
	size_t cap = poll_format_tail_cap(w->count), len, tlen, at, nmsg = 0,
	       ngap = 0;
	char *tail = malloc(cap), *body;
	const cJSON *msgs, *gaps;
	const char *next;
	cJSON *doc;

	for (size_t i = 0; i < w->count; i++) {
		nmsg += w->items[i].msg != NULL;
		ngap += w->items[i].msg == NULL && !w->items[i].skip;
	}
	tlen = poll_format_tail(tail, cap, w->cursor, &w->chs, w->items,
				w->count, more);
	len = sizeof POLL_FORMAT_HEAD - 1 + tlen + w->count;
	for (size_t i = 0; i < w->count; i++)
		len += w->items[i].msg ? w->items[i].msg->json_len : 0;
	body = malloc(len);
	memcpy(body, POLL_FORMAT_HEAD, sizeof POLL_FORMAT_HEAD - 1);
	at = sizeof POLL_FORMAT_HEAD - 1;
	for (size_t i = 0, k = 0; i < w->count; i++) {
		const struct message *m = w->items[i].msg;

		if (m == NULL)
			continue;
		if (k++)
			body[at++] = ',';
		memcpy(body + at, message_json(m), m->json_len);
		at += m->json_len;
	}
	memcpy(body + at, tail, tlen);
	len = at + tlen;
	doc = wf_object(WHO, body, len);
	wf_members(WHO, doc,
		   ngap ? (more ? all_keys : gap_keys) :
			  (more ? more_keys : keys),
		   body, len);
	msgs = cJSON_GetObjectItemCaseSensitive(doc, "messages");
	gaps = cJSON_GetObjectItemCaseSensitive(doc, "gaps");
	next = wf_str(doc, "next");
	if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) != (int)nmsg)
		wf_fail(WHO, "a poll reply with other messages", body, len);
	if (next == NULL || strcmp(next, w->cursor) != 0)
		wf_fail(WHO, "a poll reply with another next", body, len);
	wf_cursor_back(WHO, next, strlen(next), w->pos, w->nch, body, len);
	if (more != cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "more")))
		wf_fail(WHO, "a poll reply with the wrong more", body, len);
	if (ngap &&
	    (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "gap")) ||
	     !cJSON_IsArray(gaps) || cJSON_GetArraySize(gaps) != (int)ngap))
		wf_fail(WHO, "a poll reply with other gaps", body, len);
	for (size_t i = 0, k = 0, j = 0; i < w->count; i++) {
		const struct bus_item *it = &w->items[i];
		const cJSON *g;

		if (it->msg) {
			cJSON *env = cJSON_ParseWithLength(
				message_json(it->msg), it->msg->json_len);

			if (!wf_same(cJSON_GetArrayItem(msgs, (int)j++), env))
				wf_fail(WHO, "a poll reply out of order", body,
					len);
			cJSON_Delete(env);
			continue;
		}
		if (it->skip)
			continue;
		g = cJSON_GetArrayItem(gaps, (int)k++);
		if (!cJSON_IsObject(g))
			wf_fail(WHO, "a poll gap that is no object", body, len);
		check_gap(g, w, it, body, len);
	}
	cJSON_Delete(doc);
	free(body);
	free(tail);
}

/* ---- the input ---- */

static void make_cursor(struct input *in, struct cursor *c)
{
	unsigned kind = in_byte(in);

	/* the edges, often: no epoch, 1, the largest; ids 0 and 2^64-1 */
	c->epoch = kind & 1 ? 0 : kind & 2 ? UINT64_MAX : in_u64(in);
	if (c->epoch == 0 && !(kind & 1))
		c->epoch = 1;
	c->id = kind & 4 ? UINT64_MAX : kind & 8 ? 0 : in_u64(in);
}

/* A channel name that channel_list_parse takes, distinct from the
 * others, or a made-up one when the input's is not. */
static void make_name(struct input *in, bool raw, size_t k, char *buf,
		      const struct world *w)
{
	size_t len = in_name(in, raw, CHANNEL_NAME_MAX, buf);
	bool ok = channel_name_valid(buf, len);

	/* an invalid or repeated name becomes "_K" (or "_K_N"), itself
	 * checked against the names before it: the input may have made
	 * "_K" already (a list of "_2,_1,_2" once failed here) */
	for (unsigned n = 0;; n++) {
		for (size_t j = 0; j < k && ok; j++)
			ok = strcmp(w->names[j], buf) != 0;
		if (ok)
			return;
		if (n == 0)
			sprintf(buf, "_%zu", k);
		else
			sprintf(buf, "_%zu_%u", k, n);
		ok = true;
	}
}

static void make_message(struct input *in, bool raw, struct world *w,
			 struct bus_item *it)
{
	char event[EVENT_NAME_MAX + 2], from[CLIENT_ID_MAX + 2], body[64];
	size_t elen = in_name(in, raw, EVENT_NAME_MAX, event);
	unsigned kind = in_byte(in), blen = in_byte(in) % sizeof body;
	char name[CHANNEL_NAME_MAX + 1];
	struct payload data;
	struct message_spec spec = { .channel = name, .from = from };
	struct message *m;

	for (unsigned i = 0; i < blen; i++)
		body[i] = (char)in_byte(in);
	memcpy(name, w->chs.name[it->tap], w->chs.len[it->tap]);
	name[w->chs.len[it->tap]] = '\0';
	spec.event = event_name_valid(event, elen) ? event : NULL;
	snprintf(from, sizeof from, "%s", w->client);
	if (kind & 1 || payload_from_any(body, blen, &data) != PAYLOAD_OK)
		payload_from_binary(body, blen, &data);
	spec.data = &data;
	m = message_new(&spec, (int64_t)in_u64(in), 0);
	message_seal(m, it->epoch, it->cursor);
	payload_free(&data);
	it->msg = m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct world *w = calloc(1, sizeof *w);
	unsigned flags = in_byte(&in);
	bool raw = flags & 1;
	size_t clen, list_len = 0;
	uint64_t id;
	char *list = malloc(CHANNELS_PER_SUBSCRIPTION_MAX *
			    (CHANNEL_NAME_MAX + 1));

	w->nch = 1 + in_byte(&in) % CHANNELS_PER_SUBSCRIPTION_MAX;
	for (size_t k = 0; k < w->nch; k++) {
		make_name(&in, raw, k, w->names[k], w);
		list_len += (size_t)sprintf(list + list_len, "%s%s",
					    k ? "," : "", w->names[k]);
		make_cursor(&in, &w->pos[k]);
	}
	/* the names as the subscribe parsed them */
	if (channel_list_parse(list, list_len, &w->chs) != 0 ||
	    w->chs.count != w->nch)
		wf_fail(WHO, "a channel list that does not parse", list,
			list_len);
	clen = in_name(&in, raw, CLIENT_ID_MAX, w->client);
	if (!client_id_valid(w->client, clen))
		snprintf(w->client, sizeof w->client, "%s",
			 clen ? "c" :
				"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
				"IJKLMNOPQRSTUVWXYZ_-");
	w->heartbeat = flags & 2 ? (unsigned long)in_u64(&in) : in_byte(&in);
	w->cursor_len = cursor_format(w->pos, w->nch, w->cursor);
	wf_cursor_back(WHO, w->cursor, w->cursor_len, w->pos, w->nch, w->cursor,
		       w->cursor_len);
	check_sse_welcome(w);
	check_ws_welcome(w, false);
	check_ws_welcome(w, true);

	/* items: each moves its channel's cursor, as the bus's do */
	w->count = in_byte(&in) % (ITEMS_MAX + 1);
	for (size_t i = 0; i < w->count; i++) {
		struct bus_item *it = &w->items[i];
		unsigned kind = in_byte(&in);
		struct cursor *p;

		it->tap = (unsigned)(in_byte(&in) % w->nch);
		p = &w->pos[it->tap];
		it->epoch = kind & 8 ? in_u64(&in) | 1 :
			    p->epoch ? p->epoch :
				       1;
		it->gap_last = p->id;
		it->cursor = kind & 16 ? in_u64(&in) : p->id + 1;
		it->skip = (kind & 3) == 1;
		if ((kind & 3) >= 2)
			make_message(&in, raw, w, it);
		p->epoch = it->epoch;
		p->id = it->cursor;
		w->cursor_len = cursor_format(w->pos, w->nch, w->cursor);
		check_sse_item(w, it, kind & 4);
		check_ws_item(w, it);
	}
	check_poll(w, flags & 4);
	if (w->count == 1 && w->items[0].msg && w->nch == 1) {
		size_t len, built;
		const char *s = message_single_reply(w->items[0].msg, &len,
						     &built);
		cJSON *doc = wf_object(WHO, s, len);
		const char *next = wf_str(doc, "next");

		if (next == NULL || strcmp(next, w->cursor) != 0)
			wf_fail(WHO, "a single reply with another next", s,
				len);
		cJSON_Delete(doc);
	}
	/* a publish's id, then a /ws frame: the rest of the input */
	id = in_u64(&in);
	check_mux(w, (const char *)in.p, in.left, id);
	for (size_t i = 0; i < w->count; i++)
		message_unref(w->items[i].msg);
	free(list);
	free(w);
	if (message_alive() != 0)
		wf_fail(WHO, "a message reference was lost", "", 0);
	return 0;
}
