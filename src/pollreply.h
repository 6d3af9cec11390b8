/* pollreply.h: the {"messages":[...],"next":...} reply of poll and
 * long poll, built without copying message bodies. */
#ifndef ANYPUSH_POLLREPLY_H
#define ANYPUSH_POLLREPLY_H

#include "bus.h"

struct http_sub;

/* Queue the reply for these items (their references move into the
 * response and are dropped when MHD is done with it). MHD_YES/NO. */
int pollreply_send(struct http_sub *hs, struct bus_item *items, size_t count,
		   bool more);

#endif
