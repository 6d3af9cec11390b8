/* sse_out.h: the pieces of text an SSE stream has staged and not yet
 * copied out (a block from sse_format, a message's shared envelope, its
 * "\n\n"), copied into whatever room the library gives, and continued at
 * the next call. Shared by the libmicrohttpd stream (transport_sse.c) and
 * the libwebsockets one (transport_sse_lws.c). */
#ifndef ANYPUSH_SSE_OUT_H
#define ANYPUSH_SSE_OUT_H

#include <stdbool.h>
#include <stddef.h>

/* Up to three pieces of text waiting to be copied out. Zeroed: empty. */
struct sse_out {
	const char *ptr[3];
	size_t len[3];
	unsigned count, at;
	size_t off;
};

/* Queue len bytes at p, which must stay valid until drained. */
void sse_out_stage(struct sse_out *s, const char *p, size_t len);
/* Copy up to max staged bytes into buf; the number copied. */
size_t sse_out_drain(struct sse_out *s, char *buf, size_t max);
/* Whether anything is still staged. */
bool sse_out_staged(const struct sse_out *s);

#endif
