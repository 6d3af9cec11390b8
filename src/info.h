/* info.h: GET /channels/{ch}/info, a channel's head, history and
 * subscriber counts: from the bus, or with --redis from Redis (every
 * node's counts summed), answered once the engine has them. */
#ifndef ANYPUSH_INFO_H
#define ANYPUSH_INFO_H

#include <stddef.h>

struct http_request;

/* The info of the channel name[0..len); MHD_YES/NO. */
int info_serve(struct http_request *req, const char *name, size_t len);

#endif
