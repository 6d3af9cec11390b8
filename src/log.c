/* Leveled logging to stderr. One fprintf per line keeps lines whole across
 * threads (stdio locks the stream for each call). The level and format
 * are atomics because SIGHUP changes them while other threads log. JSON
 * lines are for log collectors: one object per line, the message escaped
 * as JSON wants (RFC 8259: quote, backslash, control characters); bytes
 * that are not UTF-8 are not repaired, as in the text format. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int current_level = LOG_INFO;
static atomic_int current_format = LOG_FORMAT_TEXT;
static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&current_level, level, memory_order_relaxed);
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void log_set_format(enum log_format format)
{
	atomic_store_explicit(&current_format, format, memory_order_relaxed);
}

int log_format_parse(const char *name)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(name, format_names[i]) == 0)
			return i;
	return -1;
}

int log_enabled(enum log_level level)
{
	return (int)level <=
	       atomic_load_explicit(&current_level, memory_order_relaxed);
}

size_t log_json_escape(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		size_t k;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			k = 2;
		} else if (c < 0x20 || c == 0x7f) {
			k = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
		} else {
			esc[0] = (char)c;
			k = 1;
		}
		if (n + k >= size)
			break; /* truncated between escapes, never inside one */
		memcpy(out + n, esc, k);
		n += k;
	}
	if (size > 0)
		out[n] = '\0';
	return n;
}

void log_write(enum log_level level, const char *prefix, const char *fmt, ...)
{
	char line[1024], json[6 * sizeof line];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (atomic_load_explicit(&current_format, memory_order_relaxed) ==
	    LOG_FORMAT_JSON) {
		log_json_escape(json, sizeof json, line);
		fprintf(stderr,
			"{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\","
			"\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}\n",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			tm.tm_hour, tm.tm_min, tm.tm_sec,
			now.tv_nsec / 1000000, level_names[level], prefix,
			json);
		return;
	}
	fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s: %s\n", tm.tm_hour,
		tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, level_names[level],
		prefix, line);
}
