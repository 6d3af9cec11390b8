/* libFuzzer target: cursors, channel lists and names. A cursor that
 * parses must format back to a string that parses to the same epochs and
 * ids. */
#include "cursor.h"
#include "validate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), text[CURSOR_TEXT_MAX];
	struct cursor ids[32], again[32];
	struct channel_list chs;
	size_t n = size ? (data[0] % 32) + 1 : 1;

	memcpy(buf, data, size);
	if (cursor_parse(buf, size, n, ids) == 0) {
		size_t len = cursor_format(ids, n, text);

		if (cursor_parse(text, len, n, again) != 0 ||
		    memcmp(ids, again, n * sizeof ids[0]) != 0)
			abort();
	}
	channel_list_parse(buf, size, &chs);
	channel_name_valid(buf, size);
	event_name_valid(buf, size);
	client_id_valid(buf, size);
	utf8_valid(data, size);
	free(buf);
	return 0;
}
