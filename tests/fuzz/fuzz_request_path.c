/* libFuzzer target: a subscribe request's text, from the URL to the
 * transport: percent-decoding (http_route_unescape, which libmicrohttpd
 * runs on the path and on each query argument), the channel list, the
 * cursor from Last-Event-ID or ?since=, the client id, ?presence= and the
 * transport from ?transport=, Upgrade or Accept, with any set of
 * transports enabled; then http_route_subscribe, as http.c calls it.
 *
 * The input is lines: flags (one byte), the URL after /channels/ (path
 * and query), then the Upgrade, Accept and Last-Event-ID headers (each
 * absent unless its flag is set). Every decision is compared with an
 * oracle written here from the documentation alone (docs/protocol.md:
 * channel names [A-Za-z0-9_.:~-]{1,200} but not "." or "..", at most 32
 * distinct; cursors ID or EPOCH:ID, one per channel; client ids
 * [A-Za-z0-9_-]{1,64}; the checks in the order transport, channels,
 * cursor, client): an accepted request has exactly the oracle's
 * channels, cursors, client and transport, and a refused one the
 * oracle's first error, with the status of the errors table. */
#include "http.h"
#include "http_route.h"
#include "transport.h"
#include "validate.h"
#include "wellformed.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHO "fuzz_request_path"
#define ARGS_MAX 32


struct query {
	size_t n;
	char *key[ARGS_MAX];
	char *value[ARGS_MAX]; /* NULL: "key" without '=' */
};

/* ---- the oracle ---- */

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %XX is the byte XX, except %00, which is 0x7F; anything else as is. */
static size_t oracle_unescape(const char *s, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hex(s[i + 1]) >= 0 &&
		    hex(s[i + 2]) >= 0) {
			int v = hex(s[i + 1]) * 16 + hex(s[i + 2]);

			out[n++] = v ? (char)v : 0x7F;
			i += 2;
		} else {
			out[n++] = s[i];
		}
	}
	return n;
}

static bool name_char(char c, bool tilde_dot_colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       (tilde_dot_colon && (c == '.' || c == ':' || c == '~'));
}

static bool oracle_channel(const char *s, size_t len)
{
	if (len == 0 || len > 200 || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i], true))
			return false;
	return true;
}

static bool oracle_client(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i], false))
			return false;
	return true;
}

/* The channels of the list, or -1. */
static int oracle_channels(const char *list, const char **name, size_t *len)
{
	int n = 0;

	for (const char *p = list;; p++) {
		size_t l = strcspn(p, ",");

		if (n == 32 || !oracle_channel(p, l))
			return -1;
		for (int k = 0; k < n; k++)
			if (len[k] == l && memcmp(name[k], p, l) == 0)
				return -1;
		name[n] = p;
		len[n++] = l;
		p += l;
		if (*p == '\0')
			return n;
	}
}

/* Digits, in base b, of at most max characters, fitting 64 bits. */
static bool oracle_number(const char *s, size_t len, unsigned b, size_t max,
			  uint64_t *out)
{
	unsigned __int128 v = 0;

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
			b == 36 && s[i] >= 'a' && s[i] <= 'z' ?
						     s[i] - 'a' + 10 :
						     -1;

		if (d < 0)
			return false;
		v = v * b + (unsigned)d;
		if (v > UINT64_MAX)
			return false;
	}
	*out = (uint64_t)v;
	return true;
}

static bool oracle_cursors(const char *s, size_t count, struct cursor *out)
{
	size_t n = 0;

	for (const char *p = s;; p++) {
		size_t l = strcspn(p, ",");
		const char *colon = memchr(p, ':', l);

		if (n == count)
			return false;
		out[n].epoch = 0;
		if (colon) {
			if (!oracle_number(p, (size_t)(colon - p), 36, 13,
					   &out[n].epoch) ||
			    out[n].epoch == 0 ||
			    !oracle_number(colon + 1,
					   l - (size_t)(colon - p) - 1, 10, 20,
					   &out[n].id))
				return false;
		} else if (!oracle_number(p, l, 10, 20, &out[n].id)) {
			return false;
		}
		n++;
		p += l;
		if (*p == '\0')
			return n == count;
	}
}

/* ---- the request, as libmicrohttpd hands it over ---- */

static char *take_line(struct input *in)
{
	const uint8_t *nl = memchr(in->p, '\n', in->left);
	size_t len = nl ? (size_t)(nl - in->p) : in->left;
	char *s = malloc(len + 1);

	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len + (nl != NULL);
	in->left -= len + (nl != NULL);
	return s;
}

/* Decode s in place and compare with the oracle. */
static void unescape(char *s)
{
	size_t len = strlen(s), n;
	char *want = malloc(len + 1);
	size_t wn = oracle_unescape(s, len, want);

	n = http_route_unescape(s);
	if (n != wn || memcmp(s, want, n) != 0 || s[n] != '\0' ||
	    strlen(s) != n)
		wf_fail(WHO, "percent-decoding that is not the oracle's", s, n);
	free(want);
}

/* key=value&...: '+' is a space, then each side is percent-decoded. */
static void parse_query(char *q, struct query *out)
{
	out->n = 0;
	for (char *p = q; *p && out->n < ARGS_MAX;) {
		size_t l = strcspn(p, "&");
		char *eq, *end = p + l;
		bool last = *end == '\0';

		*end = '\0';
		for (char *c = p; *c; c++)
			if (*c == '+')
				*c = ' ';
		eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		unescape(p);
		if (eq)
			unescape(eq + 1);
		out->key[out->n] = p;
		out->value[out->n++] = eq ? eq + 1 : NULL;
		if (last)
			break;
		p = end + 1;
	}
}

