/* libFuzzer target: whole request paths, in-process, on a real bus.
 *
 * The parsers of outside input are fuzzed on their own; the bugs that
 * reached clients sat behind them, in what the transports wrote (the SSE
 * welcome staged more bytes than its buffer held) and in the bus (the
 * subscriber-id table filed a subscriber twice when it grew at 2,048 and
 * 4,096; a pull that stopped between two gaps read the ring at a cursor
 * it had not checked). So the input here is a program: publish, attach
 * subscribers of every transport with lists of 1..32 channels of names 1
 * to 200 long and cursors plain or with an epoch, at 0, 1, the maximum,
 * stale; pull in small batches; detach; kill ids; attach thousands at
 * once; let time pass so history ages out and idle channels are
 * reclaimed (a new epoch). Every pulled batch goes through the very
 * formatting code of the transports (sse_format, frame_format,
 * poll_format, message_single_reply), and what a client would receive is
 * checked: well formed, every JSON parses, no control bytes, the cursors
 * in id: lines, next and welcomes parse back to the subscriber's
 * position, and each channel's ids are contiguous within an epoch unless
 * a gap says otherwise.
 *
 * The subscribers' host does nothing: here parking is the bus's flag and
 * waking is the next pull. */
#include "bus.h"
#include "cursor.h"
#include "frame_format.h"
#include "log.h"
#include "message.h"
#include "payload.h"
#include "poll_format.h"
#include "sse_format.h"
#include "transport.h"
#include "validate.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMES 48         /* the channel names an input can use */
#define MUX_MAX 40       /* channels one /ws subscriber may add here */
#define SUBS_MAX 6000    /* attached at once: past both growth points */
#define ITEMS_MAX 64     /* items per pull */
#define OPS_MAX 4096     /* operations per input */
#define WORK_MAX 20000   /* and about this many pulls' worth of work */
#define PULL_ALL_MAX 512 /* subscribers one pull-all reaches */
#define HEARTBEAT 15     /* seconds, as in the welcomes */
#define CLIENTS 8        /* client ids, shared so exclude_sender matters */
#define FREED_MAX 64     /* ids of freed subscribers, for kill */

enum kind { K_POLL, K_LONGPOLL, K_SSE, K_WS, K_MUX, K_COUNT };

/* One subscriber as its transport keeps it. */
struct fsub {
	struct subscriber sub; /* first: the bus hands this pointer back */
	enum kind kind;
	size_t nch;
	unsigned char name[MUX_MAX]; /* indexes into names[] */
	struct cursor pos[MUX_MAX];  /* the cursor the client holds */
};

struct input {
	const uint8_t *p;
	size_t left;
};

static struct bus *bus;
static char names[NAMES][CHANNEL_NAME_MAX + 1];
static struct fsub *subs[SUBS_MAX];
static size_t nsubs;
static uint64_t freed[FREED_MAX];
static size_t nfreed;
static uint64_t now_ms;
static size_t work;
static const char *const clients[CLIENTS] = {
	"alice",
	"bob",
	"c",
	"d-4",
	"e_5",
	"f6",
	"g7",
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
};

/* ---- the transports, and a host that lets the program drive ---- */

/* The program pulls each subscriber when it chooses: a park, wake or cut
 * asks nothing of it (what they would ask of a library is its host's). */
static void no_op(struct subscriber *sub)
{
	(void)sub;
}

static const struct sub_host fuzz_host = { "fuzz", no_op, no_op, no_op };

static const struct transport *const by_kind[K_COUNT] = {
	&transport_poll, &transport_longpoll, &transport_sse,
	&transport_ws,   &transport_ws,
};

/* ---- reading the program ---- */

static unsigned byte(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static uint64_t u64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | byte(in);
	return v;
}

/* ---- what a client receives must be well formed ---- */

static void fail(const char *what, const char *text, size_t len)
{
	fprintf(stderr, "fuzz_request: %s\n  in %zu bytes: %.*s\n", what, len,
		(int)(len > 2000 ? 2000 : len), text);
	abort();
}

/* No control character, well-formed UTF-8; '\n' only where newline_ok.
 * (DEL may travel inside a JSON string, as JSON allows.) */
static void printable(const char *s, size_t len, bool newline_ok)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 && !(c == '\n' && newline_ok))
			fail("a control byte", s, len);
	}
	if (!utf8_valid((const unsigned char *)s, len))
		fail("not UTF-8", s, len);
}

