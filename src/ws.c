/* The lws loops. Each loop is a libev loop on epoll, run by its own
 * thread, with its own lws context as a guest on it (a "foreign" loop).
 * lws 4.1.6 alone serves with poll(2), which walks every connection on
 * every wake; on epoll a wake costs the sockets that are ready, not the
 * sockets that are open.
 *
 * Wake-ups from other threads arrive as lws_cancel_service(), which lws
 * turns into one EVENT_WAIT_CANCELLED on that context's thread; wakes
 * coalesce, so that callback drains everything: sockets to adopt and
 * sessions on the ready list. A cancel is sent only when a list goes from
 * empty to non-empty, so a publish to 1,000 WebSocket subscribers costs
 * one eventfd write per loop, not 1,000. lws calls we make run inside
 * that callback, where lws re-arms its timers afterwards; stopping is an
 * ev_async of our own, after which nothing else runs on the loop. */
#include "ws.h"

#include "abuse.h"
#include "bus.h"
#include "capacity.h"
#include "cost.h"
#include "ipconns.h"
#include "log.h"
#include "server.h"
#include "ws_alive.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "ws"
/* seconds between the kicks that let lws run its due timers (on_tick) */
#define TICK_S 0.2

/* The opaque user data of every wsi the router counted: the router took
 * a connection and a stream slot for it (see router.c), given back once,
 * when lws destroys the wsi or fails to adopt the socket. With
 * --max-conns-per-ip the data is instead the connection's struct ipconn
 * (ipconns.h), given back at the same moment. */
static char counted;

struct ws_loop {
	struct ws *ws;
	struct ev_loop *loop;
	ev_async stop_watcher;
	ev_timer tick;
	struct lws_context *ctx; /* NULL once destroyed */
	struct lws_vhost *vh;
	pthread_t thread;
	bool started;
	bool failed; /* libev gave up (loop thread only) */
	/* connections adopted and not yet destroyed: the router's measure
	 * of which loop is least loaded */
	atomic_size_t load;
	/* cancels other threads owe it (ws_ready_later, ws_flush) */
	atomic_size_t owed;
	pthread_mutex_t lock; /* guards stop and the two lists below */
	bool stop;
	struct adoption *adopt;
	size_t nadopt, adopt_cap;
	int epfd; /* libev's epoll descriptor (ws_release), -1 if unknown */
	struct ws_ready_link ready; /* circular list head */
	struct ws_alive alive;      /* keepalive (loop thread only) */
	/* ws_send_buffer's, allocated on first use (loop thread only) */
	unsigned char *send_buf;
};

/* A socket for a loop to adopt, and the head the router read off it
 * (NULL: the head is still queued in the socket). */
struct adoption {
	int fd;
	char *head;
	size_t len;
	struct ipconn *ipc; /* its count per client IP, or NULL */
};

struct ws {
	struct server *srv;
	const struct ws_guests *guests; /* what the loops serve (ws.h) */
	lws_retry_bo_t retry; /* no validity timers: see ws_start */
	size_t n;
	struct ws_loop *loops;
	atomic_size_t turn; /* where the search for the least loaded starts */
};

/* The loop this thread runs, for the libev error callback. */
static _Thread_local struct ws_loop *running;

struct server *ws_server(struct ws_loop *loop)
{
	return loop->ws->srv;
}

struct ws_alive *ws_alive_of(struct ws_loop *loop)
{
	return &loop->alive;
}

unsigned char *ws_send_buffer(struct ws_loop *loop)
{
	if (loop->send_buf == NULL)
		loop->send_buf = xmalloc(LWS_PRE + WS_SEND_BUFFER);
	return loop->send_buf + LWS_PRE;
}

struct ws_loop *ws_loop_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

size_t ws_loads(struct ws *ws, size_t *loads, size_t max)
{
	size_t n;

	if (ws == NULL)
		return 0;
	n = ws->n < max ? ws->n : max;
	for (size_t i = 0; i < n; i++)
		loads[i] = atomic_load(&ws->loops[i].load);
	return n;
}

/* The loop with the fewest connections; ties go round, so that a burst
 * of connections adopted before any is counted still spreads. */
