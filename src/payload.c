/* Publish bodies are the one input every client controls completely, so
 * every path here validates before it copies. cJSON checks structure and
 * caps nesting; the bytes we store are the publisher's own (minus
 * insignificant whitespace), so numbers keep their exact digits instead of
 * going through cJSON's double formatting. */
#include "payload.h"

#include "validate.h"
#include "xalloc.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the RFC 8259 number at p, 0 if there is none:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t number_len(const char *p, const char *end)
{
	const char *q = p;

	if (q < end && *q == '-')
		q++;
	if (q < end && *q == '0')
		q++;
	else if (q < end && is_digit(*q))
		while (q < end && is_digit(*q))
			q++;
	else
		return 0;
	if (q < end && *q == '.') {
		if (++q == end || !is_digit(*q))
			return 0;
		while (q < end && is_digit(*q))
			q++;
	}
	if (q < end && (*q == 'e' || *q == 'E')) {
		if (++q < end && (*q == '+' || *q == '-'))
			q++;
		if (q == end || !is_digit(*q))
			return 0;
		while (q < end && is_digit(*q))
			q++;
	}
	/* a number must not run into more number-like characters ("01") */
	if (q < end && (is_digit(*q) || *q == '.' || *q == '-' || *q == '+'))
		return 0;
	return (size_t)(q - p);
}

/* Copy with whitespace outside strings dropped, checking the tokens that
 * cJSON 1.7.15 lets through: it takes any byte <= 0x20 as whitespace and
 * numbers like "01" or "1.". -1 on any byte RFC 8259 refuses outside
 * strings, and on raw control characters inside them. cJSON checks the
 * structure. */
static int compact(const char *in, size_t len, char *out, size_t *out_len)
{
	const char *p = in, *end = in + len;
	bool in_string = false, escaped = false;
	size_t n = 0;

	while (p < end) {
		char c = *p;

		if (in_string) {
			if ((unsigned char)c < 0x20)
				return -1;
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
		} else if (is_json_space(c)) {
			p++;
			continue;
		} else if (c == '-' || is_digit(c)) {
			size_t k = number_len(p, end);

			if (k == 0)
				return -1;
			memcpy(out + n, p, k);
			n += k;
			p += k;
			continue;
		} else if (c == '"') {
			in_string = true;
		} else if (strchr("{}[]:,truefalsn", c) == NULL || c == '\0') {
			/* outside strings JSON has only these (cJSON checks
			 * the literals); cJSON itself skips a BOM and any
			 * byte <= 0x20 */
			return -1;
		}
		out[n++] = c;
		p++;
	}
	*out_len = n;
	return 0;
}

enum payload_error payload_from_json(const char *body, size_t len,
				     struct payload *out)
{
	const char *end = NULL;
	cJSON *doc;

	memset(out, 0, sizeof *out);
	/* RFC 8259 lets a parser ignore a byte order mark; we drop it */
	if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (!utf8_valid((const unsigned char *)body, len) ||
	    memchr(body, '\0', len) != NULL)
		return PAYLOAD_BAD_JSON;
	doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
	if (doc == NULL)
		return PAYLOAD_BAD_JSON;
	cJSON_Delete(doc);
	while (end < body + len && is_json_space(*end))
		end++;
	if (end != body + len)
		return PAYLOAD_BAD_JSON;
	out->json = xmalloc(len + 1);
	if (compact(body, len, out->json, &out->len) < 0) {
		payload_free(out);
		return PAYLOAD_BAD_JSON;
	}
	out->json[out->len] = '\0';
	return PAYLOAD_OK;
}

/* Worst case "\u00XX" for each byte, plus quotes. */
static size_t escape_string(const char *s, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	out[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c == '\r') {
			out[n++] = '\\';
			out[n++] = 'r';
		} else if (c == '\t') {
			out[n++] = '\\';
			out[n++] = 't';
		} else if (c < 0x20 || c == 0x7F) {
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[c >> 4];
			out[n + 5] = hex[c & 15];
			n += 6;
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	return n;
}

enum payload_error payload_from_text(const char *body, size_t len,
				     struct payload *out)
{
	memset(out, 0, sizeof *out);
	if (!utf8_valid((const unsigned char *)body, len))
		return PAYLOAD_BAD_UTF8;
	out->json = xmalloc(len * 6 + 3);
	out->len = escape_string(body, len, out->json);
	out->json[out->len] = '\0';
	return PAYLOAD_OK;
}

void payload_from_binary(const void *body, size_t len, struct payload *out)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = body;
	size_t n = 0;
	char *p;

	p = xmalloc((len + 2) / 3 * 4 + 3);
	p[n++] = '"';
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		p[n++] = b64[(v >> 18) & 63];
		p[n++] = b64[(v >> 12) & 63];
		p[n++] = left > 1 ? b64[(v >> 6) & 63] : '=';
		p[n++] = left > 2 ? b64[v & 63] : '=';
	}
	p[n++] = '"';
	p[n] = '\0';
	out->json = p;
	out->len = n;
	out->binary = true;
	out->raw = body;
	out->raw_len = len;
}

enum payload_error payload_from_any(const char *body, size_t len,
				    struct payload *out)
{
	enum payload_error err = payload_from_json(body, len, out);

	if (err == PAYLOAD_BAD_JSON)
		err = payload_from_text(body, len, out);
	return err;
}

void payload_free(struct payload *p)
{
	free(p->json);
	p->json = NULL;
	p->len = 0;
	p->raw = NULL;
	p->raw_len = 0;
}