/* One JSON value that is all of s. */
static cJSON *json(const char *s, size_t len)
{
	const char *end = NULL;
	cJSON *doc;

	printable(s, len, false);
	doc = cJSON_ParseWithLengthOpts(s, len, &end, false);
	if (doc == NULL || end != s + len || !cJSON_IsObject(doc))
		fail("not one JSON object", s, len);
	return doc;
}

static const char *str_of(const cJSON *doc, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool num_is(const cJSON *doc, const char *key, uint64_t want)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);

	return cJSON_IsNumber(v) && v->valuedouble == (double)want;
}

static void want_str(const cJSON *doc, const char *key, const char *want,
		     const char *text, size_t len)
{
	const char *got = str_of(doc, key);

	if (got == NULL || strcmp(got, want) != 0)
		fail(key, text, len);
}

/* A cursor the gateway hands out: it parses back, for this many
 * channels, to exactly the subscriber's position, epochs included. */
static void cursor_back(const char *text, size_t len, const struct fsub *fs,
			const char *where, size_t wlen)
{
	struct cursor back[MUX_MAX];

	if (cursor_parse(text, len, fs->nch, back) != 0)
		fail("a cursor that does not parse", where, wlen);
	if (memcmp(back, fs->pos, fs->nch * sizeof back[0]) != 0)
		fail("a cursor that is not the position", where, wlen);
	for (size_t i = 0; i < fs->nch; i++)
		if (back[i].epoch == 0)
			fail("a cursor without its epoch", where, wlen);
}

static size_t cursor_text(const struct fsub *fs, char *buf)
{
	return cursor_format(fs->pos, fs->nch, buf);
}

static void epoch_is(const cJSON *doc, uint64_t epoch, const char *text,
		     size_t len)
{
	char e[EPOCH_TEXT_MAX];

	cursor_epoch_text(epoch, e);
	want_str(doc, "epoch", e, text, len);
}

/* The n bytes a transport sends from buf, as a string of their own: a
 * length past what was written reads past buf, as the socket write did
 * when snprintf's return value was staged. Takes buf. */
static char *sent(char *buf, size_t n)
{
	char *out = malloc(n + 1);

	memcpy(out, buf, n);
	out[n] = '\0';
	free(buf);
	return out;
}

/* ---- the stream of one channel ---- */

static const char *name_of(const struct fsub *fs, unsigned tap)
{
	return names[fs->name[tap]];
}

/* Check an item against the position the client holds, then move it. A
 * message or skip is the next id of the same epoch; a gap starts from
 * what the client had and is justified by the channel's state. */
static void advance(struct fsub *fs, const struct bus_item *it)
{
	struct cursor *p = &fs->pos[it->tap];
	const char *name = name_of(fs, it->tap);
	struct bus_channel_info info;

	if (it->tap >= fs->nch)
		fail("an item of no tap", name, 0);
	if (bus_info(bus, name, strlen(name), &info) != 0)
		fail("an item of a channel that is gone", name, strlen(name));
	if (it->epoch != info.epoch)
		fail("an item of another epoch than the channel's", name,
		     strlen(name));
	if (it->msg == NULL && !it->skip) {
		bool due = p->epoch != info.epoch || p->id > info.last_id ||
			   p->id + 1 < info.oldest_id;

		if (it->gap_last != p->id || it->cursor + 1 != info.oldest_id ||
		    !due)
			fail("a gap that does not follow the cursor", name,
			     strlen(name));
	} else {
		if (p->epoch != it->epoch || it->cursor != p->id + 1)
			fail("ids not contiguous and no gap", name,
			     strlen(name));
		if (it->msg &&
		    (it->msg->id != it->cursor || it->msg->epoch != it->epoch))
			fail("an item whose message is elsewhere", name,
			     strlen(name));
	}
	p->epoch = it->epoch;
	p->id = it->cursor;
}

/* A message's shared envelope (and its binary-frame form). */
static void check_envelope(const struct fsub *fs, const struct bus_item *it)
{
	const struct message *m = it->msg;
	const char *s = message_json(m);
	cJSON *doc = json(s, m->json_len);

	want_str(doc, "type", "message", s, m->json_len);
	want_str(doc, "channel", name_of(fs, it->tap), s, m->json_len);
	want_str(doc, "event", m->event, s, m->json_len);
	epoch_is(doc, it->epoch, s, m->json_len);
	if (!num_is(doc, "id", it->cursor) ||
	    !cJSON_GetObjectItemCaseSensitive(doc, "data"))
		fail("an envelope without its id or data", s, m->json_len);
	cJSON_Delete(doc);
	if (m->meta_len == 0)
		return;
	doc = json(message_meta(m), m->meta_len);
	if (!num_is(doc, "id", it->cursor))
		fail("a binary-frame envelope without its id", message_meta(m),
		     m->meta_len);
	cJSON_Delete(doc);
}

