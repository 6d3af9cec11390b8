/* libFuzzer target: publish bodies as JSON, text, binary and "any". The
 * JSON form, when accepted, must be one line that cJSON parses again. */
#include "payload.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct payload p;

	memcpy(buf, data, size);
	if (payload_from_json(buf, size, &p) == PAYLOAD_OK) {
		cJSON *again = cJSON_ParseWithLength(p.json, p.len);

		if (again == NULL || memchr(p.json, '\n', p.len))
			abort();
		cJSON_Delete(again);
		payload_free(&p);
	}
	if (payload_from_text(buf, size, &p) == PAYLOAD_OK)
		payload_free(&p);
	payload_from_binary(buf, size, &p);
	payload_free(&p);
	if (payload_from_any(buf, size, &p) == PAYLOAD_OK)
		payload_free(&p);
	free(buf);
	return 0;
}
