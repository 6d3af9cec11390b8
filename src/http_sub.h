/* http_sub.h: a bus subscriber held on a libmicrohttpd connection
 * (poll, long poll, SSE). Its host is host_mhd (sub_host.h): parking is
 * MHD suspend, waking is MHD resume, cutting is shutdown(2), and a
 * watcher notices a peer that leaves while suspended. */
#ifndef ANYPUSH_HTTP_SUB_H
#define ANYPUSH_HTTP_SUB_H

#include "bus.h"
#include "cursor.h"

struct http_request;

struct http_sub {
	struct subscriber sub;
	struct http_request *req;
	/* as the client has it, one per channel of the request: sized to
	 * them, since a held subscriber keeps it (bench/idle_mem.py) */
	struct cursor *cursor;
	int fd; /* the connection's socket, for the watcher and cut */
	bool attached;
	bool watched;
};

/* Attach to the request's channels; on failure the error reply is queued
 * and the return is MHD_YES/NO for the handler, else -1 means attached.
 * deadline_ms, period_ms and announce as in struct subscriber. */
int http_sub_open(struct http_sub *hs, struct http_request *req,
		  uint64_t deadline_ms, uint64_t period_ms, bool announce);
/* With --redis, the cursor given at attach may predate the sync: start
 * the taps once every channel of the list is synced, so that a reply's
 * next carries an epoch for each (a channel synced first must not answer
 * alone). -1: started, go on and pull; else the handler's answer (MHD_YES
 * while it waits parked, after a 503 redis_unavailable once the wait is
 * over; MHD_NO when the subscriber ended). */
int http_sub_start_synced(struct http_sub *hs);
/* Leave the bus and the watcher, free the cursor. Safe to call twice. */
void http_sub_close(struct http_sub *hs);
/* Apply pulled items to the client's cursor. */
void http_sub_advance(struct http_sub *hs, const struct bus_item *items,
		      size_t count);
/* The client's cursor as text (CURSOR_TEXT_MAX). */
size_t http_sub_cursor(const struct http_sub *hs, char *buf);

#endif
