/* payload.h: turns what a publisher sent into the JSON text of a message's
 * "data" field, checked and on one line (SSE needs data on one line). */
#ifndef ANYPUSH_PAYLOAD_H
#define ANYPUSH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

/* The JSON text of "data"; owned by the caller (free()). */
struct payload {
	char *json;
	size_t len;
	bool binary; /* json is a base64 string of binary data */
	/* binary: the caller's bytes (not owned; valid while the caller
	 * keeps them), for the raw WebSocket binary-frame form */
	const void *raw;
	size_t raw_len;
};

enum payload_error {
	PAYLOAD_OK = 0,
	PAYLOAD_BAD_JSON = -1, /* not one well-formed JSON value in UTF-8 */
	PAYLOAD_BAD_UTF8 = -2, /* text that is not UTF-8 */
};

/* A JSON document: must parse as a whole, strings without raw control
 * characters; whitespace outside strings is dropped. */
enum payload_error payload_from_json(const char *body, size_t len,
				     struct payload *out);
/* UTF-8 text carried as a JSON string. */
enum payload_error payload_from_text(const char *body, size_t len,
				     struct payload *out);
/* Bytes carried as a base64 JSON string, out->binary set. */
void payload_from_binary(const void *body, size_t len, struct payload *out);
/* JSON if it parses, else a string if UTF-8 (WebSocket text frames). */
enum payload_error payload_from_any(const char *body, size_t len,
				    struct payload *out);
void payload_free(struct payload *p);

#endif