static struct ws_loop *least_loaded(struct ws *ws)
{
	size_t start = atomic_fetch_add(&ws->turn, 1) % ws->n;
	struct ws_loop *best = &ws->loops[start];
	size_t least = atomic_load(&best->load);

	for (size_t k = 1; k < ws->n; k++) {
		struct ws_loop *l = &ws->loops[(start + k) % ws->n];
		size_t load = atomic_load(&l->load);

		if (load < least) {
			best = l;
			least = load;
		}
	}
	return best;
}

void ws_adopt(struct ws *ws, int fd, struct ipconn *ipc)
{
	ws_adopt_head(ws, fd, NULL, 0, ipc);
}

void ws_adopt_head(struct ws *ws, int fd, char *head, size_t len,
		   struct ipconn *ipc)
{
	struct ws_loop *l = least_loaded(ws);
	bool first;

	atomic_fetch_add(&l->load, 1);
	pthread_mutex_lock(&l->lock);
	if (l->nadopt == l->adopt_cap) {
		l->adopt_cap = l->adopt_cap ? l->adopt_cap * 2 : 64;
		l->adopt = xrealloc(l->adopt, l->adopt_cap * sizeof *l->adopt);
	}
	first = l->nadopt == 0;
	l->adopt[l->nadopt++] = (struct adoption){ fd, head, len, ipc };
	if (first && !l->stop)
		lws_cancel_service(l->ctx);
	pthread_mutex_unlock(&l->lock);
}

/* The loops this thread has queued a session on and owes a cancel
 * (ws_ready_later), each counted in its loop's owed until ws_flush sends
 * it. A handful at most: one bus call wakes each loop once. */
#define OWED_MAX 16
static _Thread_local struct ws_loop *owed[OWED_MAX];
static _Thread_local size_t nowed;

/* Queue the link. The link that makes the list non-empty makes this
 * thread owe the loop its cancel: once per loop per thread, and with no
 * room left the cancel goes at once, under the lock. Owing is decided under the lock
 * that guards stop, and ws_stop waits until nothing is owed before it
 * destroys the context, so a cancel sent later never meets a context
 * being destroyed. */
