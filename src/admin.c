/* Each route checks the API key first, so without --api-key-file every
 * admin request is 401: there is no admin API in open mode. The list is
 * built with cJSON from a copy the bus made under its lock, so the lock
 * is not held while the reply is written. */
#include "admin.h"

#include "bus.h"
#include "http.h"
#include "http_auth.h"
#include "http_reply.h"
#include "log.h"
#include "server.h"
#include "validate.h"

#include <cJSON.h>
#include <microhttpd.h>
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

static int delete_channel(struct http_request *req, const char *name)
{
	char body[CHANNEL_NAME_MAX + 32];

	if (!channel_name_valid(name, strlen(name)))
		return http_reply_error(req->conn, 400, "bad_channel",
					"delete one channel named "
					"[A-Za-z0-9_.:~-]{1,200}");
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