/* ---- SSE ---- */

/* The "data: " line of an SSE event at s: its JSON, one line. */
static cJSON *sse_data(const char *block, size_t len, const char *s)
{
	const char *nl;

	if (strncmp(s, "data: ", 6) != 0)
		fail("an SSE event without data", block, len);
	s += 6;
	nl = memchr(s, '\n', (size_t)(block + len - s));
	if (nl == NULL || nl + 2 != block + len || nl[1] != '\n')
		fail("SSE data that is not one line closing the block", block,
		     len);
	return json(s, (size_t)(nl - s));
}

/* "id: CURSOR\n" at the start of s; returns what follows. */
static const char *sse_id(const struct fsub *fs, const char *block, size_t len,
			  const char *s)
{
	const char *nl;

	if (strncmp(s, "id: ", 4) != 0)
		fail("an SSE block without its id", block, len);
	s += 4;
	nl = memchr(s, '\n', (size_t)(block + len - s));
	if (nl == NULL)
		fail("an SSE id line without its end", block, len);
	cursor_back(s, (size_t)(nl - s), fs, block, len);
	return nl + 1;
}

static void sse_welcome(const struct fsub *fs)
{
	static const char retry[] = "retry: 2000\n\n";
	char cursor[CURSOR_TEXT_MAX], *buf = malloc(SSE_FORMAT_MAX), *block;
	size_t n;
	const char *s;
	cJSON *doc;

	cursor_text(fs, cursor);
	n = sse_format_welcome(buf, SSE_FORMAT_MAX, cursor, fs->sub.client,
			       HEARTBEAT);
	block = sent(buf, n);
	printable(block, n, true);
	if (strncmp(block, retry, sizeof retry - 1) != 0)
		fail("an SSE welcome without retry", block, n);
	s = sse_id(fs, block, n, block + sizeof retry - 1);
	if (strncmp(s, "event: welcome\n", 15) != 0)
		fail("an SSE welcome that is not one", block, n);
	doc = sse_data(block, n, s + 15);
	want_str(doc, "client", fs->sub.client, block, n);
	want_str(doc, "cursor", cursor, block, n);
	if (!num_is(doc, "heartbeat", HEARTBEAT))
		fail("an SSE welcome without heartbeat", block, n);
	cJSON_Delete(doc);
	free(block);
}

static void sse_item(struct fsub *fs, const struct bus_item *it)
{
	const char *name = name_of(fs, it->tap), *s;
	char cursor[CURSOR_TEXT_MAX], *buf, *block;
	size_t n, len;
	cJSON *doc;

	advance(fs, it);
	cursor_text(fs, cursor);
	buf = malloc(SSE_FORMAT_MAX);
	n = sse_format_item(buf, SSE_FORMAT_MAX, cursor, name, strlen(name),
			    it, true);
	/* the block as staged: the text, then the envelope and "\n\n" */
	len = n + (it->msg ? it->msg->json_len + 2 : 0);
	block = malloc(len + 1);
	memcpy(block, buf, n);
	if (it->msg) {
		memcpy(block + n, message_json(it->msg), it->msg->json_len);
		memcpy(block + len - 2, "\n\n", 2);
	}
	block[len] = '\0';
	free(buf);
	printable(block, len, true);
	s = sse_id(fs, block, len, block);
	if (it->skip) {
		if (strcmp(s, "\n") != 0)
			fail("an SSE skip that is more than an id", block, len);
	} else if (it->msg == NULL) {
		if (strncmp(s, "event: gap\n", 11) != 0)
			fail("an SSE gap that is not one", block, len);
		doc = sse_data(block, len, s + 11);
		want_str(doc, "channel", name, block, len);
		epoch_is(doc, it->epoch, block, len);
		if (!num_is(doc, "last_seen", it->gap_last) ||
		    !num_is(doc, "cursor", it->cursor))
			fail("an SSE gap without its ids", block, len);
		cJSON_Delete(doc);
	} else {
		if (strncmp(s, "event: ", 7) != 0 ||
		    strncmp(s + 7, it->msg->event, strlen(it->msg->event)) !=
			    0 ||
		    s[7 + strlen(it->msg->event)] != '\n')
			fail("an SSE message with another event", block, len);
		cJSON_Delete(
			sse_data(block, len, s + 8 + strlen(it->msg->event)));
		check_envelope(fs, it);
	}
	free(block);
}

