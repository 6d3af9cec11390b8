/* Cursor text <-> ids. Strict on purpose: a cursor a client cannot have
 * been given is a client bug worth a 400, not something to guess at. */
#include "cursor.h"

#include <stdio.h>

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int cursor_parse(const char *s, size_t len, size_t count, uint64_t *ids)
{
	size_t start = 0, n = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		if (n == count || parse_u64(s + start, i - start, &ids[n]) < 0)
			return -1;
		n++;
		start = i + 1;
	}
	return n == count ? 0 : -1;
}

size_t cursor_format(const uint64_t *ids, size_t count, char *buf)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < count; i++)
		len += (size_t)snprintf(buf + len, CURSOR_TEXT_MAX - len,
					"%s%llu", i ? "," : "",
					(unsigned long long)ids[i]);
	return len;
}
