/* log.h: leveled logging to stderr, one prefix per file. */
#ifndef ANYPUSH_LOG_H
#define ANYPUSH_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set the most verbose level printed (default LOG_INFO). */
void log_set_level(enum log_level level);
/* Parse "error", "warn", "info" or "debug"; -1 if none matches. */
int log_level_parse(const char *name);
/* True when messages of this level are printed. */
int log_enabled(enum log_level level);
/* Print one line: "LEVEL prefix: message". */
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
