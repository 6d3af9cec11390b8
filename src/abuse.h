/* abuse.h: rate limits per client IP and per client id (token buckets),
 * and whose X-Forwarded-For names the client (--trusted-proxies). The
 * state is one fixed table shared by every kind of bucket (each its own
 * key namespace): a new key takes the slot of the one seen longest ago
 * in its set, so memory stays bounded whatever the number of IPs. One
 * process-wide table; any thread. Connections per IP are ipconns.h's:
 * they need an exact count. */
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
/* Rates per second, each a bucket of that many refilled continuously;
 * 0: no limit. */
struct limits_rates {
	unsigned long publish_per_ip;     /* --publish-rate-per-ip */
	unsigned long publish_per_client; /* --publish-rate-per-client */
	unsigned long new_channels_per_ip; /* --new-channels-per-ip */
};

/* Start-up, before any thread: the rates and the trusted proxies. */
void limits_configure(const struct limits_rates *rates, const char *trusted);

/* The client's IP as text into ip (LIMITS_IP_MAX bytes): the peer's,
 * unless the peer is a trusted proxy and xff (X-Forwarded-For, may be
 * NULL) names one; then the rightmost address in xff that is not a
 * trusted proxy (the left ones are the client's to forge). */
void limits_client_ip(const struct sockaddr *peer, const char *xff,
		      char ip[LIMITS_IP_MAX]);
/* Which limit refused (limits_publish). */
enum limits_verdict {
	LIMITS_OK,
	LIMITS_IP,     /* --publish-rate-per-ip */
	LIMITS_CLIENT, /* --publish-rate-per-client */
};

/* Take one publish from ip's bucket at now_ms: true, or false with the
 * whole seconds after which one is there again in *retry_s. */
bool limits_publish(const char *ip, uint64_t now_ms, unsigned *retry_s);
/* One publish from ip's bucket and from client's (a client id; NULL or
 * "": none, only ip's counts) together: both are taken, or neither (the
 * one refused says which, *retry_s when). */
enum limits_verdict limits_publish_from(const char *ip, const char *client,
					uint64_t now_ms, unsigned *retry_s);
/* Take count new channels from ip's bucket (--new-channels-per-ip): true
 * when at least one token is there, which takes all count, the bucket
 * going into debt for the ones it lacks; else false with *retry_s, as
 * limits_publish. True when count is 0. */
bool limits_new_channels(const char *ip, size_t count, uint64_t now_ms,
			 unsigned *retry_s);
/* What a client refused for --new-channels-per-ip is told. */
#define LIMITS_CHANNELS_TEXT                                                \
	"this address creates channels faster than it may "                 \
	"(--new-channels-per-ip); retry after Retry-After"
/* Give back count new channels limits_new_channels took (the request was
 * refused for another reason). */
void limits_new_channels_refund(const char *ip, size_t count,
				uint64_t now_ms);
/* Whether a new channel is limited at all (--new-channels-per-ip): when
 * not, nobody needs to ask whether a channel exists. */
bool limits_new_channels_on(void);

#endif
