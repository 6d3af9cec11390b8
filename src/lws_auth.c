/* A token is at most AUTH_TOKEN_MAX bytes: a header or argument that does
 * not fit the buffers is not read at all, and the request goes on with no
 * credential (refused unless the channel is public). */
#include "lws_auth.h"

#include "xalloc.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_MAX (AUTH_TOKEN_MAX + 64)

const char *lws_auth_urlarg(struct lws *wsi, const char *name, char *out,
			    size_t outlen)
{
	char *big = xmalloc(HEADER_MAX);
	const char *v = lws_get_urlarg_by_name(wsi, name, big, HEADER_MAX);

	if (v && strlen(v) < outlen)
		v = memcpy(out, v, strlen(v) + 1);
	else
		v = NULL;
	free(big);
	return v;
}

int lws_auth_check(struct lws *wsi, struct auth_grant *g,
		   struct auth_error *err)
{
	char *authz = xmalloc(HEADER_MAX), *tok = xmalloc(HEADER_MAX),
	     *cookie = xmalloc(HEADER_MAX);
	const char *a = NULL, *t, *c = NULL;
	int r;

	if (lws_hdr_copy(wsi, authz, HEADER_MAX, WSI_TOKEN_HTTP_AUTHORIZATION) >
	    0)
		a = authz;
	t = lws_get_urlarg_by_name(wsi, "token=", tok, HEADER_MAX);
	if (lws_hdr_copy(wsi, cookie, HEADER_MAX, WSI_TOKEN_HTTP_COOKIE) > 0)
		c = cookie;
	r = auth_check(a, t, c, g, err);
	free(authz);
	free(tok);
	free(cookie);
	return r;
}
