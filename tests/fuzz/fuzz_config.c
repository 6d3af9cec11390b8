/* libFuzzer target: the config file parser, on the text of a whole file.
 * What parses must survive a reload's update into the defaults, and all
 * the strings it gave must be freed (LeakSanitizer checks). */
#include "config.h"
#include "log.h"
#include "transport.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct config cfg, cur;

	if (devnull == NULL) {
		devnull = fopen("/dev/null", "w");
		log_set_level(LOG_ERROR); /* config_update logs each change */
	}
	config_defaults(&cfg);
	config_defaults(&cur);
	if (config_parse_text(&cfg, "fuzz.conf", (const char *)data, size,
			      devnull) == 0)
		config_update(&cur, &cfg);
	config_free(&cfg);
	config_free(&cur);
	return 0;
}
