/* Bounded formatting; see fmt.h for why it exists. A cut is a sizing bug
 * of ours, so it is logged loudly, but the bytes that go out are always
 * bytes we wrote. */
#include "fmt.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#define LOG_PREFIX "fmt"

size_t fmt_at(char *buf, size_t cap, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cap == 0)
		return 0;
	if (at >= cap)
		at = cap - 1;
	va_start(ap, fmt);
	n = vsnprintf(buf + at, cap - at, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf[at] = '\0';
		return at;
	}
	if ((size_t)n >= cap - at) {
		log_error("output cut to %zu of %zu bytes (a buffer is too "
			  "small)",
			  cap - 1, at + (size_t)n);
		return cap - 1;
	}
	return at + (size_t)n;
}
