/* The libmicrohttpd side: one daemon without a listening socket (the
 * router hands it connections), epoll mode (select breaks past fd 1024),
 * suspend/resume for held requests. This file routes a request to
 * publishing, info, metrics, static files or a transport. */
#include "http.h"

#include "admin.h"
#include "auth.h"
#include "bus.h"
#include "capacity.h"
#include "cost.h"
#include "fmt.h"
#include "http_auth.h"
#include "http_reply.h"
#include "http_route.h"
#include "info.h"
#include "ipconns.h"
#include "log.h"
#include "metrics.h"
#include "publish.h"
#include "redis_engine.h"
#include "server.h"
#include "static_files.h"
#include "stream.h"
#include "transport.h"
#include "ws.h"
#include "xalloc.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LOG_PREFIX "http"
#define CHANNELS_PREFIX "/channels/"
/* F_DUPFD attempts to find a socket number for one worker (http_poke) */
#define POKE_TRIES 64
/* MHD's own limit sits above --max-connections, which the router keeps:
 * room for the router's pokes and for closed connections MHD has not
 * yet cleaned up, so MHD never drops a connection the router counted.
 * MHD splits its limit between its worker threads and checks a worker's
 * share only (the router's sockets are not spread evenly), and a socket
 * it drops there never reaches NOTIFY_STARTED, so its slot would leak:
 * each share is the whole limit. */
#define MHD_SPARE_CONNECTIONS 64

static char counted; /* socket_context of connections the router counted */

const char *http_arg(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

const char *http_header(struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void http_client_ip(struct http_request *req, char ip[LIMITS_IP_MAX])
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	limits_client_ip(ci ? ci->client_addr : NULL,
			 http_header(req, "X-Forwarded-For"), ip);
}

/* The socket under conn, -1 if MHD does not say. */
static int connection_fd(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci ? ci->connect_fd : -1;
}

/* ?transport=ws that reached libmicrohttpd: it carried no upgrade (the
 * router gives every upgrade to libwebsockets). */
static int ws_refuse(struct http_request *req)
{
	return http_reply_error(
		req->conn, 400, "upgrade_required",
		"transport=ws needs a WebSocket upgrade with "
		"Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
}

static void ws_refused(struct http_request *req)
{
	(void)req;
}

static const struct mhd_guest mhd_ws = { ws_refuse, ws_refused };

/* libmicrohttpd's half of the transports that are not streams, by id */
static const struct mhd_guest *const guests[TRANSPORT_COUNT] = {
	[TRANSPORT_POLL] = &mhd_poll,
	[TRANSPORT_LONGPOLL] = &mhd_longpoll,
	[TRANSPORT_WS] = &mhd_ws,
};

/* The table that serves a subscribe (req->transport is set): every stream
 * technique (stream.h) is http_stream.c's, so a new one needs no line
 * here. */
static const struct mhd_guest *guest_of(const struct http_request *req)
{
	if (stream_of(req->transport))
		return &mhd_stream;
	return guests[req->transport->id];
}

static int subscribe(struct http_request *req, const char *list)
{
	struct http_route_sub in = {
		.list = list,
		.transport = http_arg(req, "transport"),
		.upgrade = http_header(req, "Upgrade"),
		.accept = http_header(req, "Accept"),
		.last_event_id = http_header(req, "Last-Event-ID"),
		.since = http_arg(req, "since"),
		.client = http_arg(req, "client"),
		.presence = http_arg(req, "presence"),
	};
	struct http_route_error err = { 0 };
	int r;

	r = http_route_subscribe(&in, req, &err);
	if (err.transport) {
		/* a refusal after the pick is a request of that transport */
		cost_request(err.transport->id);
		/* what earlier requests on this connection wrote is theirs:
		 * MHD handed all of it to the socket before reading this one */
		req->fd = connection_fd(req->conn);
		req->bytes_base = cost_written(req->fd);
	}
	if (r < 0)
		return http_reply_error(req->conn, err.status, err.code,
					err.message);
	r = http_auth_subscribe(req);
	if (r != -1)
		return r;
	metrics_add(&metrics.subscriptions[req->transport->id], 1);
	return guest_of(req)->serve(req);
}

static int preflight(struct http_request *req)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		0, NULL, MHD_RESPMEM_PERSISTENT);

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Access-Control-Allow-Methods",
				"GET, POST, OPTIONS");
	MHD_add_response_header(resp, "Access-Control-Allow-Headers",
				"Content-Type, X-Client-Id, Last-Event-ID, "
				"Idempotency-Key, Authorization");
	MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	return http_reply_queue(req->conn, 204, resp);
}

