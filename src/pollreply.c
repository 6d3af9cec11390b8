/* The reply points an iovec at each message's shared envelope, so a poll
 * reply costs one small allocation, not a copy of every message. */
#include "pollreply.h"

#include "cursor.h"
#include "http.h"
#include "http_reply.h"
#include "http_sub.h"
#include "message.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>

struct reply {
	size_t count;
	struct MHD_IoVec *iov; /* MHD may read it until reply_free */
	char tail[CURSOR_TEXT_MAX + 64];
	struct message *msgs[];
};

static void reply_free(void *cls)
{
	struct reply *r = cls;

	for (size_t i = 0; i < r->count; i++)
		message_unref(r->msgs[i]);
	free(r->iov);
	free(r);
}

int pollreply_send(struct http_sub *hs, struct bus_item *items, size_t count,
		   bool more)
{
	struct reply *r = xcalloc(1, sizeof *r + count * sizeof r->msgs[0]);
	struct MHD_IoVec *iov = xcalloc(2 * count + 2, sizeof *iov);
	char cursor[CURSOR_TEXT_MAX];
	struct MHD_Response *resp;
	unsigned n = 0;
	bool gap = false;
	int len;

	http_sub_advance(hs, items, count);
	iov[n++] = (struct MHD_IoVec){ "{\"messages\":[", 13 };
	for (size_t i = 0; i < count; i++) {
		struct message *m = items[i].msg;

		if (m == NULL) {
			gap = true;
			continue;
		}
		if (r->count > 0)
			iov[n++] = (struct MHD_IoVec){ ",", 1 };
		iov[n++] = (struct MHD_IoVec){ message_json(m), m->json_len };
		r->msgs[r->count++] = m;
		items[i].msg = NULL;
	}
	http_sub_cursor(hs, cursor);
	len = snprintf(r->tail, sizeof r->tail, "],\"next\":\"%s\"%s%s}",
		       cursor, gap ? ",\"gap\":true" : "",
		       more ? ",\"more\":true" : "");
	iov[n++] = (struct MHD_IoVec){ r->tail, (size_t)len };
	r->iov = iov;
	resp = MHD_create_response_from_iovec(iov, n, reply_free, r);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "X-Client-Id", hs->req->client);
	return http_reply_queue(hs->req->conn, 200, resp);
}
