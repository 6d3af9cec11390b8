/* poll_format.h: the text of a poll or long-poll reply around the
 * messages' shared envelopes, free of I/O, so that the request fuzzer
 * runs the very code whose bytes reach the client (pollreply.c sends the
 * head, the envelopes joined by commas, then the tail). */
#ifndef ANYPUSH_POLL_FORMAT_H
#define ANYPUSH_POLL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

struct bus_item;
struct channel_list;

/* What the reply opens with, before the first envelope. */
#define POLL_FORMAT_HEAD "{\"messages\":["

/* The message of the 410 closed_by_admin that ends a held long poll
 * when the admin API deletes its channel or disconnects its client. */
#define POLL_FORMAT_ADMIN_ENDED \
	"the channel was deleted or the client disconnected"

/* The tail */
/* Room poll_format_tail needs for a reply of count items. */
size_t poll_format_tail_cap(size_t count);
/* `],"next":"NEXT"` then `,"gap":true,"gaps":[...]` for the gap items
 * (items with no message that are not skips), `,"more":true` if more,
 * and `}`. */
size_t poll_format_tail(char *buf, size_t cap, const char *next,
			const struct channel_list *chs,
			const struct bus_item *items, size_t count, bool more);

#endif
