/* libFuzzer target: the static file path check. The input is a URL path
 * as a client sends it; it is percent-decoded as libmicrohttpd does with
 * our callback (http_route_unescape), "/" becomes "/index.html" as in
 * static_files.c, and static_path_safe decides.
 *
 * The oracle is written here from what the check must guarantee, not
 * from how it does it. A path it accepts:
 * - starts with '/', holds no NUL (the decoding turns %00 into 0x7F), no
 *   backslash, and fits the open path's buffer (STATIC_PATH_MAX);
 * - resolved segment by segment the way the kernel would ("." stays,
 *   ".." goes up, empty segments vanish) never climbs above the web root,
 *   and resolves to exactly itself: no ".", no "..", no empty segment but
 *   a trailing slash (a folder, never served), so what is opened is what
 *   was checked;
 * - names no hidden file or folder (no segment starts with '.').
 * And it is not a check that refuses everything: a path of plain
 * segments ([A-Za-z0-9_-] first, then [A-Za-z0-9_.-]) that fits must be
 * accepted. */
#include "http_route.h"
#include "static_path.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void fail(const char *what, const char *path)
{
	fprintf(stderr, "fuzz_static_path: %s\n  path: %s\n", what, path);
	abort();
}

static bool plain(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       (!first && c == '.');
}

/* Whether the accepted path stays beneath the root and is its own
 * resolution; sets *hidden if a segment starts with a dot. */
static bool beneath_as_is(const char *p, bool *hidden)
{
	long depth = 0;
	bool as_is = true;

	*hidden = false;
	for (const char *seg = p + 1;; seg++) {
		size_t len = strcspn(seg, "/");

		/* a trailing slash names the folder itself, which is no
		 * regular file: static_files.c answers 404 */
		if (len == 0 && seg[0] == '\0' && seg > p + 1) {
			return as_is;
		} else if (len == 0 || (len == 1 && seg[0] == '.')) {
			as_is = false;
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			as_is = false;
			if (--depth < 0)
				return false;
		} else {
			depth++;
		}
		if (len && seg[0] == '.')
			*hidden = true;
		seg += len;
		if (*seg == '\0')
			return as_is;
	}
}

static bool all_plain(const char *p)
{
	if (p[0] != '/' || p[1] == '\0')
		return false;
	for (const char *seg = p + 1;; seg++) {
		size_t len = strcspn(seg, "/");

		if (len == 0 || !plain(seg[0], true))
			return false;
		for (size_t i = 1; i < len; i++)
			if (!plain(seg[i], false))
				return false;
		seg += len;
		if (*seg == '\0')
			return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a URL holds no NUL: libmicrohttpd's strings end at the first */
	size_t len = strnlen((const char *)data, size);
	char *path = malloc(len + 1);
	const char *url = path;
	size_t n;
	bool hidden;

	memcpy(path, data, len);
	path[len] = '\0';
	n = http_route_unescape(path);
	if (strlen(path) != n)
		fail("a NUL out of the decoding", path);
	if (strcmp(url, "/") == 0)
		url = "/index.html";
	if (static_path_safe(url)) {
		if (url[0] != '/' || strchr(url, '\\') ||
		    strlen(url) > STATIC_PATH_MAX)
			fail("accepted: not an absolute path that fits", url);
		if (!beneath_as_is(url, &hidden))
			fail("accepted: not its own resolution beneath the root",
			     url);
		if (hidden)
			fail("accepted: a hidden file or folder", url);
	} else if (all_plain(url) && strlen(url) <= STATIC_PATH_MAX) {
		fail("refused: a plain path", url);
	}
	free(path);
	return 0;
}
