/* Start and stop order. Stopping follows the notes on both libraries:
 * MHD aborts if stopped with suspended connections, so the bus first ends
 * every subscriber (held ones are resumed and finish their replies or
 * streams), we wait for them to go, and only then stop the libraries. */
#include "server.h"

#include "auth.h"
#include "bus.h"
#include "capacity.h"
#include "http.h"
#include "log.h"
#include "lws_guests.h"
#include "redis_engine.h"
#include "router.h"
#include "watcher.h"
#include "ws.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* What the libwebsockets loops serve. A plain HTTP request goes to the
 * first guest whose callback takes it; the WebSocket protocol gets the
 * rest. */
static const struct ws_http_guest *const lws_http_guests[] = {
	&lws_longpoll_guest,
	&lws_stream_guest,
	NULL,
};
static const struct ws_guests lws_guests = {
	.ws = &lws_ws_protocol,
	.alive = &lws_ws_alive,
	.http = lws_http_guests,
};

#define LOG_PREFIX "server"
#define DRAIN_MS 3000
/* descriptors besides connections: listening socket, epoll sets,
 * eventfds, the log, static files being served */
#define FD_SPARE 64

/* Every connection is a descriptor, and the usual soft limit of 1024
 * would stop WebSockets and streams long before --max-connections (and
 * make accept fail with EMFILE). The hard limit is what the system
 * allows this process, so take all of it. */
static void raise_fd_limit(const struct config *cfg)
{
	unsigned long long need = (unsigned long long)cfg->max_connections +
				  cfg->max_pending + FD_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t was = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			log_info("open files: raised the limit from %llu to "
				 "%llu",
				 (unsigned long long)was,
				 (unsigned long long)rl.rlim_max);
		} else {
			log_warn("open files: cannot raise the limit from "
				 "%llu: %s",
				 (unsigned long long)was, strerror(errno));
			rl.rlim_cur = was;
		}
	} else {
		log_info("open files: limit %llu",
			 (unsigned long long)rl.rlim_cur);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warn("open files: the limit %llu is below "
			 "--max-connections + --max-pending + %d (%llu): "
			 "connections past it fail to be accepted",
			 (unsigned long long)rl.rlim_cur, FD_SPARE, need);
}

static struct bus_config bus_config_of(const struct config *cfg)
{
	return (struct bus_config){
		.history_size = cfg->history_size,
		.history_age_ms = (uint64_t)cfg->history_age * 1000,
		.history_bytes = cfg->history_memory,
		.max_channels = cfg->max_channels,
		.lag_limit = cfg->outq_limit,
		.presence_window_ms = (uint64_t)cfg->presence_window * 1000,
		.max_pollers = cfg->max_pollers,
		.idem_window_ms = (uint64_t)cfg->idempotency_window * 1000,
		.max_idem_keys = cfg->idempotency_keys,
	};
}

static struct bus *make_bus(const struct config *cfg)
{
	struct bus_config bc = bus_config_of(cfg);

	return bus_new(&bc);
}

void server_reconfigure(struct server *srv)
{
	struct bus_config bc = bus_config_of(srv->cfg);

	log_set_level(log_level_parse(srv->cfg->log_level));
	log_set_format(log_format_parse(srv->cfg->log_format));
	bus_set_limits(srv->bus, &bc);
}

/* --redis: make the bus a node of the Redis engine before anything can
 * create a channel. */
static int start_redis(struct server *srv, const struct config *cfg)
{
	struct redis_target shards[REDIS_SHARDS_MAX];
	char why[160];
	int n = redis_url_list_parse(cfg->redis, shards, why, sizeof why);
	struct redis_engine_config ec = {
		.shards = shards,
		.history_size = cfg->history_size,
		.history_age_ms = (uint64_t)cfg->history_age * 1000,
		.idem_window_ms = (uint64_t)cfg->idempotency_window * 1000,
	};

	if (n < 0) {
		log_error("%s", why);
		return -1;
	}
	ec.nshards = (size_t)n;
	srv->redis = redis_engine_start(&ec, srv->bus);
	return srv->redis ? 0 : -1;
}

int server_start(struct server *srv, const struct config *cfg)
{
	memset(srv, 0, sizeof *srv);
	srv->cfg = cfg;
	raise_fd_limit(cfg);
	if (auth_init(cfg->token_secret_file, cfg->api_key_file,
		      cfg->public_channels) < 0)
		return -1;
	srv->cap = capacity_new(cfg->max_connections, config_max_streams(cfg));
	srv->bus = make_bus(cfg);
	if (cfg->redis[0] == '\0' || start_redis(srv, cfg) == 0)
		srv->watcher = watcher_start(srv->bus);
	if (srv->watcher)
		srv->mhd = http_start(srv);
	if (srv->mhd)
		srv->ws = ws_start(srv, config_threads(cfg), &lws_guests);
	if (srv->ws)
		srv->router = router_start(srv);
	if (srv->router == NULL) {
		server_stop(srv);
		return -1;
	}
	return 0;
}

/* Wait until held subscribers have left, or give up after DRAIN_MS (a
 * peer that never reads keeps its stream; stopping MHD closes it). */
static void drain(struct bus *bus)
{
	uint64_t until = bus_now_ms() + DRAIN_MS;

	while (bus_now_ms() < until) {
		size_t held = bus_subscribers_of(bus, TRANSPORT_SSE) +
			      bus_subscribers_of(bus, TRANSPORT_LONGPOLL) +
			      bus_subscribers_of(bus, TRANSPORT_WS);

		if (held == 0)
			return;
		usleep(10000);
	}
	log_warn("some subscribers did not finish in time; closing them");
}

void server_stop(struct server *srv)
{
	router_stop(srv->router);
	srv->router = NULL;
	if (srv->bus) {
		bus_shutdown(srv->bus);
		if (srv->mhd)
			drain(srv->bus);
	}
	/* publishes waiting for Redis are answered (503) and resumed:
	 * MHD must not stop with them suspended */
	redis_engine_stop(srv->redis);
	http_stop(srv->mhd);
	srv->mhd = NULL;
	ws_stop(srv->ws);
	srv->ws = NULL;
	watcher_stop(srv->watcher);
	srv->watcher = NULL;
	/* after every part that may still queue work (ws leaves) */
	redis_engine_free(srv->redis);
	srv->redis = NULL;
	if (srv->bus)
		bus_free(srv->bus);
	srv->bus = NULL;
	capacity_free(srv->cap);
	srv->cap = NULL;
	auth_shutdown();
}

void server_fail(struct server *srv)
{
	atomic_store(&srv->failed, true);
	/* every thread blocks SIGTERM, so it waits for main's sigwait */
	kill(getpid(), SIGTERM);
}

bool server_failed(struct server *srv)
{
	return atomic_load(&srv->failed);
}
