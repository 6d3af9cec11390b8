/* libFuzzer target: the router's classification of a peeked head, whole
 * and fed in pieces as segments arrive. The first byte picks the piece
 * sizes; after every piece the scanner must agree with the classifier
 * on whether anything but HEAD_INCOMPLETE can be said yet. A header
 * value found in it lies within it. */
#include "router_head.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void feed_in_pieces(const char *buf, size_t size, size_t cap,
			   unsigned seed)
{
	struct head_scan s = { 0 };
	size_t at = 0;

	while (at < size) {
		size_t k = 1 + (seed & 7);
		bool ready;

		seed = seed * 1103515245u + 12345u;
		if (k > size - at)
			k = size - at;
		ready = router_head_scan(&s, buf + at, k, cap);
		at += k;
		if (ready != (router_head_classify(buf, at, cap, true, true) !=
			      HEAD_INCOMPLETE))
			abort();
		if (ready)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so reads past the end are caught */
	char *buf = malloc(size ? size : 1);

	memcpy(buf, data, size);
	router_head_classify(buf, size, 8192, true, true);
	router_head_classify(buf, size, size, false, false);
	/* the router reads X-Forwarded-For for --max-conns-per-ip: the
	 * value must lie inside the head */
	{
		size_t vlen = 0;
		const char *v = router_head_header(buf, size, "X-Forwarded-For:",
						   &vlen);

		if (v && (v < buf || v + vlen > buf + size))
			abort();
	}
	if (size > 0) {
		feed_in_pieces(buf + 1, size - 1, 8192, data[0]);
		feed_in_pieces(buf + 1, size - 1, size, data[0]);
	}
	free(buf);
	return 0;
}
