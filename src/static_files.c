/* Static files for the demo and the browser client. Paths are refused,
 * not cleaned: any segment that is empty, "." or starts with a dot (which
 * covers ".." and hidden files) is a 404, and symlinks are not followed
 * out of the folder. */
#include "static_files.h"

#include "http.h"
#include "http_reply.h"
#include "server.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
	const char *ext, *type;
} types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static int path_safe(const char *p)
{
	if (p[0] != '/' || strlen(p) > 512)
		return 0;
	for (const char *seg = p + 1; *seg;) {
		size_t len = strcspn(seg, "/");

		if (len == 0 || seg[0] == '.')
			return 0;
		seg += len;
		if (*seg == '/')
			seg++;
	}
	return strchr(p, '\\') == NULL;
}

static int not_found(struct http_request *req)
{
	return http_reply_error(req->conn, 404, "not_found", "no such path");
}

int static_files_serve(struct http_request *req, const char *url)
{
	char path[1024];
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if (strcmp(url, "/") == 0)
		url = "/index.html";
	if (!path_safe(url))
		return not_found(req);
	snprintf(path, sizeof path, "%s%s", req->srv->cfg->web_root, url);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return not_found(req);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return not_found(req);
	}
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	MHD_add_response_header(resp, "Content-Type", content_type(url));
	return http_reply_queue(req->conn, 200, resp);
}
