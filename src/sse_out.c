#include "sse_out.h"

#include <string.h>

void sse_out_stage(struct sse_out *s, const char *p, size_t len)
{
	s->ptr[s->count] = p;
	s->len[s->count] = len;
	s->count++;
}

size_t sse_out_drain(struct sse_out *s, char *buf, size_t max)
{
	size_t n = 0;

	while (s->at < s->count && n < max) {
		size_t k = s->len[s->at] - s->off;

		if (k > max - n)
			k = max - n;
		memcpy(buf + n, s->ptr[s->at] + s->off, k);
		n += k;
		s->off += k;
		if (s->off == s->len[s->at]) {
			s->at++;
			s->off = 0;
		}
	}
	if (s->at == s->count)
		s->at = s->count = 0;
	return n;
}

bool sse_out_staged(const struct sse_out *s)
{
	return s->count > 0;
}
