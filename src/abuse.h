/* abuse.h: abuse limits per client IP (token buckets), and whose
 * X-Forwarded-For names the client (--trusted-proxies). The per-IP state
 * is a fixed table: a new IP takes the slot of the one seen longest ago
 * in its set, so memory stays bounded whatever the number of IPs. One
 * process-wide table; any thread. */
#ifndef ANYPUSH_ABUSE_H
#define ANYPUSH_ABUSE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LIMITS_IP_MAX 46 /* INET6_ADDRSTRLEN */

/* IPs whose state gave its slot to a new IP (/metrics) */
extern atomic_ullong abuse_ips_evicted;

/* Whether list ("": none; CIDRs or addresses, comma-separated, such as
 * 127.0.0.1,10.0.0.0/8,::1) is well formed; changes nothing. */
bool limits_cidrs_valid(const char *list);
/* Start-up, before any thread: publishes per second per IP (0: no limit)
 * and the trusted proxies. */
void limits_configure(unsigned long publish_rate, const char *trusted);

/* The client's IP as text into ip (LIMITS_IP_MAX bytes): the peer's,
 * unless the peer is a trusted proxy and xff (X-Forwarded-For, may be
 * NULL) names one; then the rightmost address in xff that is not a
 * trusted proxy (the left ones are the client's to forge). */
void limits_client_ip(const struct sockaddr *peer, const char *xff,
		      char ip[LIMITS_IP_MAX]);
/* Take one publish from ip's bucket at now_ms: true, or false with the
 * whole seconds after which one is there again in *retry_s. */
bool limits_publish(const char *ip, uint64_t now_ms, unsigned *retry_s);

#endif
