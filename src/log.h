/* log.h: leveled logging to stderr, one prefix per file, as text or as
 * one JSON object per line. */
#ifndef ANYPUSH_LOG_H
#define ANYPUSH_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Set the most verbose level printed (default LOG_INFO). */
void log_set_level(enum log_level level);
/* Parse "error", "warn", "info" or "debug"; -1 if none matches. */
int log_level_parse(const char *name);
/* Set the line format (default LOG_FORMAT_TEXT); any thread. */
void log_set_format(enum log_format format);
/* Parse "text" or "json"; -1 if neither. */
int log_format_parse(const char *name);
/* s as the inside of a JSON string into out (size bytes with the NUL),
 * cut between escapes when too long; the length written. */
size_t log_json_escape(char *out, size_t size, const char *s);
/* True when messages of this level are printed. */
int log_enabled(enum log_level level);
/* Print one line: "time LEVEL prefix: message", or
 * {"ts":...,"level":...,"module":prefix,"msg":message}. */
void log_write(enum log_level level, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Each .c file defines LOG_PREFIX before using these. */
#define log_error(...) log_write(LOG_ERROR, LOG_PREFIX, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_PREFIX, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, LOG_PREFIX, __VA_ARGS__)
#define log_debug(...)                                                 \
	do {                                                           \
		if (log_enabled(LOG_DEBUG))                            \
			log_write(LOG_DEBUG, LOG_PREFIX, __VA_ARGS__); \
	} while (0)

#endif