/* ---- WebSocket ---- */

static void ws_welcome(const struct fsub *fs)
{
	char cursor[CURSOR_TEXT_MAX], *buf = malloc(FRAME_WELCOME_MAX);
	bool mux = fs->kind == K_MUX;
	size_t n;
	cJSON *doc;
	const char *got;

	if (!mux)
		cursor_text(fs, cursor);
	n = frame_format_welcome(buf, FRAME_WELCOME_MAX, fs->sub.client,
				 HEARTBEAT, mux ? NULL : cursor);
	buf = sent(buf, n);
	doc = json(buf, n);
	want_str(doc, "type", "welcome", buf, n);
	want_str(doc, "client", fs->sub.client, buf, n);
	got = str_of(doc, "cursor");
	if (mux != (got == NULL))
		fail("a WebSocket welcome with the wrong cursor", buf, n);
	if (got)
		cursor_back(got, strlen(got), fs, buf, n);
	cJSON_Delete(doc);
	free(buf);
}

static void ws_item(struct fsub *fs, const struct bus_item *it)
{
	const char *name = name_of(fs, it->tap);
	char *buf;
	size_t n;
	cJSON *doc;

	advance(fs, it);
	if (it->msg) {
		check_envelope(fs, it);
		return;
	}
	buf = malloc(FRAME_ITEM_MAX);
	n = frame_format_item(buf, FRAME_ITEM_MAX, name, it);
	buf = sent(buf, n);
	doc = json(buf, n);
	want_str(doc, "type", it->skip ? "cursor" : "gap", buf, n);
	want_str(doc, "channel", name, buf, n);
	epoch_is(doc, it->epoch, buf, n);
	if (!num_is(doc, "cursor", it->cursor) ||
	    (!it->skip && !num_is(doc, "last_seen", it->gap_last)))
		fail("a WebSocket frame without its ids", buf, n);
	cJSON_Delete(doc);
	free(buf);
}

/* ---- poll and long poll ---- */

/* The reply as pollreply.c sends it; checks it and drops the items. */
static void poll_reply(struct fsub *fs, struct bus_item *items, size_t count,
		       bool more)
{
	struct channel_list chs = { .count = fs->nch };
	char cursor[CURSOR_TEXT_MAX], *body, *tail = NULL;
	const cJSON *msgs, *next, *gaps;
	size_t len, nmsg = 0, ngap = 0;
	cJSON *doc;

	for (size_t i = 0; i < count; i++) {
		advance(fs, &items[i]);
		if (items[i].msg)
			check_envelope(fs, &items[i]);
		nmsg += items[i].msg != NULL;
		ngap += items[i].msg == NULL && !items[i].skip;
	}
	cursor_text(fs, cursor);
	if (count == 1 && items[0].msg && !more && fs->nch == 1) {
		const char *single = bus_single_reply(bus, items[0].msg, &len);

		body = malloc(len);
		memcpy(body, single, len);
	} else {
		size_t cap = poll_format_tail_cap(count), tlen, at;

		for (size_t i = 0; i < fs->nch; i++) {
			chs.name[i] = name_of(fs, (unsigned)i);
			chs.len[i] = strlen(chs.name[i]);
		}
		tail = malloc(cap);
		tlen = poll_format_tail(tail, cap, cursor, &chs, items, count,
					more);
		len = sizeof POLL_FORMAT_HEAD - 1 + tlen + count;
		for (size_t i = 0; i < count; i++)
			len += items[i].msg ? items[i].msg->json_len : 0;
		body = malloc(len);
		memcpy(body, POLL_FORMAT_HEAD, sizeof POLL_FORMAT_HEAD - 1);
		at = sizeof POLL_FORMAT_HEAD - 1;
		for (size_t i = 0, k = 0; i < count; i++) {
			const struct message *m = items[i].msg;

			if (m == NULL)
				continue;
			if (k++)
				body[at++] = ',';
			memcpy(body + at, message_json(m), m->json_len);
			at += m->json_len;
		}
		memcpy(body + at, tail, tlen);
		len = at + tlen;
	}
	doc = json(body, len);
	msgs = cJSON_GetObjectItemCaseSensitive(doc, "messages");
	next = cJSON_GetObjectItemCaseSensitive(doc, "next");
	gaps = cJSON_GetObjectItemCaseSensitive(doc, "gaps");
	if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) != (int)nmsg)
		fail("a poll reply with other messages", body, len);
	if (!cJSON_IsString(next) || strcmp(next->valuestring, cursor) != 0)
		fail("a poll reply with another next", body, len);
	cursor_back(next->valuestring, strlen(next->valuestring), fs, body,
		    len);
	if ((ngap || gaps) &&
	    (!cJSON_IsArray(gaps) || cJSON_GetArraySize(gaps) != (int)ngap))
		fail("a poll reply with other gaps", body, len);
	for (size_t i = 0, k = 0; i < count; i++) {
		const cJSON *g;

		if (items[i].msg || items[i].skip)
			continue;
		g = cJSON_GetArrayItem(gaps, (int)k++);
		want_str(g, "channel", name_of(fs, items[i].tap), body, len);
		epoch_is(g, items[i].epoch, body, len);
		if (!num_is(g, "last_seen", items[i].gap_last) ||
		    !num_is(g, "cursor", items[i].cursor))
			fail("a poll gap without its ids", body, len);
	}
	if (more != cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "more")))
		fail("a poll reply with the wrong more", body, len);
	cJSON_Delete(doc);
	free(body);
	free(tail);
	bus_items_release(items, count);
}

