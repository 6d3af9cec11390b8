/* The reply points an iovec at each message's shared envelope, so a poll
 * reply costs one small allocation, not a copy of every message. */
#include "pollreply.h"

#include "bus.h"
#include "cursor.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "message.h"
#include "poll_format.h"
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

static void reply_free(void *cls)
{
	struct reply *r = cls;

	for (size_t i = 0; i < r->count; i++)
		message_unref(r->msgs[i]);
	free(r->iov);
	free(r->tail);
	free(r);
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
	size_t cap = poll_format_tail_cap(count), len;
	struct reply *r = xcalloc(1, sizeof *r + count * sizeof r->msgs[0]);
	struct MHD_IoVec *iov = xcalloc(2 * count + 2, sizeof *iov);
	char cursor[CURSOR_TEXT_MAX];
	struct MHD_Response *resp;
	unsigned n = 0;

	http_sub_advance(hs, items, count);
	http_sub_cursor(hs, cursor);
	/* before the loop below takes the messages (a gap is a NULL msg) */
	r->tail = xmalloc(cap);
	len = poll_format_tail(r->tail, cap, cursor, &hs->req->channels, items,
			       count, more);
	iov[n++] = (struct MHD_IoVec){ POLL_FORMAT_HEAD,
				       sizeof POLL_FORMAT_HEAD - 1 };
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
