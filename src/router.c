/* The router thread owns the listening socket and every connection that
 * has not yet shown its request head ("pending"). It peeks with MSG_PEEK
 * so nothing is consumed, under edge-triggered epoll: peeked bytes stay
 * queued, so level-triggered epoll would report them forever (measured:
 * a spinning core per slow client). Pending connections are bounded in
 * number (the oldest goes first: it is the likeliest slowloris) and in
 * time. A socket is handed off exactly once and never touched after.
 *
 * A head may come a byte per segment, and a plain peek copies from the
 * start of the stream every time: 8 KiB that way is 32 MiB of copying and
 * scanning on this one thread. So each byte is scanned once
 * (router_head_scan), and with SO_PEEK_OFF (TCP since Linux 6.10) each
 * peek returns only the bytes not yet seen; the whole head is peeked
 * once more only when it is ready to classify. Without SO_PEEK_OFF a
 * socket is peeked again only when its queued bytes have doubled, or
 * RECHECK_MS after a smaller arrival, so the copying stays linear in the
 * head plus a bounded amount per connection. */
#include "router.h"

#include "abuse.h"
#include "auth.h"
#include "bus.h"
#include "capacity.h"
#include "fmt.h"
#include "http.h"
#include "ipconns.h"
#include "log.h"
#include "metrics.h"
#include "origin.h"
#include "router_head.h"
#include "server.h"
#include "transport.h"
#include "ws.h"
#include "xalloc.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "router"
#define HEAD_CAP 8192
#define POKE_MS 100
#define RECHECK_MS 25
#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

struct pending {
	int fd;
	bool peek_off; /* SO_PEEK_OFF is on: a peek returns only new bytes */
	bool deferred; /* on the recheck list */
	/* given back after a long poll's reply: if no next request starts
	 * within --head-timeout, an idle keep-alive connection, closed
	 * without the 408 (the list stays in deadline order) */
	bool reused;
	struct head_scan scan;
	uint64_t deadline_ms;
	uint64_t recheck_ms;
	struct pending *prev, *next;   /* oldest first */
	struct pending *dprev, *dnext; /* the recheck list, due first */
	socklen_t salen;
	struct sockaddr_storage sa;
};

struct router {
	struct server *srv;
	int lfd, ep, stop_fd;
	pthread_t thread;
	struct pending *oldest, *newest;
	struct pending *due_first, *due_last; /* deferred peeks */
	size_t npending;
	bool no_peek_off; /* ANYPUSH_NO_PEEK_OFF: test the fallback */
	/* evicted while events for them may still be in the current epoll
	 * batch: freed only after the batch (fd is -1 meanwhile) */
	struct pending *graveyard;
	uint64_t next_poke; /* see http_poke */
	int back_fd;        /* eventfd: sockets are waiting in back_queue */
	char head[HEAD_CAP];
};

/* Sockets the lws loops give back after a long poll's reply, for their
 * next request head (router_take_back). Static, not in struct router:
 * a loop may give one back while or after router_stop frees it. */
static pthread_mutex_t back_lock = PTHREAD_MUTEX_INITIALIZER;
static struct router *back_router; /* NULL: not running, close them */
static int *back_queue;
static size_t back_n, back_cap;

static void unlink_pending(struct router *r, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		r->oldest = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		r->newest = p->prev;
	r->npending--;
	if (p->deferred) {
		if (p->dprev)
			p->dprev->dnext = p->dnext;
		else
			r->due_first = p->dnext;
		if (p->dnext)
			p->dnext->dprev = p->dprev;
		else
			r->due_last = p->dprev;
		p->deferred = false;
	}
	epoll_ctl(r->ep, EPOLL_CTL_DEL, p->fd, NULL);
}

/* Answer with a short JSON error, then close. The socket is fresh, so
 * the send cannot block; reading what the client sent first avoids a
 * reset that would discard our answer. A 503 or 429 says when to retry. */
