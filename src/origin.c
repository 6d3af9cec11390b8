/* The origin check: cross-site WebSocket hijacking and cross-site
 * publishes are refused here, before any transport sees the request, so
 * a page on another site cannot use a browser's ambient access to the
 * gateway (its network position, its cookies). The list is short, so it
 * is scanned as text on every check rather than parsed into a table. */
#include "origin.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *configured; /* NULL: none listed */

static bool is_http(const char *s, size_t len, size_t *scheme_len)
{
	if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
		*scheme_len = 7;
		return true;
	}
	if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
		*scheme_len = 8;
		return true;
	}
	return false;
}

/* scheme://host[:port], nothing after: how a browser serialises one */
static bool origin_valid(const char *s, size_t len)
{
	size_t sl;

	if (!is_http(s, len, &sl) || len == sl)
		return false;
	for (size_t i = sl; i < len; i++)
		if (strchr("/?#@ \t\\", s[i]) || (unsigned char)s[i] < 0x21 ||
		    (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* Calls fn on each comma-separated, blank-trimmed item (an empty list
 * has none; "a," has an empty second one); stops when it says true and
 * returns true then. */
static bool each_item(const char *list,
		      bool (*fn)(const char *s, size_t len, void *arg),
		      void *arg)
{
	const char *p = list && *list ? list : NULL;

	while (p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *s = p;

		while (len && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (fn(s, len, arg))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool item_invalid(const char *s, size_t len, void *arg)
{
	(void)arg;
	return !(len == 1 && s[0] == '*') && !origin_valid(s, len);
}

bool origin_list_valid(const char *list)
{
	return !each_item(list, item_invalid, NULL);
}

void origin_configure(const char *list)
{
	free(configured);
	configured = list && *list ? xstrdup(list) : NULL;
}

struct wanted {
	const char *s;
	size_t len;
};

static bool item_matches(const char *s, size_t len, void *arg)
{
	const struct wanted *w = arg;

	if (len == 1 && s[0] == '*')
		return true;
	return len == w->len && strncasecmp(s, w->s, len) == 0;
}

/* host:port without the scheme's default port */
static size_t strip_port(const char *s, size_t len, const char *port)
{
	size_t pl = strlen(port);

	if (len > pl && memcmp(s + len - pl, port, pl) == 0)
		return len - pl;
	return len;
}

static bool same_origin(const char *origin, size_t olen, const char *host,
			size_t hlen)
{
	size_t sl;
	const char *port;

	if (!origin_valid(origin, olen) || !is_http(origin, olen, &sl))
		return false;
	port = sl == 8 ? ":443" : ":80";
	origin += sl;
	olen = strip_port(origin, olen - sl, port);
	hlen = strip_port(host, hlen, port);
	return olen == hlen && olen && strncasecmp(origin, host, olen) == 0;
}

bool origin_allowed_by(const char *list, const char *origin, size_t olen,
		       const char *host, size_t hlen)
{
	struct wanted w = { origin, olen };

	/* not a browser, or a browser on the page's own origin (a GET
	 * there carries none) */
	if (origin == NULL)
		return true;
	if (host && same_origin(origin, olen, host, hlen))
		return true;
	return list && each_item(list, item_matches, &w);
}

bool origin_allowed(const char *origin, size_t olen, const char *host,
		    size_t hlen)
{
	return origin_allowed_by(configured, origin, olen, host, hlen);
}

/* The value of the first header line named name (with its colon), its
 * blanks trimmed; NULL when there is none. */
static const char *head_value(const char *head, size_t len, const char *name,
			      size_t *vlen)
{
	size_t nl = strlen(name);
	const char *p = memchr(head, '\n', len); /* past the request line */

	while (p && (size_t)(p + 1 - head) < len) {
		const char *line = p + 1;
		size_t left = len - (size_t)(line - head);
		const char *eol = memchr(line, '\n', left);
		size_t ll = eol ? (size_t)(eol - line) : left;

		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			return NULL; /* the end of the head */
		if (ll > nl && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl;
			size_t n = ll - nl;

			while (n && (*v == ' ' || *v == '\t')) {
				v++;
				n--;
			}
			while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			*vlen = n;
			return v;
		}
		p = eol;
	}
	return NULL;
}

bool origin_head_allowed(const char *head, size_t len)
{
	size_t olen = 0, hlen = 0;
	const char *origin = head_value(head, len, "Origin:", &olen);
	const char *host = head_value(head, len, "Host:", &hlen);

	return origin_allowed(origin, olen, host, hlen);
}