static int method_not_allowed(struct http_request *req)
{
	return http_reply_error(req->conn, 405, "method_not_allowed",
				"this path takes GET or POST");
}

static int channels(struct http_request *req, const char *method,
		    const char *rest)
{
	size_t len = strlen(rest);
	const char *suffix = "/info";

	if (strcmp(method, "OPTIONS") == 0)
		return preflight(req);
	if (len > 5 && strcmp(rest + len - 5, suffix) == 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return method_not_allowed(req);
		return info_serve(req, rest, len - 5);
	}
	if (strcmp(method, "GET") == 0)
		return subscribe(req, rest);
	if (strcmp(method, "POST") == 0)
		return publish_serve(req, rest);
	return method_not_allowed(req);
}

static int metrics_page(struct http_request *req)
{
	int r = auth_open() || req->srv->cfg->metrics_public ?
			-1 :
			http_auth_admin(req);
	size_t len, loads[WS_LOOPS_MAX];
	size_t nloops = ws_loads(req->srv->ws, loads, WS_LOOPS_MAX);
	char *text;
	struct MHD_Response *resp;

	if (r != -1)
		return r;
	text = metrics_render(req->srv->bus, req->srv->cap, loads, nloops,
			      &len);
	resp = MHD_create_response_from_buffer(len, text,
					       MHD_RESPMEM_MUST_FREE);

	/* MHD frees text with the response, so without one it is ours */
	if (resp == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
				"text/plain; version=0.0.4");
	return http_reply_queue(req->conn, 200, resp);
}

static int dispatch(struct http_request *req, const char *url,
		    const char *method)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (strncmp(url, CHANNELS_PREFIX, strlen(CHANNELS_PREFIX)) == 0)
		return channels(req, method, url + strlen(CHANNELS_PREFIX));
	if (strcmp(url, "/healthz") == 0 && get && req->srv->redis &&
	    !redis_engine_healthy(req->srv->redis)) {
		static const char degraded[] =
			"{\"status\":\"degraded\",\"redis\":\"unreachable\"}";

		return http_reply_json(req->conn, 503, degraded,
				       sizeof degraded - 1);
	}
	if (strcmp(url, "/healthz") == 0 && get)
		return http_reply_json(req->conn, 200, "{\"status\":\"ok\"}",
				       15);
	if (strcmp(url, "/metrics") == 0 && get)
		return metrics_page(req);
	if (strncmp(url, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) == 0)
		return admin_serve(req, url, method);
	if (strcmp(url, "/ws") == 0 && !transport_enabled(&transport_ws))
		return http_reply_error(req->conn, 404, "transport_disabled",
					"this transport is disabled here");
	if (strcmp(url, "/ws") == 0)
		return http_reply_error(
			req->conn, 400, "upgrade_required",
			"/ws needs a WebSocket upgrade with "
			"Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
	if (strcmp(method, "OPTIONS") == 0)
		return preflight(req);
	if (!get)
		return method_not_allowed(req);
	return static_files_serve(req, url);
}

/* Keep the body, up to the message limit; past it, drain and remember. */
static void take_body(struct http_request *req, const char *data, size_t len)
{
	size_t limit = config_live(req->srv->cfg, max_message);

	if (req->too_large || req->body_len + len > limit) {
		req->too_large = true;
		return;
	}
	req->body = xrealloc(req->body, req->body_len + len + 1);
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
}

/* MHD 0.9.75 takes the first of two Content-Length headers; a proxy in
 * front may take the other. That disagreement is how requests are
 * smuggled, so refuse it, and Content-Length with Transfer-Encoding.
 * MHD also keeps a name with blanks before its colon ("Content-Length :")
 * but ignores it for framing, and reads a body of any Transfer-Encoding
 * but chunked until the connection closes. The router refuses all this
 * in a connection's first head; later requests on a keep-alive
 * connection are only seen here. */