static const char *arg(const struct query *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->key[i], key) == 0)
			return q->value[i];
	return NULL;
}

static const struct transport *oracle_transport(const struct http_route_sub *in)
{
	static const struct transport *const named[] = { &transport_poll,
							 &transport_longpoll,
							 &transport_sse,
							 &transport_ws };

	if (in->transport) {
		for (size_t i = 0; i < 4; i++)
			if (strcmp(in->transport, named[i]->name) == 0)
				return named[i];
		return NULL;
	}
	if (in->upgrade && strcasestr(in->upgrade, "websocket"))
		return &transport_ws;
	if (in->accept && strcasestr(in->accept, "text/event-stream"))
		return &transport_sse;
	return &transport_poll;
}

/* The status docs/protocol.md gives each code. */
static unsigned status_of(const char *code)
{
	if (strcmp(code, "transport_disabled") == 0)
		return 404;
	if (strcmp(code, "bad_transport") == 0 ||
	    strcmp(code, "bad_channel") == 0 ||
	    strcmp(code, "bad_cursor") == 0 || strcmp(code, "bad_client") == 0)
		return 400;
	return 0;
}

/* What the oracle says of the request: NULL, or the first error code. */
static const char *judge(const struct http_route_sub *in, bool enabled[4],
			 const struct transport **t, const char **name,
			 size_t *len, int *nch, struct cursor *since,
			 bool *has_since)
{
	const char *c = in->last_event_id && in->last_event_id[0] ?
				in->last_event_id :
				in->since;

	*t = oracle_transport(in);
	if (*t == NULL)
		return "bad_transport";
	if (!enabled[(*t)->id])
		return "transport_disabled";
	*nch = oracle_channels(in->list, name, len);
	if (*nch < 0)
		return "bad_channel";
	*has_since = c != NULL;
	if (c && !oracle_cursors(c, (size_t)*nch, since))
		return "bad_cursor";
	if (in->client && !oracle_client(in->client, strlen(in->client)))
		return "bad_client";
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "poll", "longpoll", "sse", "ws" };
	struct input in = { data, size };
	unsigned flags = in_byte(&in);
	char *url = take_line(&in), *upgrade = take_line(&in),
	     *accept = take_line(&in), *lei = take_line(&in), *q, list[64];
	struct query query;
	struct http_route_sub sub = { 0 };
	struct http_route_error err = { 0 };
	struct http_request *req = calloc(1, sizeof *req);
	bool enabled[4] = { false }, has_since = false;
	const struct transport *want_t;
	const char *want, *name[33];
	size_t len[33], at = 0;
	struct cursor since[CHANNELS_PER_SUBSCRIPTION_MAX];
	int nch = 0, r;

	/* the enabled transports: never none, as --transports refuses it */
	for (int i = 0; i < 4; i++) {
		enabled[i] = !(flags >> (4 + i) & 1);
		if (enabled[i])
			at += (size_t)sprintf(list + at, "%s%s", at ? "," : "",
					      names[i]);
	}
	if (at == 0) {
		enabled[0] = true;
		strcpy(list, "poll");
	}
	if (transport_enable_only(list) != 0)
		wf_fail(WHO, "a transport list refused", list, strlen(list));
	/* the path, decoded as a whole; the query, argument by argument */
	q = strchr(url, '?');
	if (q)
		*q++ = '\0';
	unescape(url);
	parse_query(q ? q : url + strlen(url), &query);
	sub.list = url;
	sub.transport = arg(&query, "transport");
	sub.since = arg(&query, "since");
	sub.client = arg(&query, "client");
	sub.presence = arg(&query, "presence");
	sub.upgrade = flags & 1 ? upgrade : NULL;
	sub.accept = flags & 2 ? accept : NULL;
	sub.last_event_id = flags & 4 ? lei : NULL;

	want = judge(&sub, enabled, &want_t, name, len, &nch, since,
		     &has_since);
	r = http_route_subscribe(&sub, req, &err);
	if ((r == 0) != (want == NULL))
		wf_fail(WHO, want ? want : "a request refused that is fine",
			url, strlen(url));
	if (r < 0) {
		if (strcmp(err.code, want) != 0 ||
		    err.status != status_of(err.code) ||
		    req->transport != NULL || err.message == NULL)
			wf_fail(WHO, "another error than the oracle's",
				err.code, strlen(err.code));
		goto out;
	}
	if (req->transport != want_t || req->channels.count != (size_t)nch)
		wf_fail(WHO, "another transport or channels", url, strlen(url));
	for (int k = 0; k < nch; k++) {
		if (req->channels.len[k] != len[k] ||
		    memcmp(req->channels.name[k], name[k], len[k]) != 0 ||
		    !channel_name_valid(req->channels.name[k], len[k]))
			wf_fail(WHO, "a channel that is not the oracle's", url,
				strlen(url));
	}
	if (req->has_since != has_since ||
	    (has_since &&
	     memcmp(req->since, since, (size_t)nch * sizeof since[0]) != 0))
		wf_fail(WHO, "a cursor that is not the oracle's", url,
			strlen(url));
	if (sub.client ?
		    strcmp(req->client, sub.client) != 0 || !req->client_given :
		    req->client_given ||
			    !client_id_valid(req->client, strlen(req->client)))
		wf_fail(WHO, "another client", req->client,
			strlen(req->client));
	if (req->presence !=
	    (sub.presence && (strcmp(sub.presence, "1") == 0 ||
			      strcmp(sub.presence, "true") == 0)))
		wf_fail(WHO, "another presence", url, strlen(url));
out:
	free(req->path);
	free(req->since);
	free(req);
	free(url);
	free(upgrade);
	free(accept);
	free(lei);
	return 0;
}
