/* The checks of a subscribe request, in the order docs/protocol.md
 * documents, and the percent-decoding libmicrohttpd is told to use. Kept
 * apart from http.c, which only gathers the arguments and headers and
 * turns a refusal into a JSON reply, so that a fuzzer reaches them with
 * no connection at all. */
#include "http_route.h"

#include "clientid.h"
#include "cursor.h"
#include "http.h"
#include "transport.h"
#include "validate.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int refuse(struct http_route_error *err, unsigned status,
		  const char *code, const char *message)
{
	err->status = status;
	err->code = code;
	err->message = message;
	return -1;
}

size_t http_route_unescape(char *s)
{
	char *out = s;

	for (char *p = s; *p; p++) {
		unsigned v;

		if (p[0] == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2]) &&
		    sscanf(p + 1, "%2x", &v) == 1) {
			*out++ = v ? (char)v : 0x7F;
			p += 2;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return (size_t)(out - s);
}

static bool has_token(const char *value, const char *token)
{
	return value && strcasestr(value, token) != NULL;
}

/* ?transport=, else the Upgrade and Accept headers, else poll. */
static int pick_transport(const struct http_route_sub *in,
			  const struct transport **out,
			  struct http_route_error *err)
{
	if (in->transport) {
		*out = transport_by_name(in->transport, strlen(in->transport));
		if (*out == NULL)
			return refuse(err, 400, "bad_transport",
				      "transport must be poll, longpoll, sse "
				      "or ws");
	} else if (has_token(in->upgrade, "websocket")) {
		*out = &transport_ws;
	} else if (has_token(in->accept, "text/event-stream")) {
		*out = &transport_sse;
	} else {
		*out = &transport_poll;
	}
	if (!transport_enabled(*out))
		return refuse(err, 404, "transport_disabled",
			      "this transport is disabled here");
	return 0;
}

/* Last-Event-ID (wins unless empty), else ?since=; absent: the tail. */
static int read_cursor(const struct http_route_sub *in,
		       struct http_request *req)
{
	const char *s = in->last_event_id;

	if (s == NULL || s[0] == '\0')
		s = in->since;
	if (s == NULL)
		return 0;
	/* only as many as there are channels: a held request keeps it */
	req->since = xcalloc(req->channels.count, sizeof *req->since);
	if (cursor_parse(s, strlen(s), req->channels.count, req->since) < 0)
		return -1;
	req->has_since = true;
	return 0;
}

static int read_client(const struct http_route_sub *in,
		       struct http_request *req)
{
	if (in->client == NULL) {
		clientid_new(req->client);
		return 0;
	}
	if (!client_id_valid(in->client, strlen(in->client)))
		return -1;
	snprintf(req->client, sizeof req->client, "%s", in->client);
	req->client_given = true;
	return 0;
}

int http_route_subscribe(const struct http_route_sub *in,
			 struct http_request *req, struct http_route_error *err)
{
	const struct transport *t = NULL;

	err->transport = NULL;
	if (pick_transport(in, &t, err) < 0)
		return -1;
	err->transport = t;
	req->path = xstrdup(in->list);
	if (channel_list_parse(req->path, strlen(req->path), &req->channels) <
	    0)
		return refuse(err, 400, "bad_channel",
			      "channel names match [A-Za-z0-9_.:~-]{1,200}, "
			      "at most 32 distinct ones per request");
	if (read_cursor(in, req) < 0)
		return refuse(err, 400, "bad_cursor",
			      "since/Last-Event-ID must be one cursor per "
			      "channel, comma-separated, each ID or EPOCH:ID");
	if (read_client(in, req) < 0)
		return refuse(err, 400, "bad_client",
			      "client ids match [A-Za-z0-9_-]{1,64}");
	req->presence = in->presence && (strcmp(in->presence, "1") == 0 ||
					 strcmp(in->presence, "true") == 0);
	req->transport = t;
	return 0;
}
