/* watcher.h: the housekeeping thread. It ticks the bus (history age,
 * heartbeats, long-poll deadlines, idle channels) and watches the sockets
 * of suspended HTTP connections so a peer that leaves is noticed at once,
 * not at the next heartbeat. */
#ifndef ANYPUSH_WATCHER_H
#define ANYPUSH_WATCHER_H

#include <stdint.h>

struct bus;
struct watcher;

struct watcher *watcher_start(struct bus *bus);
void watcher_stop(struct watcher *w);
/* Watch fd for its peer hanging up; report it as bus_kill(sub_id).
 * Any thread. 0 or -1. */
int watcher_add(struct watcher *w, int fd, uint64_t sub_id);
/* The same for a client that must send nothing more (an SSE stream on
 * libwebsockets, which reads nothing then): bytes arriving end it too. */
int watcher_add_quiet(struct watcher *w, int fd, uint64_t sub_id);
/* Stop watching fd; must happen before the fd is closed. Any thread. */
void watcher_remove(struct watcher *w, int fd);

#endif
