/* sse_out.h: what an SSE stream sends next and the text of it not yet
 * copied out: the welcome once, then each pulled item's event (a block
 * from sse_format, a message's shared envelope, its "\n\n"), copied into
 * whatever room the host gives and continued at the next call. The SSE
 * technique (transport_sse.c) stages through it for both libraries'
 * hosts, so both send the same bytes in the same order. */
#ifndef ANYPUSH_SSE_OUT_H
#define ANYPUSH_SSE_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct bus_item;
struct channel_list;
struct cursor;
struct message;
struct subscriber;

/* How long a welcome waits on Redis for its channels' first sync */
#define SSE_OUT_WELCOME_WAIT_MS 5000

/* A stream's staged text and where it is in its pulled items. Zeroed:
 * nothing staged, nothing pulled, the welcome still to send. */
struct sse_out {
	const char *ptr[3]; /* up to three pieces of text */
	size_t len[3];
	unsigned count, at;
	size_t off;
	struct message *writing; /* its envelope is staged: reference held */
	size_t nitems, next;     /* of the stream's pulled items */
	bool started;            /* the welcome is staged */
	bool ending;     /* the last event is staged: end once it is out */
	const char *why; /* why it ends, for the host's log; NULL: none */
	/* with --redis: the welcome waits for the channels' first sync
	 * until then (monotonic ms), the stream ends past it; 0: no wait */
	uint64_t welcome_by;
};

/* What the next event is made of: the stream's own state, lent for one
 * sse_out_next or sse_fill (transport_sse.c) call. */
struct sse_out_src {
	struct bus_item *items; /* SSE_BATCH: pulled into, then staged */
	char *scratch; /* SSE_FORMAT_MAX bytes, left alone until drained */
	struct cursor *cursor; /* the client's, one per channel of chs:
				* advanced past each item staged */
	const struct channel_list *chs;
	const char *client;      /* for the welcome */
	unsigned long heartbeat; /* seconds, for the welcome */
	bool named;              /* messages as events of their own name */
	unsigned long *sent;     /* messages staged, counted */
	struct bus *bus;         /* whose sub is the stream */
	struct subscriber *sub;
	long long exp_s; /* the token's exp: the stream ends then; 0: none */
};

/* Staging */
/* Stage the next thing to send: the welcome the first time (once every
 * channel is synced: with --redis its cursor carries Redis' epoch), then
 * the next pulled item; false if nothing is ready (pull more, or, while
 * sse_out_waiting, wait without pulling). */
bool sse_out_next(struct sse_out *s, const struct sse_out_src *src);
/* The welcome is not staged yet: pull nothing, so no message goes
 * before it. */
bool sse_out_waiting(const struct sse_out *s);
/* The welcome waited past welcome_by: end with SSE_FORMAT_REDIS_DOWN. */
bool sse_out_late(const struct sse_out *s);
/* Stage one item's event, cursor (text) being the client's after it:
 * the block, formatted into scratch, then a message's envelope and
 * "\n\n"; takes the item's message reference. */
void sse_out_item(struct sse_out *s, char *scratch, const char *cursor,
		  const struct channel_list *chs, struct bus_item *it,
		  bool named);
/* Queue len bytes at p, which must stay valid until drained. */
void sse_out_stage(struct sse_out *s, const char *p, size_t len);
/* count items were pulled into the stream's items: stage them next. */
void sse_out_pulled(struct sse_out *s, size_t count);

/* Copying out */
/* Copy up to max staged bytes into buf; the number copied. */
size_t sse_out_drain(struct sse_out *s, char *buf, size_t max);
/* Whether anything is still staged. */
bool sse_out_staged(const struct sse_out *s);

/* Ending */
/* Drop the references held: the items (NULL once freed, when none are
 * left) not yet staged, and the message being written. Zeroes s. */
void sse_out_free(struct sse_out *s, struct bus_item *items);

#endif
