/* ipconns.h: open connections per client IP (--max-conns-per-ip). An
 * exact count per IP, taken once when the router hands a connection to a
 * library and given back once when that library closes it, whatever the
 * transport. The count is of the resolved client (abuse.h's
 * limits_client_ip, so behind a trusted proxy the real one). Any thread. */
#ifndef ANYPUSH_IPCONNS_H
#define ANYPUSH_IPCONNS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* One IP's count: the handle a counted connection holds. */
struct ipconn;

/* connections refused for --max-conns-per-ip (/metrics) */
extern atomic_ullong ipconns_refused;

/* Start-up, before any thread: connections per IP at most (0: no limit,
 * nothing counted). */
void ipconns_configure(unsigned long max);
/* Whether connections are counted (a limit is set). */
bool ipconns_on(void);

/* Taking and giving back */
/* One more connection of ip: its handle, given back once with
 * ipconns_give; NULL when ip holds the limit already (counted in
 * ipconns_refused) or when nothing is counted. */
struct ipconn *ipconns_take(const char *ip);
void ipconns_give(struct ipconn *c);

/* Passing a handle to libmicrohttpd, which takes its sockets on its own
 * thread: the router parks it under the socket's number before
 * MHD_add_connection, MHD's NOTIFY_STARTED claims it (NULL: none). A
 * handle still parked under a number being parked again belonged to a
 * socket MHD dropped unannounced, and is given back then. */
void ipconns_park(int fd, struct ipconn *c);
struct ipconn *ipconns_claim(int fd);

/* Monitoring: connections counted now, and IPs holding any. */
size_t ipconns_held(void);
size_t ipconns_ips(void);

#endif
