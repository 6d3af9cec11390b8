/* The router checked the raw head of every request it sent here; these
 * read it again as lws decoded it, so that the transports act on the
 * same text lws holds. */
#include "lws_held.h"

#include "lws_auth.h"
#include "validate.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

/* room for the URI copied out of lws's header table */
#define URI_MAX 8192

int lws_held_path(struct lws *wsi, char **path, struct channel_list *chs)
{
	static const char prefix[] = "/channels/";
	char *uri = xmalloc(URI_MAX);
	int r = -1;

	*path = NULL;
	if (lws_hdr_copy(wsi, uri, URI_MAX, WSI_TOKEN_GET_URI) <= 0 ||
	    strncmp(uri, prefix, sizeof prefix - 1) != 0)
		goto out;
	*path = xstrdup(uri + sizeof prefix - 1);
	r = channel_list_parse(*path, strlen(*path), chs) < 0 ? -1 : 0;
out:
	free(uri);
	return r;
}

const char *lws_held_arg(struct lws *wsi, const char *name, char *buf, int len)
{
	/* not lws_get_urlarg_by_name: it stops at the first argument
	 * longer than buf, so a long ?token= would hide what follows */
	return lws_auth_urlarg(wsi, name, buf, (size_t)len);
}

bool lws_held_flag(const char *v)
{
	return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
}

bool lws_held_is_work(int reason, bool opened)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return true;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_WSI_DESTROY:
		return opened; /* on_closed's work */
	default:
		return false;
	}
}
