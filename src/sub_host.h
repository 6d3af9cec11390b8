/* sub_host.h: which library owns a subscriber's socket, as the bus sees
 * it. A transport (transport.h) is a technique: what is sent and how it
 * is paced. Its host is the library that holds the connection, and only
 * the host knows how a subscriber with nothing to send waits, how it is
 * woken and how it is cut. One const ops table per library: host_mhd
 * (http_sub.c) and host_lws (host_lws.c). The bus calls these and nothing
 * else of a library, so moving a technique from one library to the other
 * changes the host its subscribers carry, not the bus. */
#ifndef ANYPUSH_SUB_HOST_H
#define ANYPUSH_SUB_HOST_H

struct subscriber;

struct sub_host {
	const char *name; /* the library, for logs */
	/* The subscriber has nothing to send: stop asking (suspend). Called
	 * under the bus lock, so a wake cannot slip in between. */
	void (*park)(struct subscriber *sub);
	/* A parked subscriber has news, a due timer or must end. Under the bus
	 * lock, from any thread: must not block or write to a socket. */
	void (*wake)(struct subscriber *sub);
	/* End a subscriber that is not parked, promptly, e.g. one that stopped
	 * reading (shutdown(2) its socket, or ask the owning thread). Under
	 * the bus lock; must not block. */
	void (*cut)(struct subscriber *sub);
	/* Optional: finish, with no lock held, what wake and cut left to do
	 * on this thread (rousing another thread). The bus calls it after
	 * dropping its lock, on the thread that called wake or cut, so that
	 * the woken thread does not find the bus still locked. */
	void (*flush)(void);
};

/* Subscribers held on libmicrohttpd connections (http_sub.h). */
extern const struct sub_host host_mhd;
/* Subscribers held on the libwebsockets loops (host_lws.h). */
extern const struct sub_host host_lws;

#endif
