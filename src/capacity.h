/* capacity.h: the budgets of --max-connections (every connection handed
 * to libmicrohttpd or libwebsockets) and --max-streams (held SSE streams,
 * long polls and WebSockets, a subset of the connections). Streams stop
 * below the connection limit, so publishing and short requests always
 * find room. Lock-free; any thread. */
#ifndef ANYPUSH_CAPACITY_H
#define ANYPUSH_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>

struct capacity;

/* Life cycle */
struct capacity *capacity_new(size_t max_connections, size_t max_streams);
void capacity_free(struct capacity *c);

/* Taking and giving back: a take that returns true is given back once */
/* A connection slot; false when all are in use. */
bool capacity_take_connection(struct capacity *c);
void capacity_give_connection(struct capacity *c);
/* A held-stream slot; false when all are in use. */
bool capacity_take_stream(struct capacity *c);
void capacity_give_stream(struct capacity *c);

/* Monitoring */
size_t capacity_connections(const struct capacity *c);
size_t capacity_streams(const struct capacity *c);

#endif