/* ---- subscribers ---- */

static void sub_free(size_t i)
{
	struct fsub *fs = subs[i];

	bus_detach(bus, &fs->sub);
	if (nfreed < FREED_MAX)
		freed[nfreed++] = fs->sub.id;
	/* scribble, as a reused allocation would, then free */
	memset(fs, 0xA5, sizeof *fs);
	free(fs);
	subs[i] = subs[--nsubs];
}

static size_t pick(struct input *in)
{
	unsigned hi = byte(in);

	return (hi << 8 | byte(in)) % nsubs;
}

/* The welcome and start cursors: with no since, EPOCH:last_id; a plain
 * id gets the current epoch; an epoch cursor is echoed as given. The
 * subscriber's own join (presence) came after its start. */
static void check_start(const struct fsub *fs, const struct cursor *since,
			bool joined)
{
	for (size_t i = 0; i < fs->nch; i++) {
		const char *name = name_of(fs, (unsigned)i);
		struct bus_channel_info info;
		struct cursor want;

		if (bus_info(bus, name, strlen(name), &info) != 0)
			fail("a channel gone after attach", name, strlen(name));
		want.epoch = since && since[i].epoch ? since[i].epoch :
						       info.epoch;
		want.id = since ? since[i].id : info.last_id - joined;
		if (memcmp(&want, &fs->pos[i], sizeof want) != 0)
			fail("a start cursor that is not the echo", name,
			     strlen(name));
	}
}

/* One channel's cursor as a client might send it: plain or with the
 * current, a stale or the largest epoch; at 0, 1, the maximum or the
 * channel's last id. Appended to text at *at. */
static void cursor_arg(struct input *in, const char *name, char *text,
		       size_t *at)
{
	unsigned c = byte(in);
	struct bus_channel_info info;
	uint64_t epoch = 0, id = 0;
	char e[EPOCH_TEXT_MAX];

	bus_info(bus, name, strlen(name), &info);
	switch (c & 3) {
	case 1:
		epoch = info.epoch;
		break;
	case 2:
		epoch = u64(in) | 1; /* stale (unless it hits, 2^-63) */
		break;
	case 3:
		epoch = UINT64_MAX;
		break;
	}
	switch (c >> 2 & 3) {
	case 1:
		id = 1;
		break;
	case 2:
		id = UINT64_MAX;
		break;
	case 3:
		id = info.last_id + (c >> 4 & 3) - 1;
		break;
	}
	if (epoch) {
		cursor_epoch_text(epoch, e);
		*at += (size_t)sprintf(text + *at, "%s:", e);
	}
	*at += (size_t)sprintf(text + *at, "%llu", (unsigned long long)id);
}

