/* frame_format.h: the text of the WebSocket frames that are not a
 * message's shared envelope (the welcome, gap and cursor frames, the /ws
 * acks and errors), free of I/O, so that the fuzzers run the very code
 * whose bytes reach the client (lws_ws.c writes what these
 * produce). */
#ifndef ANYPUSH_FRAME_FORMAT_H
#define ANYPUSH_FRAME_FORMAT_H

#include "cursor.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>

struct bus_item;
struct mux_op;

/* Room for the welcome, with the cursor of a whole channel list (the
 * client's own epochs and ids are echoed: 13 and 20 characters each),
 * the longest client id and any heartbeat an unsigned long holds. */
#define FRAME_WELCOME_MAX (CURSOR_TEXT_MAX + CLIENT_ID_MAX + 128)
/* Room for a gap or cursor frame. */
#define FRAME_ITEM_MAX (CHANNEL_NAME_MAX + EPOCH_TEXT_MAX + 128)
/* Room for a /ws ack or error. */
#define FRAME_CTL_MAX (CHANNEL_NAME_MAX + 256)

/* The longest header of a server frame (unmasked, 64-bit length). */
#define FRAME_HEAD_MAX 10

/* Framing */
/* The RFC 6455 header of one whole server-to-client frame (FIN set, no
 * mask) carrying len bytes, text or binary, into head; its length (2, 4
 * or 10). For frames written several to a send (lws_ws.c), where lws
 * would frame each write on its own. */
size_t frame_format_head(unsigned char head[FRAME_HEAD_MAX], bool binary,
			 size_t len);

/* Frames */
/* {"type":"welcome",...}; cursor NULL for /ws, which has no channels yet. */
size_t frame_format_welcome(char *buf, size_t cap, const char *client,
			    unsigned long heartbeat, const char *cursor);
/* The frame of a pulled item that carries no message: the cursor frame of
 * a skip (the client's own excluded broadcast), else the gap frame. */
size_t frame_format_item(char *buf, size_t cap, const char *channel,
			 const struct bus_item *it);

/* /ws answers, echoing the op's ref ("ref":null when it had none) */
/* {"type":"ack","ref":R}, with "cursor":"C" after a subscribe that
 * starts at *start, or "id":N,"epoch":"E" after a publish stored at
 * *stored (either or both NULL), and "replayed":true when that publish
 * was stored before under its idempotency key. */
size_t frame_format_ack(char *buf, size_t cap, const struct mux_op *op,
			const struct cursor *start, const struct cursor *stored,
			bool replayed);
/* {"type":"error","ref":R,"code":"C","message":"M"}; M is escaped. */
size_t frame_format_error(char *buf, size_t cap, const struct mux_op *op,
			  const char *code, const char *message);
/* {"type":"error","ref":null,"code":"C","channel":"CH","message":"M"}:
 * the gateway ended the subscription to CH on its own (a refreshed token
 * that no longer covers it). M is our own text, not escaped. */
size_t frame_format_channel_error(char *buf, size_t cap, const char *channel,
				  const char *code, const char *message);

#endif
