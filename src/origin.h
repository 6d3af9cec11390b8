/* origin.h: which web pages may use the gateway. A browser names the
 * page that makes a request in its Origin header; --allow-origin lists
 * the other origins served, and a page on the gateway's own origin is
 * always served. Pure but for origin_configure's copy of the list. */
#ifndef ANYPUSH_ORIGIN_H
#define ANYPUSH_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Whether list ("": none; "*"; or comma-separated origins such as
 * https://app.example.com:8443) is well formed; changes nothing. */
bool origin_list_valid(const char *list);
/* Keep a copy of list as the one every later check uses (start-up,
 * before any thread). */
void origin_configure(const char *list);

/* Whether a request with this Origin (NULL: none) and this Host (NULL:
 * none) may be served under list. Same origin: the Origin's host and
 * port equal Host's, whatever its scheme (http or https), since behind a
 * TLS proxy the gateway cannot see the page's scheme. */
bool origin_allowed_by(const char *list, const char *origin, size_t olen,
		       const char *host, size_t hlen);
/* The same under the configured list. */
bool origin_allowed(const char *origin, size_t olen, const char *host,
		    size_t hlen);
/* The same for a raw request head of len bytes (the router's peek),
 * taking its first Origin and Host header lines. */
bool origin_head_allowed(const char *head, size_t len);

#endif