/* After a pull: close, or hand the items to the transport's format. */
static void serve(size_t i, struct bus_item *items, const struct bus_pull *got)
{
	struct fsub *fs = subs[i];

	switch (fs->kind) {
	case K_POLL:
		poll_reply(fs, items, got->count, got->more);
		sub_free(i);
		return;
	case K_LONGPOLL:
		if (got->end == SUB_END_DEAD || got->end == SUB_END_SLOW) {
			sub_free(i);
			return;
		}
		if (got->parked)
			return;
		poll_reply(fs, items, got->count, got->more);
		sub_free(i);
		return;
	case K_SSE:
		for (size_t k = 0; k < got->count; k++)
			sse_item(fs, &items[k]);
		break;
	default:
		for (size_t k = 0; k < got->count; k++)
			ws_item(fs, &items[k]);
		break;
	}
	bus_items_release(items, got->count);
	if (got->end != SUB_END_NONE)
		sub_free(i);
}

static void pull(struct input *in, size_t i)
{
	struct bus_item items[ITEMS_MAX];
	unsigned a = byte(in), b = byte(in);
	size_t max_items = 1 + (a & 0x80 ? a % ITEMS_MAX : a % 4);
	size_t max_bytes = b & 0x80 ? (size_t)1 << 20 : 64 + (size_t)b * 8;
	struct bus_pull got;

	work++;
	bus_pull(bus, &subs[i]->sub, items, max_items, max_bytes,
		 subs[i]->kind != K_POLL, &got);
	if (got.count > max_items || (got.end != SUB_END_NONE && got.count))
		fail("a pull beyond its limits", "", 0);
	serve(i, items, &got);
}

static struct fsub *sub_new(enum kind kind, unsigned flags)
{
	struct fsub *fs = calloc(1, sizeof *fs);

	fs->kind = kind;
	fs->sub.transport = by_kind[kind];
	fs->sub.host = &fuzz_host;
	fs->sub.announce = flags & 2;
	snprintf(fs->sub.client, sizeof fs->sub.client, "%s",
		 clients[flags >> 3 & (CLIENTS - 1)]);
	if (kind == K_LONGPOLL)
		fs->sub.deadline_ms = now_ms + 1000 * (1 + (flags >> 6));
	return fs;
}

/* Steps through the names that visit each once (coprime with NAMES). */
static const unsigned steps[] = { 1, 5, 7, 11, 13, 17, 19, 23 };

/* A subscribe request of any transport, as the HTTP or WebSocket side
 * parses it: the channel list and the cursor text go through the real
 * parsers, then attach, then the welcome (or, for poll, the reply). */
static void op_attach(struct input *in)
{
	enum kind kind = (enum kind)(byte(in) % K_COUNT);
	unsigned flags = byte(in), first = byte(in), step = steps[byte(in) & 7];
	size_t count = kind == K_MUX ? 0 : 1 + byte(in) % 32, tlen = 0, at = 0;
	char *list = malloc(CHANNELS_PER_SUBSCRIPTION_MAX *
			    (CHANNEL_NAME_MAX + 1)),
	     *text = malloc(CURSOR_TEXT_MAX);
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	bool has_since = flags & 1;
	struct channel_list chs = { .count = 0 };
	struct fsub *fs;

	if (nsubs == SUBS_MAX)
		goto out;
	fs = sub_new(kind, flags);
	fs->nch = count;
	for (size_t k = 0; k < count; k++) {
		fs->name[k] = (unsigned char)((first + k * step) % NAMES);
		at += (size_t)sprintf(list + at, "%s%s", k ? "," : "",
				      names[fs->name[k]]);
		if (has_since) {
			if (k)
				text[tlen++] = ',';
			cursor_arg(in, names[fs->name[k]], text, &tlen);
		}
	}
	if (count && channel_list_parse(list, at, &chs) != 0)
		fail("a channel list that does not parse", list, at);
	if (has_since && count && cursor_parse(text, tlen, count, since) != 0)
		fail("a client cursor that does not parse", text, tlen);
	if (bus_attach(bus, &fs->sub, &chs, has_since && count ? since : NULL,
		       fs->pos) != BUS_OK) {
		free(fs); /* 503: never attached */
		goto out;
	}
	check_start(fs, has_since ? since : NULL, fs->sub.announce);
	subs[nsubs++] = fs;
	if (kind == K_SSE)
		sse_welcome(fs);
	else if (kind == K_WS || kind == K_MUX)
		ws_welcome(fs);
	if (kind == K_POLL && flags & 4)
		bus_poll_seen(bus, &chs, fs->sub.client, TRANSPORT_POLL,
			      flags & 2);
	if (kind == K_POLL || kind == K_LONGPOLL)
		pull(in, nsubs - 1);
out:
	free(list);
	free(text);
}

