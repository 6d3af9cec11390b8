/* Apart from http.c and publish.c so that the auth call sites there stay
 * one line each. */
#include "http_auth.h"

#include <string.h>

#include "auth.h"
#include "http.h"
#include "http_reply.h"
#include "validate.h"

#include <microhttpd.h>
#include <stdio.h>

static int grant_of(struct http_request *req, struct auth_grant *g,
		    struct auth_error *err)
{
	return auth_check(http_header(req, "Authorization"),
			  http_arg(req, "token"), http_header(req, "Cookie"), g,
			  err);
}

static int reply(struct http_request *req, const struct auth_error *err)
{
	return http_reply_error(req->conn, err->status, err->code,
				err->message);
}

int http_auth_subscribe(struct http_request *req)
{
	struct auth_grant g;
	struct auth_error err;
	int r = -1;

	if (auth_open())
		return -1;
	if (grant_of(req, &g, &err) < 0 ||
	    auth_subscribe_check(&g, &req->channels,
				 req->client_given ? req->client : NULL,
				 &err) < 0) {
		r = reply(req, &err);
		goto out;
	}
	if (g.sub[0] && !req->client_given)
		snprintf(req->client, sizeof req->client, "%s", g.sub);
	req->token_exp = g.exp;
out:
	auth_grant_free(&g);
	return r;
}

int http_auth_read(struct http_request *req, const char *channel, size_t len)
{
	struct channel_list one = { .count = 1,
				    .name = { channel },
				    .len = { len } };
	struct auth_grant g;
	struct auth_error err;
	int r = -1;

	if (auth_open())
		return -1;
	if (grant_of(req, &g, &err) < 0 ||
	    auth_subscribe_check(&g, &one, NULL, &err) < 0)
		r = reply(req, &err);
	auth_grant_free(&g);
	return r;
}

int http_auth_publish(struct http_request *req, const char *channel,
		      const char *from, char sub[AUTH_SUB_MAX + 1])
{
	struct auth_grant g;
	struct auth_error err;
	int r = -1;

	sub[0] = '\0';
	if (auth_open())
		return -1;
	if (grant_of(req, &g, &err) < 0 ||
	    auth_publish_check(&g, channel, from, &err) < 0)
		r = reply(req, &err);
	else
		memcpy(sub, g.sub, sizeof g.sub);
	auth_grant_free(&g);
	return r;
}

int http_auth_admin(struct http_request *req)
{
	struct auth_grant g;
	struct auth_error err = { 401, "unauthorized",
				  "this needs Authorization: apikey KEY" };
	int r = -1;

	if (grant_of(req, &g, &err) < 0 || !g.admin)
		r = reply(req, &err);
	auth_grant_free(&g);
	return r;
}
