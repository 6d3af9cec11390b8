/* config.h: the daemon's options, their defaults, the --help text and the
 * config file (docs/config.md). */
#ifndef ANYPUSH_CONFIG_H
#define ANYPUSH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Installed paths. Makefile.am sets both from the configured prefix;
 * these are for builds that compile the config files alone (fuzz). */
#ifndef ANYPUSH_CONFIG_FILE
#define ANYPUSH_CONFIG_FILE "/usr/local/etc/anypush/anypush.conf"
#endif
#ifndef ANYPUSH_WEB_DIR
#define ANYPUSH_WEB_DIR "/usr/local/share/anypush/web"
#endif

#define CONFIG_MAX_OPTIONS 48

struct config {
	const char *config; /* the file; "" for none */
	const char *bind;
	unsigned long port;
	const char *port_file;
	const char *web_root;
	const char *transports;
	const char *allow_origin; /* origin.h */
	unsigned long publish_rate_per_ip; /* abuse.h; 0: none */
	unsigned long publish_rate_per_client; /* abuse.h; 0: none */
	unsigned long new_channels_per_ip;     /* abuse.h; 0: none */
	unsigned long max_conns_per_ip;        /* ipconns.h; 0: none */
	const char *trusted_proxies;
	unsigned long max_subscriptions; /* per /ws connection */
	unsigned long history_size;
	unsigned long history_age;    /* seconds */
	unsigned long history_memory; /* bytes */
	unsigned long max_channels;
	unsigned long max_message;        /* bytes */
	unsigned long outq_limit;         /* bytes */
	unsigned long presence_window;    /* seconds */
	unsigned long max_pollers;        /* (channel, client id) pairs */
	unsigned long idempotency_window; /* seconds; 0: keys not kept */
	unsigned long idempotency_keys;   /* (channel, key) pairs */
	unsigned long heartbeat;          /* seconds */
	unsigned long longpoll_timeout;   /* default hold, seconds */
	unsigned long ws_ping, ws_hangup; /* seconds */
	unsigned long head_timeout;       /* seconds */
	unsigned long max_pending;
	unsigned long http_timeout; /* seconds */
	unsigned long threads;      /* 0: config_threads */
	unsigned long http_threads; /* 0: config_http_threads */
	unsigned long http_memory; /* bytes of MHD pool per connection */
	unsigned long max_connections; /* HTTP and WebSocket */
	unsigned long max_streams;     /* held ones; 0: config_max_streams */
	const char *log_level;
	const char *log_format;
	const char *redis; /* "": the embedded bus */
	/* who may do what (auth.c, docs/security.md) */
	const char *token_secret_file; /* "": no client tokens */
	const char *api_key_file;      /* "": no API key */
	const char *public_channels;   /* patterns anyone may read */
	unsigned long metrics_public;  /* 1: /metrics needs no key */
	/* Copies of the strings read from a file, per option; NULL when
	 * the string is a default or points into argv. */
	char *owned[CONFIG_MAX_OPTIONS];
};

/* A live option (one SIGHUP may change) read from another thread than
 * main's: config_update stores it atomically. */
#define config_live(cfg, field) __atomic_load_n(&(cfg)->field, __ATOMIC_RELAXED)

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_ERROR };

/* Fill in the embedded defaults. */
void config_defaults(struct config *cfg);
/* Free the strings a file gave cfg. */
void config_free(struct config *cfg);
/* Parse argv (--name=value or --name value), then the config file under
 * the options argv did not set; on error write a one-line reason to err.
 * --help and --version print to out and say EXIT_OK. Enables the chosen
 * transports. */
enum config_result config_parse(struct config *cfg, int argc, char **argv,
				FILE *out, FILE *err);
/* Parse a config file's text over cfg; path names it in errors. 0 or -1
 * with one line on err. Pure: the unit tests and the fuzzer call it. */
int config_parse_text(struct config *cfg, const char *path,
		      const char *text, size_t len, FILE *err);

/* SIGHUP (main thread) */
/* Build next from the defaults, the file and argv again, as at start-up,
 * without side effects; 0, or -1 with the reason on err. */
int config_reload(struct config *next, int argc, char **argv, FILE *err);
/* Take next's live options into cur, logging each change and each other
 * option that differs (it needs a restart); the number changed, or -1
 * (logged, nothing taken) when next does not fit the running options. */
int config_update(struct config *cur, const struct config *next);
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
/* --threads, or its default when 0: the online CPUs (at most 64). */
unsigned long config_threads(const struct config *cfg);
/* --http-threads, or its default when 0: config_threads. */
unsigned long config_http_threads(const struct config *cfg);

#endif
