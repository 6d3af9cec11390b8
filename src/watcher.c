/* The epoll set carries subscriber ids, never pointers: an event can be
 * read just before its connection completes and is freed, and an id that
 * is no longer attached is simply not found by bus_kill. */
#include "watcher.h"

#include "bus.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define LOG_PREFIX "watcher"
#define TICK_MS 250

struct watcher {
	struct bus *bus;
	int ep;
	atomic_bool stop;
	pthread_t thread;
};

static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	struct epoll_event ev[64];
	uint64_t next_tick = bus_now_ms() + TICK_MS;

	while (!atomic_load(&w->stop)) {
		uint64_t now = bus_now_ms();
		int wait = now >= next_tick ? 0 : (int)(next_tick - now);
		int n = epoll_wait(w->ep, ev, 64, wait);

		for (int i = 0; i < n; i++) {
			log_debug("peer of subscriber %llu hung up",
				  (unsigned long long)ev[i].data.u64);
			metrics_add(&metrics.dead_peers, 1);
			bus_kill(w->bus, ev[i].data.u64, SUB_END_DEAD);
		}
		now = bus_now_ms();
		if (now >= next_tick) {
			bus_tick(w->bus, now);
			next_tick = now + TICK_MS;
		}
	}
	return NULL;
}

struct watcher *watcher_start(struct bus *bus)
{
	struct watcher *w = xcalloc(1, sizeof *w);

	w->bus = bus;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0 || pthread_create(&w->thread, NULL, watcher_main, w)) {
		log_error("cannot start the watcher thread");
		if (w->ep >= 0)
			close(w->ep);
		free(w);
		return NULL;
	}
	return w;
}

void watcher_stop(struct watcher *w)
{
	if (w == NULL)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	close(w->ep);
	free(w);
}

static int add(struct watcher *w, int fd, uint64_t sub_id, uint32_t events)
{
	struct epoll_event ev = { .events = events | EPOLLET,
				  .data.u64 = sub_id };

	return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
}

int watcher_add(struct watcher *w, int fd, uint64_t sub_id)
{
	return add(w, fd, sub_id, EPOLLRDHUP);
}

int watcher_add_quiet(struct watcher *w, int fd, uint64_t sub_id)
{
	return add(w, fd, sub_id, EPOLLRDHUP | EPOLLIN);
}

void watcher_remove(struct watcher *w, int fd)
{
	epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL);
}
