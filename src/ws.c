/* The lws service thread. Wake-ups from other threads arrive as
 * lws_cancel_service(), which lws turns into one EVENT_WAIT_CANCELLED;
 * wakes coalesce, so that callback drains everything: sockets to adopt
 * and sessions on the ready list. A cancel is sent only when a list goes
 * from empty to non-empty, so a publish to 1,000 WebSocket subscribers
 * costs one eventfd write, not 1,000. */
#include "ws.h"

#include "capacity.h"
#include "log.h"
#include "server.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX "ws"

/* The opaque user data of every wsi the router counted: the router took
 * a connection and a stream slot for it (see router.c), given back once,
 * when lws destroys the wsi or fails to adopt the socket. */
static char counted;

struct ws {
	struct server *srv;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	pthread_t thread;
	atomic_bool stop;
	lws_retry_bo_t retry;
	pthread_mutex_t lock; /* guards the two lists below */
	int *adopt;
	size_t nadopt, adopt_cap;
	struct ws_ready_link ready; /* circular list head */
};

struct server *ws_server(struct ws *ws)
{
	return ws->srv;
}

void ws_adopt(struct ws *ws, int fd)
{
	bool first;

	pthread_mutex_lock(&ws->lock);
	if (ws->nadopt == ws->adopt_cap) {
		ws->adopt_cap = ws->adopt_cap ? ws->adopt_cap * 2 : 64;
		ws->adopt = xrealloc(ws->adopt,
				     ws->adopt_cap * sizeof *ws->adopt);
	}
	first = ws->nadopt == 0;
	ws->adopt[ws->nadopt++] = fd;
	pthread_mutex_unlock(&ws->lock);
	if (first)
		lws_cancel_service(ws->ctx);
}

void ws_ready(struct ws *ws, struct ws_ready_link *link)
{
	bool first = false;

	pthread_mutex_lock(&ws->lock);
	if (!link->queued) {
		first = ws->ready.next == &ws->ready;
		link->queued = true;
		link->prev = ws->ready.prev;
		link->next = &ws->ready;
		ws->ready.prev->next = link;
		ws->ready.prev = link;
	}
	pthread_mutex_unlock(&ws->lock);
	if (first && !atomic_load(&ws->stop))
		lws_cancel_service(ws->ctx);
}

static void unlink_ready(struct ws_ready_link *link)
{
	link->prev->next = link->next;
	link->next->prev = link->prev;
	link->queued = false;
}

void ws_unready(struct ws *ws, struct ws_ready_link *link)
{
	pthread_mutex_lock(&ws->lock);
	if (link->queued)
		unlink_ready(link);
	pthread_mutex_unlock(&ws->lock);
}

static void give_back(struct ws *ws)
{
	capacity_give_stream(ws->srv->cap);
	capacity_give_connection(ws->srv->cap);
}

static void adopt_pending(struct ws *ws)
{
	int *fds;
	size_t n;

	pthread_mutex_lock(&ws->lock);
	fds = ws->adopt;
	n = ws->nadopt;
	ws->adopt = NULL;
	ws->nadopt = ws->adopt_cap = 0;
	pthread_mutex_unlock(&ws->lock);
	for (size_t i = 0; i < n; i++) {
		lws_sock_file_fd_type fd = { .sockfd = fds[i] };

		struct lws *wsi;

		/* on failure lws closes the fd itself */
		wsi = lws_adopt_descriptor_vhost(
			ws->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, fd, NULL,
			NULL);
		if (wsi) {
			lws_set_opaque_user_data(wsi, &counted);
		} else {
			log_warn("lws could not adopt a connection");
			give_back(ws);
		}
	}
	free(fds);
}

/* Service thread: handle every session that asked, one at a time, taking
 * each off the list under the lock (servicing may queue it again). */
static void serve_ready(struct ws *ws)
{
	for (;;) {
		struct ws_ready_link *link = NULL;

		pthread_mutex_lock(&ws->lock);
		if (ws->ready.next != &ws->ready) {
			link = ws->ready.next;
			unlink_ready(link);
		}
		pthread_mutex_unlock(&ws->lock);
		if (link == NULL)
			return;
		transport_ws_service(link);
	}
}

