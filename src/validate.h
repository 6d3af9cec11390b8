/* validate.h: checks for names and text that arrive from outside. */
#ifndef ANYPUSH_VALIDATE_H
#define ANYPUSH_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define CHANNEL_NAME_MAX 200
#define EVENT_NAME_MAX 64
#define CLIENT_ID_MAX 64
/* Channels one subscription may name in /channels/a,b,c. */
#define CHANNELS_PER_SUBSCRIPTION_MAX 32

/* [A-Za-z0-9_.:~-]{1,200}, but not "." or ".." */
bool channel_name_valid(const char *s, size_t len);
/* [A-Za-z0-9_.:-]{1,64} */
bool event_name_valid(const char *s, size_t len);
/* A name the gateway publishes itself or that clients treat as protocol
 * (welcome, gap, ...): no publisher may use it. */
bool event_name_reserved(const char *s, size_t len);
/* The reserved names, comma-separated, for error messages. */
#define EVENT_NAMES_RESERVED \
	"welcome, gap, ping, cursor, open, error, join and leave"
/* [A-Za-z0-9_-]{1,64}: ids the gateway issues, or clients bring back. */
bool client_id_valid(const char *s, size_t len);
/* Well-formed UTF-8 per RFC 3629: no overlongs, surrogates or > U+10FFFF. */
bool utf8_valid(const unsigned char *s, size_t len);

/* A parsed "a,b,c" channel list; names point into the parsed string. */
struct channel_list {
	size_t count;
	const char *name[CHANNELS_PER_SUBSCRIPTION_MAX];
	size_t len[CHANNELS_PER_SUBSCRIPTION_MAX];
};
/* Split and check a comma-separated list: every name valid, no duplicate,
 * at most CHANNELS_PER_SUBSCRIPTION_MAX. 0 or -1. */
int channel_list_parse(const char *s, size_t len, struct channel_list *out);

#endif