static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	unsigned *n = cls;

	(void)kind;
	if (strcasecmp(key, "Content-Length") == 0) {
		n[0]++;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		n[1]++;
		if (value == NULL || strcasecmp(value, "chunked") != 0)
			n[2]++;
	} else if (strpbrk(key, " \t")) {
		n[2]++;
	}
	return MHD_YES;
}

static bool framing_ambiguous(struct MHD_Connection *conn)
{
	unsigned n[3] = { 0, 0, 0 };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length, n);
	return n[0] > 1 || n[1] > 1 || (n[0] && n[1]) || n[2];
}

/* Percent-decoding as MHD does it, except for %00: http_route.h. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return http_route_unescape(s);
}

static enum MHD_Result handle(struct http_request *req, const char *url,
			      const char *method, const char *upload_data,
			      size_t *upload_size)
{
	if (req->transport)
		return (enum MHD_Result)guest_of(req)->serve(req);
	if (req->wait)
		return (enum MHD_Result)req->wait_ops->answer(req);
	if (*upload_size) {
		if (!req->dispatched)
			take_body(req, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->dispatched)
		return MHD_YES;
	req->dispatched = true;
	return (enum MHD_Result)dispatch(req, url, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	struct http_request *req = *con_cls;
	uint64_t cpu;
	enum MHD_Result r;

	if (req == NULL) {
		req = xcalloc(1, sizeof *req);
		req->opened_ms = bus_now_ms();
		req->srv = cls;
		req->conn = conn;
		req->fd = -1; /* set once a transport is picked */
		req->is_post = strcmp(method, "POST") == 0;
		req->http_1_0 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
		*con_cls = req;
		if (framing_ambiguous(conn)) {
			req->dispatched = true;
			return (enum MHD_Result)http_reply_error(
				conn, 400, "bad_request",
				"conflicting or malformed "
				"Content-Length/Transfer-Encoding headers");
		}
		if (!http_reply_origin_allowed(conn)) {
			req->dispatched = true;
			metrics_add(&metrics.origin_refused, 1);
			return (enum MHD_Result)http_reply_error(
				conn, 403, "origin_not_allowed",
				"pages on this origin may not use the gateway "
				"(--allow-origin)");
		}
		return MHD_YES;
	}
	if (req->is_post) /* publishes are no transport's: no clock */
		return handle(req, url, method, upload_data, upload_size);
	cpu = cost_cpu_now();
	r = handle(req, url, method, upload_data, upload_size);
	if (req->transport)
		cost_cpu(req->transport->id, cpu);
	return r;
}

static const char *end_reason(enum MHD_RequestTerminationCode why)
{
	switch (why) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK:
		return "reply complete";
	case MHD_REQUEST_TERMINATED_WITH_ERROR:
		return "ended by the gateway (error, cut or stop)";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
		return "idle timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
		return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR:
		return "read error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
		return "peer closed";
	}
	return "unknown";
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode why)
{
	struct http_request *req = *con_cls;

	(void)cls;
	(void)conn;
	if (req == NULL)
		return;
	/* the channel list, never the URL: a query may carry a secret */
	if (req->transport)
		log_debug("closed %s /channels/%s after %.3f s, %lu messages "
			  "sent: %s",
			  req->transport->name, req->path ? req->path : "",
			  (double)(bus_now_ms() - req->opened_ms) / 1000,
			  req->sent, end_reason(why));
	else
		log_debug("request done (plain), reason %d", (int)why);
	if (req->transport) {
		uint64_t cpu = cost_cpu_now();

		guest_of(req)->finish(req);
		cost_cpu(req->transport->id, cpu);
		/* the reply has been handed to the socket by now */
		cost_bytes(req->transport->id, req->fd, &req->bytes_base);
	}
	if (req->wait)
		req->wait_ops->free(req);
	free(req->body);
	free(req->path);
	free(req->since);
	free(req);
	*con_cls = NULL;
}

/* The router took a --max-connections slot for every connection it hands
 * over; give it back when MHD closes one. Its pokes (http_poke) are Unix
 * sockets and were never counted. STARTED and CLOSED come in pairs. With
 * --max-conns-per-ip the router also parked the connection's count per
 * client IP under its socket (ipconns_park): it becomes the socket
 * context instead of the marker, and is given back with the slot. */
