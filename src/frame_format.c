/* Every length returned here comes from fmt_at, so it never exceeds what
 * was written, whatever the buffer. */
#include "frame_format.h"

#include "bus.h"
#include "fmt.h"
#include "ws_mux.h"

#include <stdint.h>

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

/* "ref":N or "ref":null, for acks and errors. */
static size_t ref_text(char *buf, size_t cap, const struct mux_op *op)
{
	if (op->has_ref)
		return fmt_at(buf, cap, 0, "%lld", op->ref);
	return fmt_at(buf, cap, 0, "null");
}

size_t frame_format_ack(char *buf, size_t cap, const struct mux_op *op,
			const struct cursor *start, const struct cursor *stored,
			bool replayed)
{
	char ref[24], text[CURSOR_TEXT_MAX];
	size_t n;

	ref_text(ref, sizeof ref, op);
	n = fmt_at(buf, cap, 0, "{\"type\":\"ack\",\"ref\":%s", ref);
	if (start) {
		cursor_format(start, 1, text);
		n = fmt_at(buf, cap, n, ",\"cursor\":\"%s\"", text);
	}
	if (stored) {
		cursor_epoch_text(stored->epoch, text);
		n = fmt_at(buf, cap, n, ",\"id\":%llu,\"epoch\":\"%s\"%s",
			   (unsigned long long)stored->id, text,
			   replayed ? ",\"replayed\":true" : "");
	}
	return fmt_at(buf, cap, n, "}");
}

size_t frame_format_error(char *buf, size_t cap, const struct mux_op *op,
			  const char *code, const char *message)
{
	char ref[24], text[160];
	size_t n = 0;

	/* our own words, but escaped all the same: the frame must parse */
	for (const char *c = message; *c && n < sizeof text - 2; c++) {
		if (*c == '"' || *c == '\\')
			text[n++] = '\\';
		text[n++] = *c;
	}
	text[n] = '\0';
	ref_text(ref, sizeof ref, op);
	return fmt_at(buf, cap, 0,
		      "{\"type\":\"error\",\"ref\":%s,\"code\":\"%s\","
		      "\"message\":\"%s\"}",
		      ref, code, text);
}

size_t frame_format_channel_error(char *buf, size_t cap, const char *channel,
				  const char *code, const char *message)
{
	return fmt_at(buf, cap, 0,
		      "{\"type\":\"error\",\"ref\":null,\"code\":\"%s\","
		      "\"channel\":\"%s\",\"message\":\"%s\"}",
		      code, channel, message);
}

size_t frame_format_head(unsigned char head[FRAME_HEAD_MAX], bool binary,
			 size_t len)
{
	head[0] = 0x80 | (binary ? 0x2 : 0x1); /* FIN, opcode */
	if (len < 126) {
		head[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xffff) {
		head[1] = 126;
		head[2] = (unsigned char)(len >> 8);
		head[3] = (unsigned char)len;
		return 4;
	}
	head[1] = 127;
	for (int i = 0; i < 8; i++)
		head[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	return FRAME_HEAD_MAX;
}
