/* The reply points an iovec at each message's shared envelope, so a poll
 * reply costs one small allocation, not a copy of every message. */
#include "pollreply.h"

#include "bus.h"
#include "cursor.h"
#include "fmt.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "message.h"
#include "server.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>

struct reply {
	size_t count;
	struct MHD_IoVec *iov; /* MHD may read it until reply_free */
	char *tail;
	struct message *msgs[];
};

/* Room for one gap entry, and for the tail: next, flags, the gaps. */
#define GAP_TEXT_MAX (CHANNEL_NAME_MAX + EPOCH_TEXT_MAX + 100)

static void reply_free(void *cls)
{
	struct reply *r = cls;

	for (size_t i = 0; i < r->count; i++)
		message_unref(r->msgs[i]);
	free(r->iov);
	free(r->tail);
	free(r);
}

/* `,"gaps":[{"channel","last_seen","cursor","epoch"},...]` for the gap items, so
 * a client of several channels knows which one lost history. */
static size_t write_gaps(const struct http_sub *hs,
			 const struct bus_item *items, size_t count, char *out,
			 size_t cap)
{
	const struct channel_list *chs = &hs->req->channels;
	size_t n = 0, gaps = 0;

	for (size_t i = 0; i < count; i++) {
		const struct bus_item *it = &items[i];
		char epoch[EPOCH_TEXT_MAX];

		if (it->msg != NULL || it->skip)
			continue;
		cursor_epoch_text(it->epoch, epoch);
		n = fmt_at(out, cap, n,
			   "%s{\"channel\":\"%.*s\",\"last_seen\":%llu,"
			   "\"cursor\":%llu,\"epoch\":\"%s\"}",
			   gaps++ ? "," : ",\"gap\":true,\"gaps\":[",
			   (int)chs->len[it->tap], chs->name[it->tap],
			   (unsigned long long)it->gap_last,
			   (unsigned long long)it->cursor, epoch);
	}
	if (gaps)
		n = fmt_at(out, cap, n, "]");
	return n;
}

static void unref_cb(void *cls)
{
	message_unref(cls);
}

/* The common reply, one channel and one message, is the same bytes for
 * every client: send the message's shared copy, which MHD writes with
 * the head in one writev (an iovec body costs a second send). */
static int send_single(struct http_sub *hs, struct bus_item *it)
{
	struct message *m = it->msg;
	struct MHD_Response *resp;
	const char *body;
	size_t len;

	http_sub_advance(hs, it, 1);
	body = bus_single_reply(hs->req->srv->bus, m, &len);
	it->msg = NULL; /* the response holds the reference now */
	resp = MHD_create_response_from_buffer_with_free_callback_cls(
		len, (void *)body, unref_cb, m);
	/* MHD calls unref_cb only for a response it made; the cursor has
	 * moved on, but closing the connection tells the client to come
	 * back with its own */
	if (resp == NULL) {
		message_unref(m);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Client-Id", hs->req->client);
	return http_reply_queue(hs->req->conn, 200, resp);
}

/* Any other reply: an iovec over the messages' shared envelopes. */
static int send_list(struct http_sub *hs, struct bus_item *items, size_t count,
		     bool more)
{
	size_t gcap = count * GAP_TEXT_MAX + 8,
	       cap = CURSOR_TEXT_MAX + 64 + gcap;
	struct reply *r = xcalloc(1, sizeof *r + count * sizeof r->msgs[0]);
	struct MHD_IoVec *iov = xcalloc(2 * count + 2, sizeof *iov);
	char cursor[CURSOR_TEXT_MAX], *gaps = xmalloc(gcap);
	struct MHD_Response *resp;
	unsigned n = 0;
	size_t len, glen;

	/* before the loop below takes the messages (a gap is a NULL msg) */
	glen = write_gaps(hs, items, count, gaps, gcap);
	r->tail = xmalloc(cap);
	http_sub_advance(hs, items, count);
	iov[n++] = (struct MHD_IoVec){ "{\"messages\":[", 13 };
	for (size_t i = 0; i < count; i++) {
		struct message *m = items[i].msg;

		if (m == NULL)
			continue;
		if (r->count > 0)
			iov[n++] = (struct MHD_IoVec){ ",", 1 };
		iov[n++] = (struct MHD_IoVec){ message_json(m), m->json_len };
		r->msgs[r->count++] = m;
		items[i].msg = NULL;
	}
	http_sub_cursor(hs, cursor);
	len = fmt_at(r->tail, cap, 0, "],\"next\":\"%s\"%.*s%s}", cursor,
		     (int)glen, gaps, more ? ",\"more\":true" : "");
	free(gaps);
	iov[n++] = (struct MHD_IoVec){ r->tail, len };
	r->iov = iov;
	resp = MHD_create_response_from_iovec(iov, n, reply_free, r);
	if (resp == NULL) {
		reply_free(r); /* as MHD would have, with the response */
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Client-Id", hs->req->client);
	return http_reply_queue(hs->req->conn, 200, resp);
}

int pollreply_send(struct http_sub *hs, struct bus_item *items, size_t count,
		   bool more)
{
	if (count == 1 && items[0].msg && !more && hs->req->channels.count == 1)
		return send_single(hs, &items[0]);
	return send_list(hs, items, count, more);
}
