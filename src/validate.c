/* Validation of names and text from outside. Every function takes an
 * explicit length: inputs come from network buffers that are not
 * NUL-terminated, and embedded NULs must be refused, not truncated. */
#include "validate.h"

#include <string.h>

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool chars_valid(const char *s, size_t len, size_t max,
			const char *extra)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && (c == '\0' || strchr(extra, c) == NULL))
			return false;
	}
	return true;
}

/* "." and ".." match the character set but no URL can carry them:
 * clients normalise them away as dot segments. */
bool channel_name_valid(const char *s, size_t len)
{
	if ((len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	return chars_valid(s, len, CHANNEL_NAME_MAX, "_.:~-");
}

bool event_name_valid(const char *s, size_t len)
{
	return chars_valid(s, len, EVENT_NAME_MAX, "_.:-");
}

/* A forged one would be taken for the real thing by subscribers:
 * - welcome, gap, ping: the SSE events the gateway writes itself.
 *   web/anypush.js acts on an SSE event by its name: a forged gap tells
 *   the application to reload its state, a forged welcome announces
 *   'open' again. ping is the heartbeat EventSource users watch. On
 *   every transport ch.on('gap') also hears messages named gap.
 * - cursor: kept free so that the gateway can name its cursor-only SSE
 *   blocks (an id: line alone today) without meeting a publisher's.
 * - open, error: EventSource dispatches an event by its name, so a
 *   message named error fires onerror, and anypush.js then drops the
 *   stream and reconnects; open fires onopen.
 * - join, leave: presence, published only by the gateway (bus.c), or
 *   anyone could announce or remove any client id.
 * "message" is the default name and stays allowed: its envelope is the
 * same as any other message's. So is "ack": /ws frames are told apart by
 * "type", and a message's type is always "message". */
static const char *const reserved_events[] = {
	"welcome", "gap", "ping", "cursor", "open", "error", "join", "leave",
};

bool event_name_reserved(const char *s, size_t len)
{
	for (size_t i = 0;
	     i < sizeof reserved_events / sizeof reserved_events[0]; i++)
		if (strlen(reserved_events[i]) == len &&
		    memcmp(reserved_events[i], s, len) == 0)
			return true;
	return false;
}

bool client_id_valid(const char *s, size_t len)
{
	return chars_valid(s, len, CLIENT_ID_MAX, "_-");
}

/* Length of the UTF-8 sequence at s, or 0 if it is malformed. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t need;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return need;
}

bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_sequence(s + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

int channel_list_parse(const char *s, size_t len, struct channel_list *out)
{
	size_t start = 0;

	out->count = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		if (out->count == CHANNELS_PER_SUBSCRIPTION_MAX ||
		    !channel_name_valid(s + start, i - start))
			return -1;
		for (size_t k = 0; k < out->count; k++)
			if (out->len[k] == i - start &&
			    memcmp(out->name[k], s + start, i - start) == 0)
				return -1;
		out->name[out->count] = s + start;
		out->len[out->count] = i - start;
		out->count++;
		start = i + 1;
	}
	return 0;
}
