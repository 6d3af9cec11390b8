/* Each route checks the API key first, so without --api-key-file every
 * admin request is 401: there is no admin API in open mode. The list is
 * built with cJSON from a copy the bus made under its lock, so the lock
 * is not held while the reply is written. With --redis, a delete and a
 * disconnect reach every node through the engine (a control message in
 * Redis), the request suspended until Redis answered; the list stays
 * this node's. */
#include "admin.h"

#include "bus.h"
#include "http.h"
#include "http_auth.h"
#include "http_reply.h"
#include "log.h"
#include "redis_engine.h"
#include "server.h"
#include "validate.h"
#include "xalloc.h"

#include <cJSON.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_PREFIX "admin"

static int reply_json_text(struct http_request *req, unsigned status,
			   char *text)
{
	int r;

	if (text == NULL)
		return MHD_NO;
	r = http_reply_json(req->conn, status, text, strlen(text));
	free(text);
	return r;
}

static int list_channels(struct http_request *req)
{
	struct bus_channel_row *rows;
	size_t n = bus_channels(req->srv->bus, &rows);
	cJSON *doc = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(doc, "channels");
	char *text;

	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", rows[i].name);
		cJSON_AddNumberToObject(o, "last_id", (double)rows[i].last_id);
		cJSON_AddNumberToObject(o, "retained",
					(double)rows[i].retained);
		cJSON_AddNumberToObject(o, "subscribers",
					(double)rows[i].subscribers);
		cJSON_AddItemToArray(arr, o);
	}
	free(rows);
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return reply_json_text(req, 200, text);
}

/* A delete or disconnect suspended until the engine answers. */
struct admin_wait {
	struct MHD_Connection *conn;
	atomic_bool ready;
	bool is_delete;
	bool here;     /* delete: the channel existed on this node */
	size_t here_n; /* disconnect: connections ended on this node */
	long long n;   /* the engine's answer: -1 Redis unreachable */
	char name[CHANNEL_NAME_MAX + 1];
};

/* The engine's thread. */
static void on_admin(void *cls, long long n)
{
	struct admin_wait *w = cls;

	w->n = n;
	atomic_store(&w->ready, true);
	MHD_resume_connection(w->conn);
}

static void admin_wait_free(struct http_request *req)
{
	free(req->wait);
	req->wait = NULL;
}

static int admin_answer(struct http_request *req)
{
	struct admin_wait *w = req->wait;
	char body[CHANNEL_NAME_MAX + 64];
	int r;

	if (!atomic_load(&w->ready))
		return MHD_YES;
	if (w->n < 0)
		r = http_reply_error(req->conn, 503, "redis_unavailable",
				     w->is_delete ?
					     "Redis is unreachable: nothing "
					     "was deleted; retry" :
					     "Redis is unreachable: only this "
					     "node's connections were ended; "
					     "retry");
	else if (w->is_delete && w->n == 0 && !w->here)
		r = http_reply_error(req->conn, 404, "no_channel",
				     "there is no such channel");
	else if (w->is_delete)
		r = http_reply_json(req->conn, 200, body,
				    (size_t)snprintf(body, sizeof body,
						     "{\"deleted\":\"%s\"}",
						     w->name));
	else
		r = http_reply_json(
			req->conn, 200, body,
			(size_t)snprintf(
				body, sizeof body,
				"{\"disconnected\":%zu,\"nodes\":%lld}",
				w->here_n, w->n));
	if (w->is_delete && w->n > 0)
		log_info("channel %s deleted by the admin API", w->name);
	admin_wait_free(req);
	return r;
}

static const struct http_wait_ops admin_wait_ops = {
	.answer = admin_answer,
	.free = admin_wait_free,
};

static struct admin_wait *suspend(struct http_request *req, const char *name)
{
	struct admin_wait *w = xcalloc(1, sizeof *w);

	w->conn = req->conn;
	snprintf(w->name, sizeof w->name, "%s", name);
	req->wait = w;
	req->wait_ops = &admin_wait_ops;
	MHD_suspend_connection(req->conn);
	return w;
}

static int delete_channel(struct http_request *req, const char *name)
{
	char body[CHANNEL_NAME_MAX + 32];

	if (!channel_name_valid(name, strlen(name)))
		return http_reply_error(req->conn, 400, "bad_channel",
					"delete one channel named "
					"[A-Za-z0-9_.:~-]{1,200}");
	if (req->srv->redis) {
		struct bus_channel_info in;
		bool here = bus_info(req->srv->bus, name, strlen(name), &in) ==
			    0;
		struct admin_wait *w = suspend(req, name);

		/* this node's subscribers end when its engine hears the
		 * control message, as every other node's do */
		w->is_delete = true;
		w->here = here;
		redis_engine_delete(req->srv->redis, name, strlen(name),
				    on_admin, w);
		return MHD_YES;
	}
	if (bus_channel_delete(req->srv->bus, name, strlen(name)) < 0)
		return http_reply_error(req->conn, 404, "no_channel",
					"there is no such channel");
	log_info("channel %s deleted by the admin API", name);
	snprintf(body, sizeof body, "{\"deleted\":\"%s\"}", name);
	return http_reply_json(req->conn, 200, body, strlen(body));
}

static int disconnect_client(struct http_request *req, const char *client)
{
	char body[64];
	size_t n;

	if (!client_id_valid(client, strlen(client)))
		return http_reply_error(req->conn, 400, "bad_client",
					"client ids match [A-Za-z0-9_-]{1,64}");
	n = bus_disconnect_client(req->srv->bus, client);
	if (req->srv->redis) {
		struct admin_wait *w = suspend(req, client);

		/* the other nodes end theirs when they hear it */
		w->here_n = n;
		redis_engine_disconnect(req->srv->redis, client, on_admin, w);
		return MHD_YES;
	}
	snprintf(body, sizeof body, "{\"disconnected\":%zu}", n);
	return http_reply_json(req->conn, 200, body, strlen(body));
}

int admin_serve(struct http_request *req, const char *url, const char *method)
{
	static const char channels[] = ADMIN_PREFIX "channels";
	static const char clients[] = ADMIN_PREFIX "clients/";
	int r = http_auth_admin(req);

	if (r != -1)
		return r;
	if (strcmp(url, channels) == 0 && strcmp(method, "GET") == 0)
		return list_channels(req);
	if (strncmp(url, channels, sizeof channels - 1) == 0 &&
	    url[sizeof channels - 1] == '/' && strcmp(method, "DELETE") == 0)
		return delete_channel(req, url + sizeof channels);
	if (strncmp(url, clients, sizeof clients - 1) == 0 &&
	    strcmp(method, "DELETE") == 0)
		return disconnect_client(req, url + sizeof clients - 1);
	if (strcmp(url, channels) == 0 ||
	    strncmp(url, channels, sizeof channels - 1) == 0 ||
	    strncmp(url, clients, sizeof clients - 1) == 0)
		return http_reply_error(req->conn, 405, "method_not_allowed",
					"GET /admin/channels, DELETE "
					"/admin/channels/NAME, DELETE "
					"/admin/clients/ID");
	return http_reply_error(req->conn, 404, "not_found",
				"no such admin resource");
}