static void refuse(struct router *r, struct pending *p, const char *status,
		   const char *code, const char *message)
{
	bool retry = status[0] == '5' || strncmp(status, "429", 3) == 0;
	char body[256], buf[600];
	size_t len = fmt_at(body, sizeof body, 0,
			    "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
			    code, message);
	size_t n = fmt_at(buf, sizeof buf, 0,
			  "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
			  "%sConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
			  status, retry ? "Retry-After: 1\r\n" : "",
			  len, body);

	unlink_pending(r, p);
	/* bounded: a client that keeps sending cannot hold this thread */
	for (int i = 0; i < 4; i++)
		if (recv(p->fd, r->head, sizeof r->head, MSG_DONTWAIT) <= 0)
			break;
	(void)send(p->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(p->fd, SHUT_WR);
	close(p->fd);
	free(p);
}

static void drop(struct router *r, struct pending *p)
{
	unlink_pending(r, p);
	close(p->fd);
	free(p);
}

/* A connection takes a --max-connections slot here, and a WebSocket a
 * --max-streams slot too; the library that gets the socket gives them
 * back when it closes it (http.c's on_connection, ws.c). */
static bool within_capacity(struct router *r, struct pending *p, bool to_ws)
{
	struct capacity *cap = r->srv->cap;
	const char *why = NULL;

	if (!capacity_take_connection(cap)) {
		why = "the gateway has as many connections as it takes "
		      "(--max-connections); retry";
	} else if (to_ws && !capacity_take_stream(cap)) {
		capacity_give_connection(cap);
		why = "the gateway holds as many streams as it takes "
		      "(--max-streams); retry";
	}
	if (why == NULL)
		return true;
	metrics_add(&metrics.over_capacity, 1);
	log_debug("refused a connection: %s", why);
	refuse(r, p, "503 Service Unavailable", "over_capacity", why);
	return false;
}

/* With --max-conns-per-ip: the connection's count per client IP, the
 * client being the one X-Forwarded-For names when the peer is a trusted
 * proxy (so behind nginx each real client has its own count). *ipc is
 * NULL when nothing is counted; false: refused (429 sent). */
static bool within_ip_limit(struct router *r, struct pending *p, size_t n,
			    struct ipconn **ipc)
{
	char ip[LIMITS_IP_MAX], xff[1024];
	size_t vlen = 0;
	const char *v;

	*ipc = NULL;
	if (!ipconns_on())
		return true;
	v = router_head_header(r->head, n, "X-Forwarded-For:", &vlen);
	if (v) {
		/* the rightmost hops are the ones that count */
		if (vlen >= sizeof xff) {
			v += vlen - (sizeof xff - 1);
			vlen = sizeof xff - 1;
		}
		memcpy(xff, v, vlen);
		xff[vlen] = '\0';
	}
	limits_client_ip((struct sockaddr *)&p->sa, v ? xff : NULL, ip);
	*ipc = ipconns_take(ip);
	if (*ipc)
		return true;
	log_debug("refused a connection from %s: --max-conns-per-ip", ip);
	refuse(r, p, "429 Too Many Requests", "too_many_connections",
	       "this address holds as many connections as it may "
	       "(--max-conns-per-ip); close one and retry");
	return false;
}

/* A long poll for lws: read exactly its head off the socket, so that
 * lws cannot read past it (ws_adopt_head); false: leave it to MHD. */
static bool hand_off_longpoll(struct router *r, struct pending *p,
			      size_t head_len, struct ipconn *ipc)
{
	char *head;

	if (!capacity_take_stream(r->srv->cap))
		return false;
	head = xmalloc(head_len);
	if (recv(p->fd, head, head_len, 0) != (ssize_t)head_len) {
		/* the peeked bytes are queued: cannot happen */
		free(head);
		capacity_give_stream(r->srv->cap);
		capacity_give_connection(r->srv->cap);
		ipconns_give(ipc);
		drop(r, p);
		return true;
	}
	unlink_pending(r, p);
	metrics_add(&metrics.routed_ws, 1);
	ws_adopt_head(r->srv->ws, p->fd, head, head_len, ipc);
	free(p);
	return true;
}

/* n: the bytes of the head in r->head. The connection is counted here,
 * once (capacity, per IP); the library that gets it gives back. */
static void hand_off(struct router *r, struct pending *p, enum head_verdict v,
		     size_t n, size_t longpoll_len)
{
	bool to_ws = v == HEAD_WS;
	struct ipconn *ipc;

	if (!within_ip_limit(r, p, n, &ipc))
		return;
	if (!within_capacity(r, p, to_ws)) {
		ipconns_give(ipc);
		return;
	}
	if (longpoll_len && hand_off_longpoll(r, p, longpoll_len, ipc))
		return;
	/* An event stream goes to lws only with a stream slot; past
	 * --max-streams libmicrohttpd answers its 503, with the CORS
	 * headers a browser needs to read it (http_stream.c) */
	if (v == HEAD_SSE)
		to_ws = capacity_take_stream(r->srv->cap);
	unlink_pending(r, p);
	if (to_ws) {
		metrics_add(&metrics.routed_ws, 1);
		ws_adopt(r->srv->ws, p->fd, ipc);
	} else {
		metrics_add(&metrics.routed_http, 1);
		/* MHD claims it on its own thread (http.c's on_connection) */
		if (ipc)
			ipconns_park(p->fd, ipc);
		/* MHD owns the fd from here, and closes it on failure */
		if (MHD_add_connection(r->srv->mhd, p->fd,
				       (struct sockaddr *)&p->sa,
				       p->salen) != MHD_YES) {
			capacity_give_connection(r->srv->cap);
			if (ipc)
				ipconns_give(ipconns_claim(p->fd));
		}
	}
	free(p);
}

/* The head's length if it is a long poll lws may hold, else 0. lws
 * checks its token as libmicrohttpd would (lws_longpoll.c); a
 * refused Origin stays with libmicrohttpd, which answers its 403 with
 * the CORS rules of every other reply. */
static size_t longpoll_len(struct router *r, size_t n)
{
	size_t len;

	if (!transport_enabled(&transport_longpoll))
		return 0;
	len = router_head_longpoll(r->head, n);
	if (len && !origin_head_allowed(r->head, n))
		return 0;
	return len;
}

/* The head is ready to classify: peek at all of it from the start, once.
 * r->head already holds it when the last peek started at 0. */
static void classify(struct router *r, struct pending *p, ssize_t n)
{
	int off = -1;
	enum head_verdict v;

	if (p->peek_off) {
		/* back to plain peeks, which is also what the library that
		 * gets the socket expects */
		setsockopt(p->fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
		p->peek_off = false;
		n = recv(p->fd, r->head, sizeof r->head, MSG_PEEK);
		if (n <= 0) {
			drop(r, p);
			return;
		}
		metrics_add(&metrics.head_peeked_bytes, (uint64_t)n);
	}
	v = router_head_classify(r->head, (size_t)n, sizeof r->head,
				 transport_enabled(&transport_ws),
				 transport_enabled(&transport_sse));
	switch (v) {
	case HEAD_INCOMPLETE:
		/* cannot happen: the scan and the classifier agree */
		log_warn("a head ready to classify was incomplete");
		return;
	case HEAD_WS:
	case HEAD_SSE:
		/* lws sees no more of the head than the router does: refuse
		 * a cross-site WebSocket (hijacking) or event stream here;
		 * libmicrohttpd checks every request it gets (http.c) */
		if (!origin_head_allowed(r->head, (size_t)n)) {
			metrics_add(&metrics.origin_refused, 1);
			refuse(r, p, "403 Forbidden", "origin_not_allowed",
			       "pages on this origin may not use the "
			       "gateway (--allow-origin)");
			return;
		}
		hand_off(r, p, v, (size_t)n, 0);
		return;
	case HEAD_HTTP:
		hand_off(r, p, v, (size_t)n, longpoll_len(r, (size_t)n));
		return;
	case HEAD_BAD:
		metrics_add(&metrics.head_rejected, 1);
		refuse(r, p, "400 Bad Request", "bad_request",
		       "not a well-formed HTTP/1.x request");
		return;
	case HEAD_TOO_LARGE:
		metrics_add(&metrics.head_rejected, 1);
		refuse(r, p, "431 Request Header Fields Too Large",
		       "head_too_large", "the request head is over 8 KiB");
		return;
	}
}

/* Without SO_PEEK_OFF, peek again after RECHECK_MS rather than now. */
static void defer(struct router *r, struct pending *p)
{
	if (p->deferred)
		return;
	p->deferred = true;
	p->recheck_ms = bus_now_ms() + RECHECK_MS;
	p->dnext = NULL;
	p->dprev = r->due_last;
	if (r->due_last)
		r->due_last->dnext = p;
	else
		r->due_first = p;
	r->due_last = p;
}

/* Is a full peek worth its copy now? Yes when the bytes queued have
 * doubled since the last one (the copies then sum to twice the head), or
 * when called from the recheck list (force). */
static bool worth_peeking(struct router *r, struct pending *p, bool force)
{
	int queued = 0;

	if (force || p->peek_off || p->scan.seen == 0)
		return true;
	if (ioctl(p->fd, FIONREAD, &queued) < 0 ||
	    (size_t)queued >= 2 * p->scan.seen || queued >= HEAD_CAP)
		return true;
	defer(r, p);
	return false;
}

static void peek(struct router *r, struct pending *p, bool force)
{
	size_t seen = p->scan.seen;
	ssize_t n;

	if (!worth_peeking(r, p, force))
		return;
	/* with SO_PEEK_OFF the peek starts after the bytes already seen */
	if (p->peek_off)
		n = recv(p->fd, r->head, sizeof r->head - seen, MSG_PEEK);
	else
		n = recv(p->fd, r->head, sizeof r->head, MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(r, p);
		return;
	}
	if (n < 0)
		return;
	metrics_add(&metrics.head_peeked_bytes, (uint64_t)n);
	if (p->peek_off ?
		    router_head_scan(&p->scan, r->head, (size_t)n, HEAD_CAP) :
		    (size_t)n > seen &&
			    router_head_scan(&p->scan, r->head + seen,
					     (size_t)n - seen, HEAD_CAP))
		classify(r, p, n);
}

static void add_pending(struct router *r, int fd, struct sockaddr_storage *sa,
			socklen_t salen, bool reused)
{
	struct pending *p = xcalloc(1, sizeof *p);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
				  .data.ptr = p };

	if (r->npending >= r->srv->cfg->max_pending) {
		struct pending *old = r->oldest;

		metrics_add(&metrics.pending_evicted, 1);
		log_debug("pending cap reached: closing the oldest");
		unlink_pending(r, old);
		close(old->fd);
		old->fd = -1;
		old->next = r->graveyard;
		r->graveyard = old;
	}
	p->fd = fd;
	p->peek_off = !r->no_peek_off &&
		      setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &(int){ 0 },
				 sizeof(int)) == 0;
	p->sa = *sa;
	p->salen = salen;
	p->reused = reused;
	p->deadline_ms = bus_now_ms() + r->srv->cfg->head_timeout * 1000;
	p->prev = r->newest;
	if (r->newest)
		r->newest->next = p;
	else
		r->oldest = p;
	r->newest = p;
	r->npending++;
	if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		drop(r, p);
}

