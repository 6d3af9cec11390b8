/* server.h: the running gateway: its parts and their start/stop order. */
#ifndef ANYPUSH_SERVER_H
#define ANYPUSH_SERVER_H

#include "config.h"

struct bus;
struct capacity;
struct MHD_Daemon;
struct ws;
struct router;
struct watcher;

struct server {
	const struct config *cfg;
	struct bus *bus;
	struct capacity *cap; /* --max-connections, --max-streams */
	struct MHD_Daemon *mhd;
	struct ws *ws;
	struct watcher *watcher;
	struct router *router;
};

/* Start every part; 0 or -1 (already-started parts are stopped). */
int server_start(struct server *srv, const struct config *cfg);
/* Orderly stop: stop accepting, end streams, stop the libraries. */
void server_stop(struct server *srv);

#endif
