/* Long polling, the technique: the same decisions on both libraries, so
 * a held poll answers the same wherever the router put it. */
#include "transport_longpoll.h"

#include <stdlib.h>
#include <string.h>

long longpoll_timeout(const char *s, unsigned long dflt)
{
	char *end;
	long t;

	if (s == NULL)
		return (long)dflt;
	if (s[0] < '0' || s[0] > '9' || strlen(s) > 6)
		return -1;
	t = strtol(s, &end, 10);
	if (*end || t <= 0)
		return -1;
	return t > LONGPOLL_TIMEOUT_MAX ? LONGPOLL_TIMEOUT_MAX : t;
}

enum longpoll_step longpoll_step(struct bus *bus, struct subscriber *sub,
				 size_t nch, struct cursor *cursor,
				 struct bus_item *items, struct bus_pull *got)
{
	memset(got, 0, sizeof *got);
	switch (bus_start_synced(bus, sub, nch, cursor)) {
	case BUS_START_GONE:
		return LONGPOLL_GONE;
	case BUS_START_PARKED:
		return LONGPOLL_HOLD; /* waiting on Redis */
	case BUS_START_LATE:
		return LONGPOLL_REDIS;
	case BUS_START_GO:
		break;
	}
	bus_pull(bus, sub, items, LONGPOLL_MAX_ITEMS, LONGPOLL_MAX_BYTES, true,
		 got);
	if (got->end == SUB_END_DEAD || got->end == SUB_END_SLOW)
		return LONGPOLL_GONE;
	if (got->parked)
		return LONGPOLL_HOLD;
	if (got->end == SUB_END_ADMIN)
		return LONGPOLL_ADMIN;
	/* the timeout passed: with nothing pulled, the reply's next needs
	 * every channel's epoch, which Redis may never have given */
	if (got->count == 0 && !bus_start(bus, sub, 0, nch, cursor))
		return LONGPOLL_REDIS;
	return LONGPOLL_REPLY;
}