static void accept_all(struct router *r)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof sa;
		int fd = accept4(r->lfd, (struct sockaddr *)&sa, &salen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				log_warn("out of file descriptors; pausing "
					 "accept");
				usleep(20000);
			}
			return;
		}
		metrics_add(&metrics.accepted, 1);
		add_pending(r, fd, &sa, salen, false);
	}
}

static void expire(struct router *r, uint64_t now)
{
	while (r->oldest && r->oldest->deadline_ms <= now) {
		if (r->oldest->reused && r->oldest->scan.seen == 0) {
			drop(r, r->oldest);
			continue;
		}
		metrics_add(&metrics.head_timeouts, 1);
		refuse(r, r->oldest, "408 Request Timeout", "head_timeout",
		       "the request head did not arrive in time");
	}
}

static void recheck(struct router *r, uint64_t now)
{
	while (r->due_first && r->due_first->recheck_ms <= now) {
		struct pending *p = r->due_first;

		r->due_first = p->dnext;
		if (r->due_first)
			r->due_first->dprev = NULL;
		else
			r->due_last = NULL;
		p->deferred = false;
		peek(r, p, true);
	}
}

static void bury(struct router *r)
{
	while (r->graveyard) {
		struct pending *p = r->graveyard;

		r->graveyard = p->next;
		free(p);
	}
}

