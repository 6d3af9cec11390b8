/* lws_held.h: what the requests held on the libwebsockets loops (streams
 * in lws_stream.c, long polls in lws_longpoll.c) read from their head the
 * same way, as lws decoded it. Loop thread, while lws still has the
 * head. */
#ifndef ANYPUSH_LWS_HELD_H
#define ANYPUSH_LWS_HELD_H

#include <stdbool.h>

struct channel_list;
struct lws;

/* Whether lws's callback `reason` has work for a held request (its
 * HTTP, WRITEABLE, and the first of a close's three callbacks, while it
 * is still `opened`): only those read the thread clock, a system call,
 * for the cost counters; lws makes many others that it lets pass. */
bool lws_held_is_work(int reason, bool opened);
/* The channel list of /channels/{list}: *path gets a copy of it (the
 * caller frees it; NULL when the URI is not one), chs its parse, whose
 * names point into *path. 0, or -1 for a URI the router should not
 * have sent. */
int lws_held_path(struct lws *wsi, char **path, struct channel_list *chs);
/* The value of ?name= (name with its '=') as lws decoded it, or NULL
 * (also when longer than buf); a long argument before it (a token)
 * does not hide it (lws_auth_urlarg). */
const char *lws_held_arg(struct lws *wsi, const char *name, char *buf, int len);
/* Whether an argument's value is true: "1" or "true". */
bool lws_held_flag(const char *v);

#endif
