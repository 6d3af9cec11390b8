/* Every length returned here comes from fmt_at, so it never exceeds what
 * was written: staging snprintf's return value once sent the heap after
 * a too-small scratch buffer to SSE clients. */
#include "sse_format.h"

#include "bus.h"
#include "fmt.h"
#include "message.h"

size_t sse_format_welcome(char *buf, size_t cap, const char *cursor,
			  const char *client, unsigned long heartbeat)
{
	return fmt_at(buf, cap, 0,
		      "retry: %d\n\nid: %s\nevent: welcome\n"
		      "data: {\"client\":\"%s\",\"heartbeat\":%lu,"
		      "\"cursor\":\"%s\"}\n\n",
		      SSE_RETRY_MS, cursor, client, heartbeat, cursor);
}

size_t sse_format_item(char *buf, size_t cap, const char *cursor,
		       const char *channel, size_t channel_len,
		       const struct bus_item *it, bool named)
{
	char epoch[EPOCH_TEXT_MAX];

	/* an id-only block moves Last-Event-ID without an event */
	if (it->skip)
		return fmt_at(buf, cap, 0, "id: %s\n\n", cursor);
	if (it->msg == NULL) {
		cursor_epoch_text(it->epoch, epoch);
		return fmt_at(buf, cap, 0,
			      "id: %s\nevent: gap\ndata: {\"channel\":\"%.*s\","
			      "\"last_seen\":%llu,\"cursor\":%llu,"
			      "\"epoch\":\"%s\"}\n\n",
			      cursor, (int)channel_len, channel,
			      (unsigned long long)it->gap_last,
			      (unsigned long long)it->cursor, epoch);
	}
	if (!named)
		return fmt_at(buf, cap, 0, "id: %s\ndata: ", cursor);
	return fmt_at(buf, cap, 0, "id: %s\nevent: %s\ndata: ", cursor,
		      it->msg->event);
}
