/* cursor.h: the subscriber's position, "17" or "17,4,0" (one id per
 * channel, in the order the channels were named). */
#ifndef ANYPUSH_CURSOR_H
#define ANYPUSH_CURSOR_H

#include <stddef.h>
#include <stdint.h>

/* Room for CHANNELS_PER_SUBSCRIPTION_MAX ids of 20 digits and commas. */
#define CURSOR_TEXT_MAX (32 * 21 + 1)

/* Parse exactly `count` decimal u64 ids separated by commas, with no sign,
 * space or leading '+'; overflow is an error. 0 or -1. */
int cursor_parse(const char *s, size_t len, size_t count, uint64_t *ids);
/* Format ids as "a,b,c" into buf (CURSOR_TEXT_MAX); returns the length. */
size_t cursor_format(const uint64_t *ids, size_t count, char *buf);

#endif
