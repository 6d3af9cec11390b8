/* config.h: the daemon's options, their defaults and the --help text. */
#ifndef ANYPUSH_CONFIG_H
#define ANYPUSH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct config {
	const char *bind;
	unsigned long port;
	const char *port_file;
	const char *web_root;
	const char *transports;
	unsigned long history_size;
	unsigned long history_age;    /* seconds */
	unsigned long history_memory; /* bytes */
	unsigned long max_channels;
	unsigned long max_message;        /* bytes */
	unsigned long outq_limit;         /* bytes */
	unsigned long presence_window;    /* seconds */
	unsigned long max_pollers;        /* (channel, client id) pairs */
	unsigned long heartbeat;          /* seconds */
	unsigned long longpoll_timeout;   /* default hold, seconds */
	unsigned long ws_ping, ws_hangup; /* seconds */
	unsigned long head_timeout;       /* seconds */
	unsigned long max_pending;
	unsigned long http_timeout; /* seconds */
	unsigned long http_threads;
	unsigned long http_memory; /* bytes of MHD pool per connection */
	unsigned long max_connections; /* HTTP and WebSocket */
	unsigned long max_streams;     /* held ones; 0: config_max_streams */
	const char *log_level;
};

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_ERROR };

/* Fill in the embedded defaults. */
void config_defaults(struct config *cfg);
/* Parse argv (--name=value or --name value); on error write a one-line
 * reason to err. --help and --version print to out and say EXIT_OK. */
enum config_result config_parse(struct config *cfg, int argc, char **argv,
				FILE *out, FILE *err);
/* The --help text. */
void config_usage(FILE *out);
/* One row of the option table, for the generated man page and example
 * config (config_doc.c): name as in the table (underscores), default,
 * help, and the range of a number. */
struct config_option_info {
	const char *name;
	const char *def;
	const char *help;
	bool number;
	unsigned long min, max;
};
/* The i-th option of the table; false past its end. */
bool config_option_at(size_t i, struct config_option_info *out);
/* --max-streams, or its default when 0: 15/16 of --max-connections. */
unsigned long config_max_streams(const struct config *cfg);

#endif
