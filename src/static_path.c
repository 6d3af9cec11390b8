/* Paths are refused, not cleaned: a path that needs cleaning is not one
 * our own pages link to. Refusing every segment that starts with a dot
 * refuses "." and ".." without having to decide what they would resolve
 * to, and keeps hidden files (.git, .htpasswd) hidden. The URL arrives
 * unescaped once (http.c turns %00 into 0x7F), so an encoded dot is a dot
 * here, and what is left encoded is a literal character of a file name. */
#include "static_path.h"

#include <string.h>

bool static_path_safe(const char *path)
{
	if (path[0] != '/' || strlen(path) > STATIC_PATH_MAX)
		return false;
	for (const char *seg = path + 1; *seg;) {
		size_t len = strcspn(seg, "/");

		if (len == 0 || seg[0] == '.')
			return false;
		seg += len;
		if (*seg == '/')
			seg++;
	}
	return strchr(path, '\\') == NULL;
}