/* The body as JSON, else as text, else as binary, as the kind asks. */
static void make_payload(unsigned kind, const char *body, size_t len,
			 struct payload *out)
{
	if (kind == 0 && payload_from_json(body, len, out) == PAYLOAD_OK)
		return;
	if (kind <= 1 && payload_from_text(body, len, out) == PAYLOAD_OK)
		return;
	payload_from_binary(body, len, out);
}

/* POST /channels/NAME with a JSON, text or binary body. */
static void op_publish(struct input *in)
{
	const char *name = names[byte(in) % NAMES];
	unsigned flags = byte(in), len = byte(in) % 48;
	char body[48];
	struct payload data;
	struct message_spec spec = {
		.channel = name,
		.event = flags & 4 ? "ev.t:1" : NULL,
		.from = flags & 8 ? clients[flags >> 5] : NULL,
		.exclude_sender = flags & 16,
		.data = &data,
	};
	struct bus_channel_info info;
	struct cursor at;

	for (unsigned k = 0; k < len; k++)
		body[k] = (char)byte(in);
	make_payload(flags & 3, body, len, &data);
	if (bus_publish(bus, name, strlen(name),
			message_new(&spec, 1700000000000LL, now_ms),
			&at) == BUS_OK) {
		if (bus_info(bus, name, strlen(name), &info) != 0 ||
		    info.epoch != at.epoch || info.last_id != at.id)
			fail("a publish acknowledged elsewhere", name,
			     strlen(name));
	}
	payload_free(&data);
}

/* /ws {"op":"subscribe","channel":...,"since":...}. */
static void op_mux_subscribe(struct input *in)
{
	struct fsub *fs;
	unsigned c = byte(in), flags = byte(in);
	struct cursor since, start;
	char text[CURSOR_TEXT_MAX], back[CURSOR_TEXT_MAX];
	size_t tlen = 0, i;

	if (nsubs == 0)
		return;
	fs = subs[pick(in)];
	if (fs->kind != K_MUX || fs->nch == MUX_MAX)
		return;
	for (i = 0; i < fs->nch; i++)
		if (fs->name[i] == c % NAMES)
			return; /* already_subscribed */
	if (flags & 1) {
		cursor_arg(in, names[c % NAMES], text, &tlen);
		if (cursor_parse(text, tlen, 1, &since) != 0)
			fail("a /ws since that does not parse", text, tlen);
	}
	if (bus_tap_add(bus, &fs->sub, names[c % NAMES],
			strlen(names[c % NAMES]), flags & 1 ? &since : NULL,
			flags & 2, &start) != BUS_OK)
		return;
	fs->name[fs->nch] = (unsigned char)(c % NAMES);
	fs->pos[fs->nch++] = start;
	/* the ack's cursor names this channel alone */
	{
		struct fsub one = { .nch = 1, .pos = { start } };

		one.name[0] = (unsigned char)(c % NAMES);
		check_start(&one, flags & 1 ? &since : NULL, flags & 2);
		tlen = cursor_format(&start, 1, back);
		cursor_back(back, tlen, &one, back, tlen);
	}
}

static void op_mux_unsubscribe(struct input *in)
{
	struct fsub *fs;
	size_t k;

	if (nsubs == 0)
		return;
	fs = subs[pick(in)];
	if (fs->kind != K_MUX || fs->nch == 0)
		return;
	k = byte(in) % fs->nch;
	bus_tap_remove(bus, &fs->sub, k);
	memmove(&fs->name[k], &fs->name[k + 1], fs->nch - k - 1);
	memmove(&fs->pos[k], &fs->pos[k + 1],
		(fs->nch - k - 1) * sizeof fs->pos[0]);
	fs->nch--;
}

/* Thousands of cheap one-channel subscribers: the id table grows at
 * 2,048 and 4,096. */
static void op_mass_attach(struct input *in)
{
	unsigned b = byte(in);
	size_t n = ((size_t)b % 160 + 1) * 32;

	work += n / 4;
	for (size_t k = 0; k < n && nsubs < SUBS_MAX; k++) {
		struct fsub *fs = sub_new((enum kind)(K_LONGPOLL + k % 3), 0);
		struct channel_list chs = { .count = 1 };

		fs->nch = 1;
		fs->name[0] = (unsigned char)((b + k) % NAMES);
		chs.name[0] = names[fs->name[0]];
		chs.len[0] = strlen(chs.name[0]);
		if (bus_attach(bus, &fs->sub, &chs, NULL, fs->pos) != BUS_OK) {
			free(fs);
			return;
		}
		subs[nsubs++] = fs;
	}
}