static void on_connection(void *cls, struct MHD_Connection *conn,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *srv = cls;
	const union MHD_ConnectionInfo *ci;
	void *mark = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct ipconn *ipc = NULL;

		ci = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci == NULL || ci->client_addr->sa_family == AF_UNIX)
			return;
		if (ipconns_on()) {
			ci = MHD_get_connection_info(
				conn, MHD_CONNECTION_INFO_CONNECTION_FD);
			ipc = ci ? ipconns_claim(ci->connect_fd) : NULL;
		}
		*socket_context = ipc ? (void *)ipc : &counted;
		atomic_fetch_add(&srv->http_conns, 1);
	} else if (mark != NULL) {
		*socket_context = NULL;
		atomic_fetch_sub(&srv->http_conns, 1);
		if (mark != &counted)
			ipconns_give(mark);
		capacity_give_connection(srv->cap);
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("libmicrohttpd: %s", line);
}

struct MHD_Daemon *http_start(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	unsigned long threads = config_http_threads(cfg);
	unsigned flags = MHD_USE_NO_LISTEN_SOCKET |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem pool[] = {
		{ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads,
		  NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_Daemon *d;

	/* a pool of 1 is refused with a warning: leave it out */
	if (threads < 2)
		pool[0].option = MHD_OPTION_END;
	d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, srv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)((cfg->max_connections + MHD_SPARE_CONNECTIONS) *
			   (threads > 1 ? threads : 1)),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->http_memory,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_ARRAY,
		pool, MHD_OPTION_END);
	if (d == NULL)
		log_error("libmicrohttpd failed to start");
	return d;
}

/* A duplicate of fd whose number is `want` modulo n, or -1. F_DUPFD
 * takes the lowest free number at or above its argument: ask for the
 * next number of the class, and when that one is taken, for the next
 * one above what came back. Above the highest open fd every number is
 * free, so this ends at once there; the bound is for a table whose low
 * holes all have other classes. */
static int dup_in_class(int fd, unsigned want, unsigned n)
{
	int from = 0;

	for (int i = 0; i < POKE_TRIES; i++) {
		int min = from + (int)((want + n - (unsigned)from % n) % n);
		int d = fcntl(fd, F_DUPFD_CLOEXEC, min);

		if (d < 0)
			return -1;
		if ((unsigned)d % n == want)
			return d;
		close(d);
		from = d + 1;
	}
	return -1;
}

static void poke_worker(struct MHD_Daemon *d, unsigned worker, unsigned workers)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		return;
	close(sv[1]);
	fd = sv[0];
	if ((unsigned)fd % workers != worker) {
		int dup = dup_in_class(fd, worker, workers);

		/* failing that, poke whichever worker fd picks */
		if (dup >= 0) {
			close(fd);
			fd = dup;
		}
	}
	/* MHD owns fd now, and closes it even if the call fails */
	MHD_add_connection(d, fd, (struct sockaddr *)&addr, sizeof addr);
}

/* libmicrohttpd 0.9.75 can sleep with work pending: when epoll_wait fills
 * its 128-event batch it waits again with the full timeout (up to the
 * 60 s connection timeout) while connections it already marked ready
 * sit unprocessed. Measured with bench/loadgen: 1,000 SSE subscribers
 * opened at once waited 15-33 s for their welcome in 3 of 4 runs. Adding
 * a connection signals MHD's inter-thread channel, which ends any such
 * wait; a socket whose peer is already closed is dropped at once.
 *
 * With a thread pool each worker has its own epoll set and channel, and
 * MHD_add_connection hands the socket to worker (fd % workers), the
 * first with room counting up from there (daemon.c, MHD_add_connection:
 * worker_pool[(i + client_socket) % worker_pool_size]). A fresh
 * socketpair gets the lowest free numbers, the same ones every 100 ms,
 * so one worker got every poke and the others could sleep for a minute.
 * So each worker gets its own socket, numbered to land on it.
 *
 * Only a worker with connections can be caught so, and the pokes cost
 * CPU (a socketpair and a connection per worker, 10 times a second: 80 %
 * of an idle gateway's CPU): the router pokes only while MHD holds client
 * connections (server.http_conns). Held streams live on the lws loops. */
void http_poke(struct MHD_Daemon *d, unsigned workers)
{
	if (workers < 2)
		workers = 1;
	for (unsigned w = 0; w < workers; w++)
		poke_worker(d, w, workers);
}

void http_stop(struct MHD_Daemon *d)
{
	if (d)
		MHD_stop_daemon(d);
}