/* Hooked in front of the protocol callback for the cross-thread wake. */
static int on_event(struct lws *wsi, enum lws_callback_reasons reason,
		    void *user, void *in, size_t len)
{
	const struct lws_protocols *p = transport_ws_protocols();

	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		struct ws *ws = lws_context_user(lws_get_context(wsi));

		adopt_pending(ws);
		serve_ready(ws);
		return 0; /* never -1 here: it breaks context destroy */
	}
	/* the last callback of every wsi, whether or not it got to be a
	 * WebSocket (lws 4.1.6 core-net/close.c) */
	if (reason == LWS_CALLBACK_WSI_DESTROY &&
	    lws_get_opaque_user_data(wsi) == &counted) {
		lws_set_opaque_user_data(wsi, NULL);
		give_back(lws_context_user(lws_get_context(wsi)));
	}
	return p[0].callback(wsi, reason, user, in, len);
}

static void lws_log(int level, const char *line)
{
	char buf[512];

	snprintf(buf, sizeof buf, "%s", line);
	buf[strcspn(buf, "\n")] = '\0';
	if (level & LLL_ERR)
		log_warn("libwebsockets: %s", buf);
	else
		log_debug("libwebsockets: %s", buf);
}

static void *ws_main(void *arg)
{
	struct ws *ws = arg;
	int r = 0;

	while (!atomic_load(&ws->stop) && r >= 0)
		r = lws_service(ws->ctx, 0);
	/* Nothing else serves WebSockets: ending this thread quietly would
	 * freeze every WebSocket client while the gateway looks healthy.
	 * Stop the gateway instead, so that clients reconnect elsewhere
	 * and a supervisor restarts it. */
	if (r < 0 && !atomic_load(&ws->stop)) {
		log_error("lws_service failed (%d): stopping the gateway", r);
		server_fail(ws->srv);
	}
	return NULL;
}

struct ws *ws_start(struct server *srv)
{
	static struct lws_protocols protocols[2];
	struct lws_context_creation_info info;
	struct ws *ws = xcalloc(1, sizeof *ws);
	static const uint32_t backoff[] = { 1000 };

	pthread_mutex_init(&ws->lock, NULL);
	ws->ready.next = ws->ready.prev = &ws->ready;
	ws->srv = srv;
	ws->retry = (lws_retry_bo_t){
		.retry_ms_table = backoff,
		.retry_ms_table_count = 1,
		.secs_since_valid_ping = (uint16_t)srv->cfg->ws_ping,
		.secs_since_valid_hangup = (uint16_t)srv->cfg->ws_hangup,
	};
	protocols[0] = transport_ws_protocols()[0];
	protocols[0].callback = on_event;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	info.retry_and_idle_policy = &ws->retry;
	info.user = ws;
	info.max_http_header_data = 8192;
	info.timeout_secs = (unsigned)srv->cfg->head_timeout;
	info.vhost_name = "default";
	ws->ctx = lws_create_context(&info);
	if (ws->ctx)
		ws->vh = lws_get_vhost_by_name(ws->ctx, "default");
	if (ws->ctx == NULL || ws->vh == NULL ||
	    pthread_create(&ws->thread, NULL, ws_main, ws) != 0) {
		log_error("cannot start libwebsockets");
		if (ws->ctx)
			lws_context_destroy(ws->ctx);
		free(ws);
		return NULL;
	}
	return ws;
}

void ws_stop(struct ws *ws)
{
	if (ws == NULL)
		return;
	atomic_store(&ws->stop, true);
	lws_cancel_service(ws->ctx);
	pthread_join(ws->thread, NULL);
	/* the service thread is gone, so this thread may own the context */
	lws_context_destroy(ws->ctx);
	for (size_t i = 0; i < ws->nadopt; i++)
		close(ws->adopt[i]);
	free(ws->adopt);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}
