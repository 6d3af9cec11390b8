/* The registry of transports. Enabled flags are set once at start-up,
 * before any thread that reads them exists. */
#include "transport.h"

#include <string.h>

const struct transport transport_poll = { "poll", TRANSPORT_POLL };
const struct transport transport_longpoll = { "longpoll", TRANSPORT_LONGPOLL };
const struct transport transport_sse = { "sse", TRANSPORT_SSE };
const struct transport transport_ws = { "ws", TRANSPORT_WS };

static const struct transport *const all[TRANSPORT_COUNT] = {
	[TRANSPORT_POLL] = &transport_poll,
	[TRANSPORT_LONGPOLL] = &transport_longpoll,
	[TRANSPORT_SSE] = &transport_sse,
	[TRANSPORT_WS] = &transport_ws,
};
static bool enabled[TRANSPORT_COUNT] = { true, true, true, true };

const struct transport *transport_by_name(const char *name, size_t len)
{
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		if (strlen(all[i]->name) == len &&
		    memcmp(all[i]->name, name, len) == 0)
			return all[i];
	return NULL;
}

const struct transport *transport_by_id(enum transport_id id)
{
	return all[id];
}

/* The comma-separated names into want[]; -1 on an unknown name or an
 * empty list. */
static int parse_list(const char *list, bool want[TRANSPORT_COUNT])
{
	const char *p = list;

	if (*p == '\0')
		return -1; /* a gateway with no transport serves nothing */
	if (strcmp(p, "all") == 0) {
		for (int i = 0; i < TRANSPORT_COUNT; i++)
			want[i] = true;
		return 0;
	}
	while (*p) {
		size_t len = strcspn(p, ",");
		const struct transport *t = transport_by_name(p, len);

		if (t == NULL)
			return -1;
		want[t->id] = true;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

int transport_list_valid(const char *list)
{
	bool want[TRANSPORT_COUNT] = { false };

	return parse_list(list, want);
}

int transport_enable_only(const char *list)
{
	bool want[TRANSPORT_COUNT] = { false };

	if (parse_list(list, want) < 0)
		return -1;
	memcpy(enabled, want, sizeof enabled);
	return 0;
}

bool transport_enabled(const struct transport *t)
{
	return enabled[t->id];
}
