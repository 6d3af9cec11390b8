/* frame_format.h: the text of the WebSocket frames that are not a
 * message's shared envelope (the welcome, gap and cursor frames), free of
 * I/O, so that the request fuzzer runs the very code whose bytes reach
 * the client (transport_ws.c writes what these produce). */
#ifndef ANYPUSH_FRAME_FORMAT_H
#define ANYPUSH_FRAME_FORMAT_H

#include "cursor.h"
#include "validate.h"

#include <stddef.h>

struct bus_item;

/* Room for the welcome, with the cursor of a whole channel list. */
#define FRAME_WELCOME_MAX (CURSOR_TEXT_MAX + 128)
/* Room for a gap or cursor frame. */
#define FRAME_ITEM_MAX (CHANNEL_NAME_MAX + EPOCH_TEXT_MAX + 128)

/* Frames */
/* {"type":"welcome",...}; cursor NULL for /ws, which has no channels yet. */
size_t frame_format_welcome(char *buf, size_t cap, const char *client,
			    unsigned long heartbeat, const char *cursor);
/* The frame of a pulled item that carries no message: the cursor frame of
 * a skip (the client's own excluded broadcast), else the gap frame. */
size_t frame_format_item(char *buf, size_t cap, const char *channel,
			 const struct bus_item *it);

#endif
