/* router.h: the one listening port. Accepts, peeks at each request head
 * and hands the socket once to libmicrohttpd or libwebsockets. */
#ifndef ANYPUSH_ROUTER_H
#define ANYPUSH_ROUTER_H

struct router;
struct server;

/* Bind, listen and start the router thread; NULL on failure. Writes the
 * bound port to --port-file once listening. */
struct router *router_start(struct server *srv);
/* Stop accepting, close pending sockets, join the thread. */
void router_stop(struct router *r);
/* Any thread: the socket of a keep-alive connection whose request lws
 * has answered (a long poll), to route its next request as a new
 * connection's first; closed if the router is not running. */
void router_take_back(int fd);

#endif
