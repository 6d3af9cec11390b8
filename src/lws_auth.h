/* lws_auth.h: auth.c's credential of a libwebsockets request (SSE and
 * WebSocket): Authorization, ?token=, the anypush_token cookie. */
#ifndef ANYPUSH_LWS_AUTH_H
#define ANYPUSH_LWS_AUTH_H

#include "auth.h"

struct lws;

/* auth_check on wsi's head, while lws still has it. */
int lws_auth_check(struct lws *wsi, struct auth_grant *g,
		   struct auth_error *err);

/* ?name= (with its '=') into out, or NULL when absent or longer than
 * outlen. Unlike lws_get_urlarg_by_name with a small buffer, an argument
 * before it that is long (a token) does not hide it. */
const char *lws_auth_urlarg(struct lws *wsi, const char *name, char *out,
			    size_t outlen);

#endif
