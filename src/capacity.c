/* Each budget is one atomic count, taken with compare-and-swap so that
 * two threads can never both take the last slot. The router takes
 * connections; the libraries' threads give them back when they close
 * the socket. */
#include "capacity.h"

#include "xalloc.h"

#include <stdatomic.h>
#include <stdlib.h>

struct capacity {
	atomic_size_t connections, streams;
	size_t max_connections, max_streams;
};

struct capacity *capacity_new(size_t max_connections, size_t max_streams)
{
	struct capacity *c = xcalloc(1, sizeof *c);

	c->max_connections = max_connections;
	c->max_streams = max_streams;
	return c;
}

void capacity_free(struct capacity *c)
{
	free(c);
}

static bool take(atomic_size_t *n, size_t max)
{
	size_t now = atomic_load(n);

	do {
		if (now >= max)
			return false;
	} while (!atomic_compare_exchange_weak(n, &now, now + 1));
	return true;
}

bool capacity_take_connection(struct capacity *c)
{
	return take(&c->connections, c->max_connections);
}

void capacity_give_connection(struct capacity *c)
{
	atomic_fetch_sub(&c->connections, 1);
}

bool capacity_take_stream(struct capacity *c)
{
	return take(&c->streams, c->max_streams);
}

void capacity_give_stream(struct capacity *c)
{
	atomic_fetch_sub(&c->streams, 1);
}

size_t capacity_connections(const struct capacity *c)
{
	return atomic_load(&((struct capacity *)c)->connections);
}

size_t capacity_streams(const struct capacity *c)
{
	return atomic_load(&((struct capacity *)c)->streams);
}
