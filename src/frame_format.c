/* Every length returned here comes from fmt_at, so it never exceeds what
 * was written, whatever the buffer. */
#include "frame_format.h"

#include "bus.h"
#include "fmt.h"

size_t frame_format_welcome(char *buf, size_t cap, const char *client,
			    unsigned long heartbeat, const char *cursor)
{
	size_t n = fmt_at(buf, cap, 0,
			  "{\"type\":\"welcome\",\"client\":\"%s\","
			  "\"heartbeat\":%lu",
			  client, heartbeat);

	if (cursor)
		n = fmt_at(buf, cap, n, ",\"cursor\":\"%s\"", cursor);
	return fmt_at(buf, cap, n, "}");
}

size_t frame_format_item(char *buf, size_t cap, const char *channel,
			 const struct bus_item *it)
{
	char epoch[EPOCH_TEXT_MAX];

	cursor_epoch_text(it->epoch, epoch);
	/* the client's own broadcast: it gets no copy, but its cursor must
	 * move past it, or that reads as a gap later */
	if (it->skip)
		return fmt_at(buf, cap, 0,
			      "{\"type\":\"cursor\",\"channel\":\"%s\","
			      "\"cursor\":%llu,\"epoch\":\"%s\"}",
			      channel, (unsigned long long)it->cursor, epoch);
	return fmt_at(buf, cap, 0,
		      "{\"type\":\"gap\",\"channel\":\"%s\","
		      "\"last_seen\":%llu,\"cursor\":%llu,"
		      "\"epoch\":\"%s\"}",
		      channel, (unsigned long long)it->gap_last,
		      (unsigned long long)it->cursor, epoch);
}