/* Loop thread of lws: the socket of a long poll that has replied. */
void router_take_back(int fd)
{
	uint64_t one = 1;

	pthread_mutex_lock(&back_lock);
	if (back_router == NULL) {
		close(fd);
	} else {
		if (back_n == back_cap) {
			back_cap = back_cap ? back_cap * 2 : 64;
			back_queue = xrealloc(back_queue,
					      back_cap * sizeof *back_queue);
		}
		back_queue[back_n++] = fd;
		if (back_n == 1 &&
		    write(back_router->back_fd, &one, sizeof one) < 0)
			log_warn("cannot wake the router thread");
	}
	pthread_mutex_unlock(&back_lock);
}

/* Router thread: each socket given back waits for its next head as a new
 * connection's first does. */
static void take_back_all(struct router *r)
{
	uint64_t v;
	int *fds;
	size_t n;

	if (read(r->back_fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_warn("cannot read the router's wake");
	pthread_mutex_lock(&back_lock);
	fds = back_queue;
	n = back_n;
	back_queue = NULL;
	back_n = back_cap = 0;
	pthread_mutex_unlock(&back_lock);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof sa;

		if (getpeername(fds[i], (struct sockaddr *)&sa, &salen) < 0) {
			close(fds[i]);
			continue;
		}
		add_pending(r, fds[i], &sa, salen, true);
	}
	free(fds);
}

static void *router_main(void *arg)
{
	struct router *r = arg;
	struct epoll_event ev[64];
	uint64_t now;

	for (;;) {
		int n = epoll_wait(r->ep, ev, 64,
				   r->due_first ? RECHECK_MS : 100);

		for (int i = 0; i < n; i++) {
			struct pending *p = ev[i].data.ptr;

			if (ev[i].data.ptr == &r->stop_fd)
				return NULL;
			if (ev[i].data.ptr == &r->lfd)
				accept_all(r);
			else if (ev[i].data.ptr == &r->back_fd)
				take_back_all(r);
			else if (p->fd >= 0)
				peek(r, p, false);
		}
		bury(r);
		now = bus_now_ms();
		recheck(r, now);
		expire(r, now);
		if (now >= r->next_poke) {
			if (atomic_load(&r->srv->http_conns) > 0)
				http_poke(r->srv->mhd,
					  (unsigned)config_http_threads(
						  r->srv->cfg));
			r->next_poke = now + POKE_MS;
		}
	}
}

static int listen_on(const char *host, unsigned long port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST |
					      AI_NUMERICSERV };
	struct addrinfo *ai;
	char service[16];
	int fd, one = 1;

	snprintf(service, sizeof service, "%lu", port);
	if (getaddrinfo(host, service, &hints, &ai) != 0) {
		log_error("--bind '%s' is not a numeric address", host);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 4096) < 0) {
		log_error("cannot listen on %s:%lu: %s", host, port,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof sa;

	getsockname(fd, (struct sockaddr *)&sa, &len);
	if (sa.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

/* A host a browser on this machine reaches the gateway by. */
static const char *demo_host(const char *bind)
{
	if (strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "127.0.0.1") == 0 ||
	    strcmp(bind, "::") == 0 || strcmp(bind, "::1") == 0)
		return "localhost";
	return bind;
}

static void write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	if (path[0] == '\0')
		return;
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
	    rename(tmp, path) != 0)
		log_error("cannot write --port-file %s", path);
}