void ws_ready_later(struct ws_loop *l, struct ws_ready_link *link)
{
	pthread_mutex_lock(&l->lock);
	if (!link->queued) {
		bool first = l->ready.next == &l->ready;
		size_t i = 0;

		link->queued = true;
		link->prev = l->ready.prev;
		link->next = &l->ready;
		l->ready.prev->next = link;
		l->ready.prev = link;
		while (i < nowed && owed[i] != l)
			i++;
		if (first && !l->stop && i == nowed) {
			if (nowed < OWED_MAX) {
				atomic_fetch_add(&l->owed, 1);
				owed[nowed++] = l;
			} else {
				lws_cancel_service(l->ctx);
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/* The cancel is written with no lock held: a loop woken by it (on this
 * core, often before the writer runs again) does not run straight into
 * a lock its waker still holds, the ready list's or the bus's. */
void ws_flush(void)
{
	while (nowed > 0) {
		struct ws_loop *l = owed[--nowed];

		lws_cancel_service(l->ctx);
		atomic_fetch_sub(&l->owed, 1);
	}
}

void ws_ready(struct ws_loop *l, struct ws_ready_link *link)
{
	ws_ready_later(l, link);
	ws_flush();
}

static void unlink_ready(struct ws_ready_link *link)
{
	link->prev->next = link->next;
	link->next->prev = link->prev;
	link->queued = false;
}

void ws_unready(struct ws_loop *l, struct ws_ready_link *link)
{
	pthread_mutex_lock(&l->lock);
	if (link->queued)
		unlink_ready(link);
	pthread_mutex_unlock(&l->lock);
}

/* lws 4.1.6 formats every log line in one static buffer (_lws_logv), and
 * logs each adoption with a head at LLL_ERR, which is always on: two
 * loops adopting long polls at once would race on it (ThreadSanitizer
 * reports it). So those adoptions take turns. */
static pthread_mutex_t adopt_head_lock = PTHREAD_MUTEX_INITIALIZER;

static void give_back(struct ws_loop *l, struct ipconn *ipc)
{
	ipconns_give(ipc);
	atomic_fetch_sub(&l->load, 1);
	capacity_give_stream(ws_server(l)->cap);
	capacity_give_connection(ws_server(l)->cap);
}

static void adopt_pending(struct ws_loop *l)
{
	struct adoption *fds;
	size_t n;

	pthread_mutex_lock(&l->lock);
	fds = l->adopt;
	n = l->nadopt;
	l->adopt = NULL;
	l->nadopt = l->adopt_cap = 0;
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < n; i++) {
		lws_sock_file_fd_type fd = { .sockfd = fds[i].fd };

		struct lws *wsi;

		/* on failure lws closes the fd itself; it copies the head,
		 * and serves it before it reads the socket */
		if (fds[i].head) {
			pthread_mutex_lock(&adopt_head_lock);
			wsi = lws_adopt_socket_vhost_readbuf(
				l->vh, fds[i].fd, fds[i].head, fds[i].len);
			pthread_mutex_unlock(&adopt_head_lock);
		} else
			wsi = lws_adopt_descriptor_vhost(
				l->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, fd,
				NULL, NULL);
		free(fds[i].head);
		if (wsi) {
			lws_set_opaque_user_data(
				wsi, fds[i].ipc ? (void *)fds[i].ipc : &counted);
		} else {
			log_warn("lws could not adopt a connection");
			give_back(l, fds[i].ipc);
		}
	}
	free(fds);
}

/* Loop thread: handle every session that asked, one at a time, taking
 * each off the list under the lock (servicing may queue it again). The
 * batch's CPU is read twice, not twice per session: the thread clock is
 * a system call, which one busy channel's deliveries would pay a
 * quarter of their CPU for. */
static void serve_ready(struct ws_loop *l)
{
	unsigned served[TRANSPORT_COUNT] = { 0 };
	uint64_t cpu = 0;
	bool any = false;

	for (;;) {
		struct ws_ready_link *link = NULL;

		pthread_mutex_lock(&l->lock);
		if (l->ready.next != &l->ready) {
			link = l->ready.next;
			unlink_ready(link);
		}
		pthread_mutex_unlock(&l->lock);
		if (link == NULL)
			break;
		if (!any)
			cpu = cost_cpu_now();
		any = true;
		served[link->service(link)]++;
	}
	if (any)
		cost_cpu_shared(cpu, served);
}

/* Hooked in front of the protocol callback for the cross-thread wake. */
static int on_event(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	const struct ws_guests *g;
	int r;

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		struct ws_loop *l = ws_loop_of(wsi);

		adopt_pending(l);
		serve_ready(l);
		ws_alive_turn(&l->alive, bus_now_ms());
		return 0; /* never -1 here: it closes the cancel pipe */
	}
	/* the last callback of every wsi, whether or not it got to be a
	 * WebSocket (lws 4.1.6 core-net/close.c) */
	if (reason == LWS_CALLBACK_WSI_DESTROY &&
	    lws_get_opaque_user_data(wsi) != NULL) {
		void *mark = lws_get_opaque_user_data(wsi);

		lws_set_opaque_user_data(wsi, NULL);
		give_back(ws_loop_of(wsi), mark == &counted ? NULL : mark);
	}
	/* plain HTTP here is one of the guests' (a long poll, an event
	 * stream: the router sends nothing else that is not an upgrade) */
	g = ws_loop_of(wsi)->ws->guests;
	for (const struct ws_http_guest *const *h = g->http; *h; h++)
		if ((*h)->callback(wsi, (int)reason, user, in, len, &r))
			return r;
	return g->ws->callback(wsi, reason, user, in, len);
}

static void lws_log(int level, const char *line)
{
	char buf[512];

	snprintf(buf, sizeof buf, "%s", line);
	buf[strcspn(buf, "\n")] = '\0';
	/* 4.1.6 logs every adoption with a head (a long poll) as an error */
	if ((level & LLL_ERR) && strstr(buf, "adopt_socket_readbuf: calling"))
		level = LLL_INFO;
	if (level & LLL_ERR)
		log_warn("libwebsockets: %s", buf);
	else
		log_debug("libwebsockets: %s", buf);
}

/* libev cannot go on (epoll_wait or epoll_ctl failed). Its default is
 * abort(); instead the loop ends and its thread reports the failure.
 * ev_break alone did not end ev_run here (libev 4.33 with lws's watchers
 * on the loop), so ws_main also runs the loop one round at a time and
 * checks failed between rounds. */
static void on_syserr(const char *msg)
{
	int err = errno;

	if (running == NULL) {
		fprintf(stderr, "anypush: %s: %s\n", msg, strerror(err));
		abort();
	}
	log_error("%s: %s", msg, strerror(err));
	running->failed = true;
	ev_break(running->loop, EVBREAK_ALL);
}

/* lws 4.1.6's libev glue keeps one ev_timer for all of lws's timers
 * (lws_set_timeout, the handshake timeout) and
 * re-arms it with ev_timer_start, which does nothing while the watcher
 * is already running (so we read its source): a timer due sooner than the one armed (a 1 s ping
 * after a 5 s handshake timeout) waits for the later one, and in our
 * tests pings never went out at all. lws also runs every due timer from
 * its idle callback, which follows any io event; so a cancel every
 * TICK_S, one eventfd write per loop whatever the number of
 * connections, makes its timers late by TICK_S at most. The same wake
 * turns our keepalive wheel (on_event). */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ws_loop *l = w->data;

	(void)loop;
	(void)revents;
	lws_cancel_service(l->ctx);
}

/* Loop thread, from ws_stop's ev_async: the one place the context is
 * destroyed while its loop runs (lws closes every wsi, and on_closed
 * detaches each session). libev's destroy is synchronous. */
static void on_stop(struct ev_loop *loop, ev_async *w, int revents)
{
	struct ws_loop *l = w->data;

	(void)revents;
	ev_timer_stop(loop, &l->tick);
	lws_context_destroy(l->ctx);
	l->ctx = NULL;
	ev_async_stop(loop, w);
	ev_break(loop, EVBREAK_ALL);
}

static void *ws_main(void *arg)
{
	struct ws_loop *l = arg;

	running = l;
	/* on_stop clears ctx; a round is one epoll_wait and what it found */
	while (l->ctx && !l->failed)
		ev_run(l->loop, EVRUN_ONCE);
	/* Nothing else serves this loop's WebSockets: ending its thread
	 * quietly would freeze them while the gateway looks healthy. Stop
	 * the gateway instead, so that clients reconnect elsewhere and a
	 * supervisor restarts it. */
	if (l->failed) {
		log_error("a WebSocket loop failed: stopping the gateway");
		server_fail(ws_server(l));
	}
	return NULL;
}

static void on_probe(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* The descriptors that are epoll instances right now, by their
 * /proc/self/fd links: readlink touches no descriptor, so this is safe
 * while other threads open and close theirs. *n of them, malloc'd. */
static int *epoll_fds(size_t *n)
{
	char path[300], link[64];
	struct dirent *d;
	int *fds = NULL;
	size_t cap = 0;
	DIR *dir = opendir("/proc/self/fd");

	*n = 0;
	while (dir && (d = readdir(dir)) != NULL) {
		ssize_t len;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/fd/%s", d->d_name);
		len = readlink(path, link, sizeof link - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		if (strcmp(link, "anon_inode:[eventpoll]") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			fds = xrealloc(fds, cap * sizeof *fds);
		}
		fds[(*n)++] = atoi(d->d_name);
	}
	if (dir)
		closedir(dir);
	return fds;
}

static bool listed(const int *fds, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

/* libev 4.33 does not say which epoll descriptor a loop uses, and
 * ws_release must delete a socket from it (libev never does: it leaves
 * that to close). So watch a probe socket on the loop and ask the epoll
 * descriptors that appeared with the loop (not in before, taken just
 * before ev_loop_new) to modify it: only the loop's has it. Once, at
 * start; -1 if not found.
 * Only those new ones: the probe once went through every descriptor of
 * the process, and by then the Redis engine's thread runs, with its
 * hiredis socket and its own loop's epoll. epoll_ctl on them from this
 * thread raced that thread's use and closing of them (ThreadSanitizer in
 * t_redis.py: the hiredis socket made in on_retry, probed here), and a
 * number closed and reused meanwhile is another thread's descriptor. */
static int find_epoll_fd(struct ev_loop *loop, const int *before,
			 size_t nbefore)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int sv[2], found = -1;
	size_t n;
	int *now;
	ev_io probe;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	ev_io_init(&probe, on_probe, sv[0], EV_READ);
	ev_io_start(loop, &probe);
	/* the watcher reaches epoll when the loop runs */
	ev_run(loop, EVRUN_NOWAIT);
	now = epoll_fds(&n);
	for (size_t i = 0; i < n && found < 0; i++)
		if (!listed(before, nbefore, now[i]) &&
		    epoll_ctl(now[i], EPOLL_CTL_MOD, sv[0], &ev) == 0)
			found = now[i];
	free(now);
	ev_io_stop(loop, &probe);
	close(sv[0]);
	close(sv[1]);
	return found;
}

void ws_client_ip(struct lws *wsi, char ip[LIMITS_IP_MAX])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char xff[1024];
	int fd = lws_get_socket_fd(wsi);
	bool peer = fd >= 0 &&
		    getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
	int n = lws_hdr_copy(wsi, xff, sizeof xff, WSI_TOKEN_X_FORWARDED_FOR);

	limits_client_ip(peer ? (struct sockaddr *)&ss : NULL,
			 n > 0 ? xff : NULL, ip);
}

int ws_release(struct lws *wsi)
{
	struct ws_loop *l = ws_loop_of(wsi);
	int fd = lws_get_socket_fd(wsi), keep, dummy;

	if (l->epfd < 0 || fd < 0)
		return -1;
	/* the registration belongs to the socket, not to the number: it
	 * would outlive lws's close while keep lives, and libev would take
	 * its events as spurious and rebuild the whole set each time */
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != ENOENT)
		return -1;
	keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	dummy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* lws's close shuts the socket down first (core-net/close.c), which
	 * would end the TCP stream for keep too: give it an unconnected
	 * socket under the same number to shut down and close */
	if (keep < 0 || dummy < 0 || dup3(dummy, fd, O_CLOEXEC) < 0) {
		if (keep >= 0)
			close(keep);
		keep = -1;
	}
	if (dummy >= 0)
		close(dummy);
	/* the count per client IP goes back now, before the router can see
	 * the next head: given back at the wsi's destroy, which may come
	 * after, it would still be held then, and a client at its
	 * --max-conns-per-ip would be refused its own next request. The
	 * slots stay until the destroy. */
	if (keep >= 0) {
		void *mark = lws_get_opaque_user_data(wsi);

		if (mark != NULL && mark != &counted) {
			lws_set_opaque_user_data(wsi, &counted);
			ipconns_give(mark);
		}
	}
	return keep;
}

static int loop_init(struct ws *ws, struct ws_loop *l, size_t i)
{
	static struct lws_protocols protocols[2];
	struct lws_context_creation_info info;
	void *foreign[1];
	size_t nbefore;
	int *before = epoll_fds(&nbefore);

	l->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV |
			      EVFLAG_NOSIGMASK);
	if (l->loop == NULL) {
		free(before);
		log_error("loop %zu: cannot create an epoll loop", i);
		return -1;
	}
	l->epfd = find_epoll_fd(l->loop, before, nbefore);
	free(before);
	if (l->epfd < 0)
		log_warn("loop %zu: its epoll descriptor is not found: long "
			 "polls close after their reply",
			 i);
	ev_async_init(&l->stop_watcher, on_stop);
	l->stop_watcher.data = l;
	ev_async_start(l->loop, &l->stop_watcher);
	ev_timer_init(&l->tick, on_tick, TICK_S, TICK_S);
	l->tick.data = l;
	protocols[0] = *ws->guests->ws;
	protocols[0].callback = on_event;
	/* one protocol serves WebSockets and every plain-HTTP guest alike:
	 * its session data is the largest of theirs */
	for (const struct ws_http_guest *const *h = ws->guests->http; *h; h++)
		if (protocols[0].per_session_data_size < (*h)->session_size)
			protocols[0].per_session_data_size = (*h)->session_size;
	foreign[0] = l->loop;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	/* never fd_limit_per_thread: lws's fd lookups turn into scans */
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_LIBEV;
	info.foreign_loops = foreign;
	info.retry_and_idle_policy = &ws->retry;
	ws_alive_init(&l->alive, ws->guests->alive,
		      ws->srv->cfg->ws_ping * 1000,
		      ws->srv->cfg->ws_hangup * 1000, bus_now_ms());
	info.user = l;
	info.max_http_header_data = 8192;
	info.timeout_secs = (unsigned)ws->srv->cfg->head_timeout;
	info.vhost_name = "default";
	l->ctx = lws_create_context(&info);
	if (l->ctx)
		l->vh = lws_get_vhost_by_name(l->ctx, "default");
	if (l->ctx == NULL || l->vh == NULL) {
		log_error("loop %zu: cannot create a libwebsockets context "
			  "(is the libwebsockets-evlib-ev package installed?)",
			  i);
		return -1;
	}
	/* the context exists: on_tick may cancel it */
	ev_timer_start(l->loop, &l->tick);
	return 0;
}

