/* fmt.h: formatting into fixed buffers that never reports more than it
 * wrote. snprintf returns the length it *would* have written; staging
 * that as a length once sent the heap after a buffer to any client (the
 * SSE welcome). Every formatted length that reaches a socket comes from
 * here. */
#ifndef ANYPUSH_FMT_H
#define ANYPUSH_FMT_H

#include <stddef.h>

/* Format at buf + at (at < cap) and return the new length of buf, at
 * most cap - 1; buf stays NUL-terminated. Output that does not fit is
 * cut and logged as an error: buffers are sized so that it never does. */
size_t fmt_at(char *buf, size_t cap, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
