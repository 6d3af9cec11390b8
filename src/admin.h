/* admin.h: the admin API (API key only, docs/security.md): list the
 * channels with their counts, delete a channel, disconnect a client id. */
#ifndef ANYPUSH_ADMIN_H
#define ANYPUSH_ADMIN_H

struct http_request;

#define ADMIN_PREFIX "/admin/"

/* A request under ADMIN_PREFIX; the MHD result. */
int admin_serve(struct http_request *req, const char *url, const char *method);

#endif