/* Only what loop_init made; the thread is not running. */
static void loop_free(struct ws_loop *l)
{
	if (l->ctx)
		lws_context_destroy(l->ctx);
	l->ctx = NULL;
	for (size_t i = 0; i < l->nadopt; i++) {
		close(l->adopt[i].fd);
		free(l->adopt[i].head);
		ipconns_give(l->adopt[i].ipc);
	}
	free(l->adopt);
	free(l->send_buf);
	if (l->loop)
		ev_loop_destroy(l->loop);
	pthread_mutex_destroy(&l->lock);
}

struct ws *ws_start(struct server *srv, size_t n,
		    const struct ws_guests *guests)
{
	struct ws *ws = xcalloc(1, sizeof *ws);
	static const uint32_t backoff[] = { 1000 };

	ws->srv = srv;
	ws->guests = guests;
	ws->n = n;
	ws->loops = xcalloc(n, sizeof *ws->loops);
	/* Keepalive is ours (ws_alive.c), on a wheel per loop: lws's
	 * validity policy keeps one timer per connection in a sorted list
	 * and walks it on every ping and pong. A zero hangup turns it off
	 * (4.1.6 core-net/wsi-timeout.c); without a policy at all lws would
	 * use its default of 300/310 s. */
	ws->retry = (lws_retry_bo_t){
		.retry_ms_table = backoff,
		.retry_ms_table_count = 1,
		.secs_since_valid_ping = 0,
		.secs_since_valid_hangup = 0,
	};
	/* before any context: the libev plugin of 4.1.6 logs every io
	 * start and stop at NOTICE */
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	ev_set_syserr_cb(on_syserr);
	/* every loop gets its lock first, so that ws_stop may clean up
	 * after a failure at any loop */
	for (size_t i = 0; i < n; i++) {
		struct ws_loop *l = &ws->loops[i];

		l->ws = ws;
		pthread_mutex_init(&l->lock, NULL);
		l->ready.next = l->ready.prev = &l->ready;
	}
	/* one after the other: each create resets process-wide state */
	for (size_t i = 0; i < n; i++)
		if (loop_init(ws, &ws->loops[i], i) < 0)
			goto fail;
	for (size_t i = 0; i < n; i++) {
		struct ws_loop *l = &ws->loops[i];
		char name[16];

		if (pthread_create(&l->thread, NULL, ws_main, l) != 0) {
			log_error("cannot start WebSocket loop %zu", i);
			goto fail;
		}
		l->started = true;
		/* the kernel keeps 15 characters; --threads is below 1000 */
		snprintf(name, sizeof name, "ws-%u", (unsigned)(i % 1000));
		pthread_setname_np(l->thread, name);
	}
	log_info("WebSocket loops: %zu", n);
	return ws;
fail:
	ws_stop(ws);
	return NULL;
}

void ws_stop(struct ws *ws)
{
	if (ws == NULL)
		return;
	for (size_t i = 0; i < ws->n; i++) {
		struct ws_loop *l = &ws->loops[i];

		pthread_mutex_lock(&l->lock);
		l->stop = true;
		pthread_mutex_unlock(&l->lock);
		/* no one owes a cancel any more once stop is seen: wait for
		 * those owed before it (a bus call's last instructions) */
		while (atomic_load(&l->owed) > 0)
			sched_yield();
		if (l->started) {
			ev_async_send(l->loop, &l->stop_watcher);
			pthread_join(l->thread, NULL);
		}
		/* a loop that failed ended without destroying its context;
		 * its thread is gone, so this thread may own it */
		loop_free(l);
	}
	free(ws->loops);
	free(ws);
}
