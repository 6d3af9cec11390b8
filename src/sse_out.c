/* One stream's output, the same on both libraries: an item's event is
 * its block in the stream's scratch plus the message's shared envelope,
 * which is never copied but staged by reference (encode once, send many),
 * so the reference is held in writing until the next thing is staged. */
#include "sse_out.h"

#include "bus.h"
#include "cursor.h"
#include "message.h"
#include "sse_format.h"
#include "validate.h"

#include <string.h>

void sse_out_stage(struct sse_out *s, const char *p, size_t len)
{
	s->ptr[s->count] = p;
	s->len[s->count] = len;
	s->count++;
}

void sse_out_item(struct sse_out *s, char *scratch, const char *cursor,
		  const struct channel_list *chs, struct bus_item *it,
		  bool named)
{
	struct message *m = it->msg;
	size_t n = sse_format_item(scratch, SSE_FORMAT_MAX, cursor,
				   chs->name[it->tap], chs->len[it->tap], it,
				   named);

	sse_out_stage(s, scratch, n);
	if (m == NULL)
		return;
	sse_out_stage(s, message_json(m), m->json_len);
	sse_out_stage(s, "\n\n", 2);
	s->writing = m;
	it->msg = NULL;
}

/* Everything staged before has been copied out (the callers stage only
 * when nothing is), so its message is no longer read. */
bool sse_out_next(struct sse_out *s, const struct sse_out_src *src)
{
	char cursor[CURSOR_TEXT_MAX];
	struct bus_item *it;
	size_t n;

	message_unref(s->writing);
	s->writing = NULL;
	if (!s->started) {
		if (!bus_welcome(src->bus, src->sub, 0, src->chs->count,
				 src->cursor))
			return false; /* woken by the sync */
		s->started = true;
		cursor_format(src->cursor, src->chs->count, cursor);
		n = sse_format_welcome(src->scratch, SSE_FORMAT_MAX, cursor,
				       src->client, src->heartbeat);
		sse_out_stage(s, src->scratch, n);
		return true;
	}
	if (s->next == s->nitems)
		return false;
	it = &src->items[s->next++];
	if (it->msg)
		(*src->sent)++;
	src->cursor[it->tap].epoch = it->epoch;
	src->cursor[it->tap].id = it->cursor;
	cursor_format(src->cursor, src->chs->count, cursor);
	sse_out_item(s, src->scratch, cursor, src->chs, it, src->named);
	return true;
}

bool sse_out_waiting(const struct sse_out *s)
{
	return !s->started;
}

bool sse_out_late(const struct sse_out *s)
{
	return !s->started && s->welcome_by && bus_now_ms() >= s->welcome_by;
}

void sse_out_pulled(struct sse_out *s, size_t count)
{
	s->nitems = count;
	s->next = 0;
}

size_t sse_out_drain(struct sse_out *s, char *buf, size_t max)
{
	size_t n = 0;

	while (s->at < s->count && n < max) {
		size_t k = s->len[s->at] - s->off;

		if (k > max - n)
			k = max - n;
		memcpy(buf + n, s->ptr[s->at] + s->off, k);
		n += k;
		s->off += k;
		if (s->off == s->len[s->at]) {
			s->at++;
			s->off = 0;
		}
	}
	if (s->at == s->count)
		s->at = s->count = 0;
	return n;
}

bool sse_out_staged(const struct sse_out *s)
{
	return s->count > 0;
}

void sse_out_free(struct sse_out *s, struct bus_item *items)
{
	if (items)
		bus_items_release(items + s->next, s->nitems - s->next);
	message_unref(s->writing);
	memset(s, 0, sizeof *s);
}
