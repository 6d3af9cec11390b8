/* libFuzzer target: client frames of the multiplexed WebSocket. An
 * accepted publish carries data that is itself valid JSON, and an
 * idempotency key, if any, that is well-formed. */
#include "ws_mux.h"

#include "idem.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct mux_error err;
	struct mux_op op;

	memcpy(buf, data, size);
	if (ws_mux_parse(buf, size, &op, &err) == 0) {
		if (op.key[0] && !idem_key_valid(op.key, strlen(op.key)))
			abort();
		if (op.kind == MUX_PUBLISH && !op.binary) {
			cJSON *d = cJSON_ParseWithLength(op.data.json,
							 op.data.len);

			if (d == NULL)
				abort();
			cJSON_Delete(d);
		}
		ws_mux_op_free(&op);
	}
	free(buf);
	return 0;
}
