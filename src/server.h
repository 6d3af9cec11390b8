/* server.h: the running gateway: its parts and their start/stop order. */
#ifndef ANYPUSH_SERVER_H
#define ANYPUSH_SERVER_H

#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>

struct bus;
struct capacity;
struct MHD_Daemon;
struct ws;
struct router;
struct watcher;
struct redis_engine;

struct server {
	const struct config *cfg;
	struct bus *bus;
	struct capacity *cap; /* --max-connections, --max-streams */
	struct MHD_Daemon *mhd;
	struct ws *ws;
	struct watcher *watcher;
	struct router *router;
	struct redis_engine *redis; /* --redis; NULL: the embedded bus */
	atomic_bool failed; /* set by server_fail, from any thread */
	/* client connections libmicrohttpd holds now (its workers count them,
	 * the router reads them: it pokes MHD only while there are some) */
	atomic_size_t http_conns;
};

/* Start every part; 0 or -1 (already-started parts are stopped). */
int server_start(struct server *srv, const struct config *cfg);
/* Push the live options of srv->cfg (config_update changed them) to the
 * parts that copied them: log level and format, the bus's limits. Main
 * thread. */
void server_reconfigure(struct server *srv);
/* Orderly stop: stop accepting, end streams, stop the libraries. */
void server_stop(struct server *srv);
/* A part cannot go on (any thread): mark the server failed and raise
 * SIGTERM, which main takes from sigwait; it then stops in order and
 * exits with status 1. */
void server_fail(struct server *srv);
/* Whether a part called server_fail. */
bool server_failed(struct server *srv);

#endif
