/* static_path.h: the string-level check of a static file's path, free of
 * I/O so that it is fuzzed against an independent oracle
 * (tests/fuzz/fuzz_static_path.c). static_files.c opens what passes
 * without following symlinks. */
#ifndef ANYPUSH_STATIC_PATH_H
#define ANYPUSH_STATIC_PATH_H

#include <stdbool.h>

/* Longest path taken, leading slash included. */
#define STATIC_PATH_MAX 512

/* Check */
/* Whether path (the URL path, unescaped) may name a file under the web
 * root: it starts with '/', has no backslash, and no segment is empty or
 * starts with a dot (which covers "." and ".." and hidden files). */
bool static_path_safe(const char *path);

#endif
