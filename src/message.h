/* message.h: one published message, immutable once sealed, refcounted and
 * encoded once. Its single buffer is the WebSocket frame (with LWS_PRE
 * headroom), the poll item and the SSE data line: the same bytes. */
#ifndef ANYPUSH_MESSAGE_H
#define ANYPUSH_MESSAGE_H

#include "validate.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct channel;
struct payload;

struct message {
	atomic_uint refs;
	uint64_t id;      /* per-channel, set by message_seal */
	uint64_t epoch;   /* the channel's incarnation, set by message_seal */
	uint64_t seq;     /* bus-wide publish order, set by the bus */
	int64_t ts;       /* wall clock ms, on the wire */
	uint64_t born_ms; /* monotonic ms, for history age */
	bool exclude_sender;
	bool binary;
	char from[CLIENT_ID_MAX + 1]; /* "" when the publisher had no id */
	char event[EVENT_NAME_MAX + 1];
	size_t json_len; /* envelope at json(); 0 until sealed */
	size_t data_off; /* the data value inside the envelope */
	size_t data_len;
	size_t cap;  /* bytes after the headroom */
	size_t size; /* the whole allocation: what history is charged */
	/* binary messages also have a binary-frame form for /ws clients that
	 * ask for it: an envelope with "data":null, then the raw bytes; each
	 * at an offset into buf with its own LWS_PRE headroom before it */
	size_t meta_off, meta_len, meta_cap;
	size_t raw_off, raw_len;
	/* the whole reply of a one-channel poll that gets only this message,
	 * built on first use and shared (see message_single_reply) */
	struct single_reply *_Atomic single;
	/* Owned by the bus, guarded by its lock: position in history. */
	struct channel *ch;
	struct message *older, *newer; /* bus-wide publish order */
	uint64_t end_offset; /* channel byte count once this was appended */
	size_t charged;      /* bytes counted in the history budget */
	unsigned char buf[];
};

/* What a publisher asks for; the strings are copied. */
struct message_spec {
	const char *channel;
	const char *event; /* NULL: "message" */
	const char *from;  /* NULL or "": none */
	bool exclude_sender;
	const struct payload *data;
};

/* Build the envelope up to (not including) the id; refcount 1. */
struct message *message_new(const struct message_spec *spec, int64_t ts_ms,
			    uint64_t mono_ms);
/* Append the epoch and id and close the envelope. Called once, under the
 * bus lock. */
void message_seal(struct message *m, uint64_t epoch, uint64_t id);
/* The envelope text {"type":"message",...,"epoch":"E","id":N}. */
static inline const char *message_json(const struct message *m);
/* The binary-frame form (meta_len 0 when the message is not binary). */
static inline const char *message_meta(const struct message *m);
static inline const unsigned char *message_raw(const struct message *m);
/* Bytes of writable headroom before message_json() (LWS_PRE). */
extern const size_t message_headroom;
/* {"messages":[ENVELOPE],"next":"EPOCH:ID"}: the same bytes for every
 * one-channel poll or long poll answered with just this message, built
 * once on first use (any thread). Valid while the caller holds a ref.
 * *built is the bytes this call allocated and kept (0 when the copy was
 * there already), for the history budget (bus_single_reply). */
const char *message_single_reply(struct message *m, size_t *len, size_t *built);
void message_ref(struct message *m);
void message_unref(struct message *m);
/* Messages alive now (for tests and /metrics). */
long message_alive(void);

static inline const char *message_json(const struct message *m)
{
	return (const char *)m->buf + message_headroom;
}

static inline const char *message_meta(const struct message *m)
{
	return (const char *)m->buf + m->meta_off;
}

static inline const unsigned char *message_raw(const struct message *m)
{
	return m->buf + m->raw_off;
}

#endif