static void op_mass_detach(struct input *in)
{
	size_t stride = 1 + byte(in) % 4;

	for (size_t i = nsubs; i-- > 0;)
		if (i % stride == 0)
			sub_free(i);
}

/* The watcher saw a peer go: kill by id, known, freed or made up. */
static void op_kill(struct input *in)
{
	static const uint64_t probes[] = { 0,    1,    1023,      1024, 2047,
					   2048, 2049, 4095,      4096, 4097,
					   6144, 8192, UINT64_MAX };
	unsigned c = byte(in);
	uint64_t id;

	if (c < 96 && nsubs)
		id = subs[pick(in)]->sub.id;
	else if (c < 160 && nfreed)
		id = freed[byte(in) % nfreed];
	else
		id = probes[c % (sizeof probes / sizeof probes[0])];
	bus_kill(bus, id, SUB_END_DEAD);
}

static void op_tick(struct input *in)
{
	now_ms += (uint64_t)byte(in) * 100;
	work += nsubs / 32 + 1;
	bus_tick(bus, now_ms);
}

static void op_pull_all(struct input *in)
{
	struct input again = *in;
	size_t stop = nsubs > PULL_ALL_MAX ? nsubs - PULL_ALL_MAX : 0;

	for (size_t i = nsubs; i-- > stop;) {
		*in = again; /* every subscriber pulls with the same limits */
		pull(in, i);
	}
}

/* Names of lengths 1, 2, 199 and 200, then lengths the input picks, of
 * every character a name may have; all distinct. */
static void make_names(struct input *in)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
				    "KLMNOPQRSTUVWXYZ0123456789_.:~-";
	static const size_t fixed[] = { 1, 2, 199, 200 };
	unsigned shift = byte(in);

	for (size_t k = 0; k < NAMES; k++) {
		size_t len = k < 4 ? fixed[k] : 1 + (k * 37 + shift) % 200;

		for (size_t j = 0; j < len; j++)
			names[k][j] = chars[(k * 7 + j * 13 + shift) %
					    (sizeof chars - 1)];
		names[k][len] = '\0';
		/* distinct and valid: bump the first character until so */
		for (unsigned tries = 0; tries < sizeof chars; tries++) {
			bool dup = !channel_name_valid(names[k], len);

			for (size_t j = 0; j < k && !dup; j++)
				dup = strcmp(names[j], names[k]) == 0;
			if (!dup)
				break;
			names[k][0] = chars[(tries + k) % 26];
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	unsigned h0 = byte(&in), h1 = byte(&in), h2 = byte(&in), h3 = byte(&in);
	struct bus_config cfg = {
		.history_size = 1 + h0 % 16,
		.history_age_ms = 1000 * (1 + h1 % 8),
		.history_bytes = 256 + (size_t)h2 * 64,
		.max_channels = 33 + h3 % 48,
		.lag_limit = h3 & 0x80 ? 2048 : 1u << 20,
		.presence_window_ms = 5000,
	};

	log_set_level(LOG_ERROR);
	bus = bus_new(&cfg);
	now_ms = bus_now_ms();
	nsubs = nfreed = work = 0;
	make_names(&in);
	for (int ops = 0; in.left > 0 && ops < OPS_MAX && work < WORK_MAX;
	     ops++) {
		switch (byte(&in) % 13) {
		case 0:
		case 1:
			op_attach(&in);
			break;
		case 2:
		case 3:
			op_publish(&in);
			break;
		case 4:
		case 5:
			if (nsubs)
				pull(&in, pick(&in));
			break;
		case 6:
			if (nsubs)
				sub_free(pick(&in));
			break;
		case 7:
			op_kill(&in);
			break;
		case 8:
			op_tick(&in);
			break;
		case 9:
			op_mass_attach(&in);
			break;
		case 10:
			op_mass_detach(&in);
			break;
		case 11:
			if (byte(&in) & 1)
				op_mux_subscribe(&in);
			else
				op_mux_unsubscribe(&in);
			break;
		case 12:
			if (byte(&in) == 0xA5)
				bus_shutdown(bus);
			else
				op_pull_all(&in);
			break;
		}
	}
	while (nsubs)
		sub_free(nsubs - 1);
	/* probes after everyone left: no id may reach a freed subscriber */
	for (size_t k = 0; k < nfreed; k++)
		bus_kill(bus, freed[k], SUB_END_DEAD);
	bus_free(bus);
	if (message_alive() != 0)
		fail("a message reference was lost", "", 0);
	return 0;
}
