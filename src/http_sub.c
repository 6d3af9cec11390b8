/* MHD rules this file keeps (why: docs/internals/threading.md,
 * transports.md):
 * - exactly one resume per suspend: park and wake run under the bus lock,
 *   and the bus flips `parked` under the same lock;
 * - a suspended connection never notices its peer leaving, so the fd is
 *   registered with the watcher, keyed by subscriber id, and removed in
 *   the completed notification, before MHD closes the fd. */
#include "http_sub.h"

#include "http.h"
#include "http_reply.h"
#include "server.h"
#include "watcher.h"
#include "xalloc.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <sys/socket.h>

int http_sub_start_synced(struct http_sub *hs)
{
	struct http_request *req = hs->req;

	switch (bus_start_synced(req->srv->bus, &hs->sub, req->channels.count,
				 hs->cursor)) {
	case BUS_START_GONE:
		return MHD_NO;
	case BUS_START_PARKED:
		return MHD_YES; /* waiting on Redis */
	case BUS_START_LATE:
		http_sub_close(hs);
		return http_reply_error(req->conn, 503, "redis_unavailable",
					"Redis did not answer in time; retry");
	case BUS_START_GO:
		break;
	}
	return -1;
}

int http_sub_open(struct http_sub *hs, struct http_request *req,
		  uint64_t deadline_ms, uint64_t period_ms, bool announce)
{
	const union MHD_ConnectionInfo *ci;
	enum bus_error err;

	hs->req = req;
	hs->sub.transport = req->transport;
	hs->sub.host = &host_mhd;
	hs->sub.conn = req->conn;
	hs->sub.deadline_ms = deadline_ms;
	hs->sub.period_ms = period_ms;
	hs->sub.announce = announce;
	snprintf(hs->sub.client, sizeof hs->sub.client, "%s", req->client);
	ci = MHD_get_connection_info(req->conn,
				     MHD_CONNECTION_INFO_CONNECTION_FD);
	hs->fd = ci ? ci->connect_fd : -1;
	/* --new-channels-per-ip: a subscribe (a poll too) creates the
	 * channels it names that do not exist */
	if (limits_new_channels_on()) {
		char ip[LIMITS_IP_MAX];
		unsigned retry = 1;

		http_client_ip(req, ip);
		if (!limits_new_channels(ip,
					 bus_channels_missing(req->srv->bus,
							      &req->channels),
					 bus_now_ms(), &retry))
			return http_reply_channel_rate_limited(req->conn,
							       retry);
	}
	hs->cursor = xcalloc(req->channels.count, sizeof *hs->cursor);
	err = bus_attach(req->srv->bus, &hs->sub, &req->channels,
			 req->has_since ? req->since : NULL, hs->cursor);
	if (err != BUS_OK)
		http_sub_close(hs);
	if (err == BUS_SHUTTING_DOWN)
		return http_reply_error(req->conn, 503, "shutting_down",
					"the gateway is restarting; retry");
	if (err == BUS_TOO_MANY_CHANNELS)
		return http_reply_error(req->conn, 503, "over_capacity",
					"too many channels");
	hs->attached = true;
	return -1;
}

void http_sub_close(struct http_sub *hs)
{
	if (hs->watched)
		watcher_remove(hs->req->srv->watcher, hs->fd);
	hs->watched = false;
	if (hs->attached)
		bus_detach(hs->req->srv->bus, &hs->sub);
	hs->attached = false;
	free(hs->cursor);
	hs->cursor = NULL;
}

void http_sub_advance(struct http_sub *hs, const struct bus_item *items,
		      size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (items[i].msg)
			hs->req->sent++;
		hs->cursor[items[i].tap].epoch = items[i].epoch;
		hs->cursor[items[i].tap].id = items[i].cursor;
	}
}

size_t http_sub_cursor(const struct http_sub *hs, char *buf)
{
	return cursor_format(hs->cursor, hs->req->channels.count, buf);
}

/* Under the bus lock (see sub_host.h). The first park registers the fd
 * with the watcher: from then on a vanished peer is noticed at once. */
static void mhd_park(struct subscriber *sub)
{
	struct http_sub *hs = (struct http_sub *)sub;

	if (!hs->watched && hs->fd >= 0)
		hs->watched = watcher_add(hs->req->srv->watcher, hs->fd,
					  sub->id) == 0;
	MHD_suspend_connection(sub->conn);
}

static void mhd_wake(struct subscriber *sub)
{
	MHD_resume_connection(sub->conn);
}

/* The subscriber stopped reading: MHD is waiting for POLLOUT that will
 * not come. Shutting the socket down makes that wait fail now. The fd is
 * still open: MHD closes it only after the completed notification, which
 * detaches us first, under the lock we hold here. */
static void mhd_cut(struct subscriber *sub)
{
	struct http_sub *hs = (struct http_sub *)sub;

	if (hs->fd >= 0)
		shutdown(hs->fd, SHUT_RDWR);
}

const struct sub_host host_mhd = {
	.name = "libmicrohttpd",
	.park = mhd_park,
	.wake = mhd_wake,
	.cut = mhd_cut,
};
