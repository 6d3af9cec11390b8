/* cursor.h: the subscriber's position, one per channel, in the order the
 * channels were named: "k3x9a2bq:17" or, for several channels,
 * "k3x9a2bq:17,p0ab12cd:4". The epoch names the channel's incarnation
 * (ids restart at 1 with a new one: a restart, a reclaimed channel), so a
 * cursor of another incarnation is a gap, never a silent skip. A plain
 * id ("17") carries no epoch and is taken to be of the current one. */
#ifndef ANYPUSH_CURSOR_H
#define ANYPUSH_CURSOR_H

#include <stddef.h>
#include <stdint.h>

/* One channel's position. */
struct cursor {
	uint64_t epoch; /* 0: none given (a plain id) */
	uint64_t id;    /* the last message id seen */
};

/* An epoch as text: base 36, lower case, at most 13 characters. */
#define EPOCH_TEXT_MAX 14
/* Room for CHANNELS_PER_SUBSCRIPTION_MAX cursors: epoch, ':', 20 digits
 * and a comma each. */
#define CURSOR_TEXT_MAX (32 * (13 + 1 + 20 + 1) + 1)

/* Parse exactly `count` cursors separated by commas. Each is ID or
 * EPOCH:ID: ID is a decimal u64 with no sign or space, EPOCH 1-13
 * characters [0-9a-z] whose value fits a u64 and is not 0. 0 or -1. */
int cursor_parse(const char *s, size_t len, size_t count, struct cursor *out);
/* Format cursors as "e:a,b,e:c" into buf (CURSOR_TEXT_MAX); the length. */
size_t cursor_format(const struct cursor *c, size_t count, char *buf);
/* The epoch as text into buf (EPOCH_TEXT_MAX); the length. */
size_t cursor_epoch_text(uint64_t epoch, char *buf);
/* A fresh epoch: random, 8 characters as text, never 0. */
uint64_t cursor_epoch_new(void);

#endif
