/* sse_format.h: the text of Server-Sent Events blocks, free of I/O, so
 * that the request fuzzer runs the very code whose bytes reach the
 * client (sse_out.c stages what these write). */
#ifndef ANYPUSH_SSE_FORMAT_H
#define ANYPUSH_SSE_FORMAT_H

#include "cursor.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>

struct bus_item;

/* The reconnect delay the welcome asks EventSource for. */
#define SSE_RETRY_MS 2000
/* Room for any block below: the welcome names the cursor twice; a gap
 * block, the cursor and a channel name. */
#define SSE_FORMAT_MAX (2 * CURSOR_TEXT_MAX + CHANNEL_NAME_MAX + 256)

/* The last event of a stream the admin API ended (its channel deleted,
 * its client disconnected), on both SSE paths. */
#define SSE_FORMAT_ADMIN_ENDED                                          \
	"event: error\ndata: {\"type\":\"error\",\"code\":"             \
	"\"closed_by_admin\",\"message\":\"the channel was deleted or " \
	"the client disconnected\"}\n\n"

/* The only event of a stream whose welcome waited on Redis (--redis)
 * longer than SSE_OUT_WELCOME_WAIT_MS, on both SSE paths. */
#define SSE_FORMAT_REDIS_DOWN                                          \
	"event: error\ndata: {\"type\":\"error\",\"code\":"            \
	"\"redis_unavailable\",\"message\":\"Redis did not answer in " \
	"time; retry\"}\n\n"

/* Blocks */
/* retry, then the welcome event at cursor (text of cursor_format). */
size_t sse_format_welcome(char *buf, size_t cap, const char *cursor,
			  const char *client, unsigned long heartbeat);
/* The block of a pulled item, cursor being the client's cursor after it:
 * an id-only block for a skip, the gap event for a gap, and for a message
 * the block up to its data, which is the envelope and then "\n\n". A
 * message is an event of its own name if named, else an unnamed one
 * (EventSource's "message"), because EventSource has no wildcard: a
 * client that must see every name asks for them unnamed. */
size_t sse_format_item(char *buf, size_t cap, const char *cursor,
		       const char *channel, size_t channel_len,
		       const struct bus_item *it, bool named);

#endif
