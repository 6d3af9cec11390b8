/* libFuzzer target: the router's classification of a peeked head. */
#include "router_head.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so reads past the end are caught */
	char *buf = malloc(size ? size : 1);

	memcpy(buf, data, size);
	router_head_classify(buf, size, 8192, true);
	router_head_classify(buf, size, size, false);
	free(buf);
	return 0;
}