static int watch(int ep, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

struct router *router_start(struct server *srv)
{
	struct router *r = xcalloc(1, sizeof *r);
	const char *host, *bind_to;
	unsigned port;
	bool v6;

	r->srv = srv;
	r->no_peek_off = getenv("ANYPUSH_NO_PEEK_OFF") != NULL;
	bind_to = auth_bind(srv->cfg->bind);
	r->lfd = listen_on(bind_to, srv->cfg->port);
	if (r->lfd < 0) {
		free(r);
		return NULL;
	}
	r->ep = epoll_create1(EPOLL_CLOEXEC);
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->back_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	port = bound_port(r->lfd);
	if (r->ep < 0 || r->stop_fd < 0 || r->back_fd < 0 ||
	    watch(r->ep, r->lfd, &r->lfd) < 0 ||
	    watch(r->ep, r->stop_fd, &r->stop_fd) < 0 ||
	    watch(r->ep, r->back_fd, &r->back_fd) < 0 ||
	    pthread_create(&r->thread, NULL, router_main, r) != 0) {
		log_error("cannot start the router thread");
		close(r->lfd);
		if (r->ep >= 0)
			close(r->ep);
		if (r->stop_fd >= 0)
			close(r->stop_fd);
		if (r->back_fd >= 0)
			close(r->back_fd);
		free(r);
		return NULL;
	}
	pthread_mutex_lock(&back_lock);
	back_router = r;
	pthread_mutex_unlock(&back_lock);
	/* named, so its CPU time can be told apart in /proc */
	pthread_setname_np(r->thread, "router");
	/* the address to open, with the real port: --port 0 picks one, and
	 * scripts/run-demo no longer guesses it */
	host = demo_host(bind_to);
	v6 = strchr(host, ':') != NULL;
	log_info("listening on %s port %u: open http://%s%s%s:%u/",
		 bind_to, port, v6 ? "[" : "", host, v6 ? "]" : "",
		 port);
	write_port_file(srv->cfg->port_file, port);
	return r;
}

void router_stop(struct router *r)
{
	uint64_t one = 1;

	if (r == NULL)
		return;
	if (write(r->stop_fd, &one, sizeof one) < 0)
		log_warn("cannot signal the router thread");
	pthread_join(r->thread, NULL);
	/* from here a socket given back is closed */
	pthread_mutex_lock(&back_lock);
	back_router = NULL;
	for (size_t i = 0; i < back_n; i++)
		close(back_queue[i]);
	free(back_queue);
	back_queue = NULL;
	back_n = back_cap = 0;
	pthread_mutex_unlock(&back_lock);
	while (r->oldest)
		drop(r, r->oldest);
	bury(r);
	close(r->lfd);
	close(r->ep);
	close(r->stop_fd);
	close(r->back_fd);
	free(r);
}
