/* ws_mux.h: client frames of the multiplexed WebSocket (GET /ws), parsed
 * into operations. Pure: no I/O, no bus. */
#ifndef ANYPUSH_WS_MUX_H
#define ANYPUSH_WS_MUX_H

#include "cursor.h"
#include "idem.h"
#include "payload.h"
#include "validate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mux_kind {
	MUX_SUBSCRIBE,
	MUX_UNSUBSCRIBE,
	MUX_PUBLISH,
	MUX_HELLO,
	MUX_AUTH
};

struct mux_op {
	enum mux_kind kind;
	bool has_ref;
	long long ref; /* the client's number, echoed in ack and error */
	char channel[CHANNEL_NAME_MAX + 1];
	bool has_since;
	struct cursor since;
	bool presence; /* subscribe: publish join/leave for this client */
	char event[EVENT_NAME_MAX + 1]; /* "" = message */
	bool exclude_sender;
	char key[IDEM_KEY_MAX + 1]; /* publish: idempotency key; "" = none */
	bool binary;         /* publish: the data is the next binary frame */
	bool binary_frames;  /* hello: send binary messages as binary frames */
	struct payload data; /* publish without binary: owned by the op */
	char *token;         /* auth: the new token, owned by the op */
};

/* Why a frame was refused: a stable code and a message for people. */
struct mux_error {
	const char *code;
	const char *message;
};

/* Parse one text frame. 0, or -1 with err set; op->has_ref and op->ref
 * are filled whenever the frame carried a valid ref, so the error can
 * name it. */
int ws_mux_parse(const char *frame, size_t len, struct mux_op *op,
		 struct mux_error *err);
/* Release what the op owns. */
void ws_mux_op_free(struct mux_op *op);

#endif
