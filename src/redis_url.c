/* Parsing --redis and choosing a channel's shard. Strict, like every
 * parser of ours: anything not understood is refused with a reason, never
 * repaired, because a typo here would quietly split one gateway in two. */
#include "redis_url.h"

#include "siphash.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PORT 6379
#define DB_MAX 15 /* redis.conf's "databases 16" */

/* Fixed on purpose: every node must agree on a channel's shard, so this
 * cannot be the per-process random key the bus uses for its tables.
 * Shard choice is not a hash table under a lock: names that collide only
 * load one Redis, which they could do anyway by publishing to it. */
static const struct siphash_key shard_key = { 0x616e797075736821ULL,
					      0x7265646973736864ULL };

static int fail(char *why, size_t why_len, const char *what, const char *url,
		size_t len)
{
	snprintf(why, why_len, "--redis: %s in \"%.*s\"", what,
		 (int)(len > 80 ? 80 : len), url);
	return -1;
}

/* A decimal number in [min, max] that is all of s[0..len). */
static int number(const char *s, size_t len, unsigned min, unsigned max,
		  unsigned *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int parse_tcp(const char *url, size_t len, const char *s, size_t n,
		     struct redis_target *out, char *why, size_t why_len)
{
	size_t h = 0, p;

	while (h < n && host_char(s[h]))
		h++;
	if (h == 0 || h > REDIS_HOST_MAX)
		return fail(why, why_len, "no host name (IPv6: not supported)",
			    url, len);
	memcpy(out->host, s, h);
	out->host[h] = '\0';
	out->port = DEFAULT_PORT;
	p = h;
	if (p < n && s[p] == ':') {
		size_t q = ++p;

		while (q < n && s[q] != '/')
			q++;
		if (number(s + p, q - p, 1, 65535, &out->port) < 0)
			return fail(why, why_len, "a bad port", url, len);
		p = q;
	}
	if (p < n && s[p] == '/') {
		p++;
		if (p < n && number(s + p, n - p, 0, DB_MAX, &out->db) < 0)
			return fail(why, why_len, "a bad database number", url,
				    len);
		p = n;
	}
	if (p != n)
		return fail(why, why_len, "unexpected characters", url, len);
	return 0;
}

static int parse_unix(const char *url, size_t len, const char *s, size_t n,
		      struct redis_target *out, char *why, size_t why_len)
{
	const char *q = memchr(s, '?', n);
	size_t path_len = q ? (size_t)(q - s) : n;

	if (path_len == 0 || s[0] != '/')
		return fail(why, why_len,
			    "a unix socket needs an absolute path", url, len);
	if (path_len > REDIS_PATH_MAX)
		return fail(why, why_len, "the socket path is too long", url,
			    len);
	if (memchr(s, '\0', path_len) || memchr(s, ',', path_len))
		return fail(why, why_len, "a bad socket path", url, len);
	memcpy(out->path, s, path_len);
	out->path[path_len] = '\0';
	if (q && (n - path_len < 4 || memcmp(q, "?db=", 4) != 0 ||
		  number(q + 4, n - path_len - 4, 0, DB_MAX, &out->db) < 0))
		return fail(why, why_len, "a bad ?db=N", url, len);
	return 0;
}

int redis_url_parse(const char *url, size_t len, struct redis_target *out,
		    char *why, size_t why_len)
{
	static const char tcp[] = "redis://", unix_[] = "unix:";

	memset(out, 0, sizeof *out);
	if (len > sizeof tcp - 1 && memcmp(url, tcp, sizeof tcp - 1) == 0)
		return parse_tcp(url, len, url + sizeof tcp - 1,
				 len - (sizeof tcp - 1), out, why, why_len);
	if (len > sizeof unix_ - 1 && memcmp(url, unix_, sizeof unix_ - 1) == 0)
		return parse_unix(url, len, url + sizeof unix_ - 1,
				  len - (sizeof unix_ - 1), out, why, why_len);
	return fail(why, why_len,
		    "expected redis://host:port[/db] or "
		    "unix:/path",
		    url, len);
}

static bool same_target(const struct redis_target *a,
			const struct redis_target *b)
{
	return strcmp(a->host, b->host) == 0 && strcmp(a->path, b->path) == 0 &&
	       a->port == b->port && a->db == b->db;
}

int redis_url_list_parse(const char *list, struct redis_target *out, char *why,
			 size_t why_len)
{
	const char *s = list;
	int n = 0;

	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);

		if (n == REDIS_SHARDS_MAX) {
			snprintf(why, why_len, "--redis: more than %d URLs",
				 REDIS_SHARDS_MAX);
			return -1;
		}
		if (redis_url_parse(s, len, &out[n], why, why_len) < 0)
			return -1;
		for (int i = 0; i < n; i++)
			if (same_target(&out[i], &out[n]))
				return fail(why, why_len, "a URL given twice",
					    s, len);
		n++;
		if (comma == NULL)
			return n;
		s = comma + 1;
	}
}

size_t redis_shard_of(const char *channel, size_t len, size_t nshards)
{
	if (nshards <= 1)
		return 0;
	return (size_t)(siphash13(&shard_key, channel, len) % nshards);
}
