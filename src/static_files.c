/* Static files for the demo and the browser client. Paths are refused,
 * not cleaned: any segment that is empty, "." or starts with a dot (which
 * covers ".." and hidden files) is a 404 (static_path.c), and no symlink
 * is followed under the web root, neither a file nor a folder on the way
 * to it: a link could point anywhere. O_NOFOLLOW alone covers only the last
 * component, so the file is opened with openat2() and
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (Linux 5.6; glibc 2.36 has no
 * wrapper, hence syscall()). Where the kernel lacks openat2, the path is
 * walked one component at a time with O_NOFOLLOW. The web root itself
 * may be a symlink: the operator chose it. */
#include "static_files.h"

#include "http.h"
#include "http_reply.h"
#include "server.h"
#include "static_path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

static int not_found(struct http_request *req)
{
	return http_reply_error(req->conn, 404, "not_found", "no such path");
}

/* The fallback: one component at a time, none of them a symlink. rel has
 * passed static_path_safe, so no component is "." or ".." (an empty last
 * one, from a trailing slash, just fails to open). */
static int open_walk(int root, const char *rel)
{
	char part[STATIC_PATH_MAX + 1];
	int dir = root, fd = -1;

	for (;;) {
		size_t len = strcspn(rel, "/");

		snprintf(part, sizeof part, "%.*s", (int)len, rel);
		if (rel[len] == '\0') {
			fd = openat(dir, part,
				    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			break;
		}
		fd = openat(dir, part,
			    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir != root)
			close(dir);
		if (fd < 0)
			return -1;
		dir = fd;
		rel += len + 1;
	}
	if (dir != root)
		close(dir);
	return fd;
}

/* Open rel (no leading slash) under the folder root without following
 * any symlink; -1 if that is not possible. */
static int open_beneath(const char *root, const char *rel)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd;

	if (dir < 0)
		return -1;
	fd = (int)syscall(SYS_openat2, dir, rel, &how, sizeof how);
	/* ENOSYS: a kernel before 5.6; some container seccomp profiles
	 * answer EPERM for system calls they do not know */
	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		fd = open_walk(dir, rel);
	close(dir);
	return fd;
}

int static_files_serve(struct http_request *req, const char *url)
{
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if (strcmp(url, "/") == 0)
		url = "/index.html";
	if (!static_path_safe(url))
		return not_found(req);
	fd = open_beneath(req->srv->cfg->web_root, url + 1);
	if (fd < 0)
		return not_found(req);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return not_found(req);
	}
	/* MHD closes fd with the response, but not when it cannot make one */
	resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (resp == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", content_type(url));
	return http_reply_queue(req->conn, 200, resp);
}
