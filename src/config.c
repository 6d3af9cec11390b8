/* Options are one table: name, type, range, default and help, so --help,
 * the defaults and the parser cannot disagree. */
#include "config.h"

#include "config_doc.h"
#include "log.h"
#include "transport.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum opt_type { OPT_STR, OPT_NUM };

struct option_def {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;
	unsigned long min, max;
	const char *help;
};

/* clang-format cannot lay out these initialiser macros */
/* clang-format off */
#define NUM(field, def, min, max, help)                                  \
	{ #field, OPT_NUM, offsetof(struct config, field), def, min, max, help }
#define STR(field, def, help)                                            \
	{ #field, OPT_STR, offsetof(struct config, field), def, 0, 0, help }
/* clang-format on */

static const struct option_def options[] = {
	STR(bind, "0.0.0.0", "address to listen on"),
	NUM(port, "8080", 0, 65535,
	    "TCP port for everything (0: any free port)"),
	STR(port_file, "", "write the bound port to this file once listening"),
	STR(web_root, ANYPUSH_WEB_DIR,
	    "folder served at / (the demo and anypush.js)"),
	STR(transports, "all",
	    "transports to enable, e.g. poll,sse (all: every one)"),
	NUM(history_size, "1000", 1, 1000000, "messages kept per channel"),
	NUM(history_age, "600", 1, 604800, "seconds a message is kept"),
	NUM(history_memory, "268435456", 65536, 1UL << 40,
	    "bytes of history kept over all channels"),
	NUM(max_channels, "100000", 1, 100000000, "channels at most"),
	NUM(max_message, "65536", 1, 16777216, "largest message, bytes"),
	NUM(outq_limit, "1048576", 1024, 1UL << 32,
	    "bytes a subscriber may fall behind before it is cut off"),
	NUM(presence_window, "30", 1, 3600,
	    "seconds a poller counts as present after its last poll"),
	NUM(max_pollers, "100000", 1, 100000000,
	    "pollers kept for presence (one per channel and client id)"),
	NUM(heartbeat, "15", 1, 3600, "seconds of silence before a ping"),
	NUM(longpoll_timeout, "25", 1, 120, "default long-poll hold, seconds"),
	NUM(ws_ping, "30", 1, 3600, "seconds between WebSocket pings"),
	NUM(ws_hangup, "60", 2, 7200,
	    "drop a WebSocket peer silent for this many seconds"),
	NUM(head_timeout, "5", 1, 300,
	    "seconds a new connection has to send its request head"),
	NUM(max_pending, "1024", 1, 100000,
	    "connections waiting for their request head, at most"),
	NUM(http_timeout, "60", 1, 3600,
	    "seconds an HTTP connection may stay idle or stalled"),
	NUM(http_threads, "1", 1, 64, "libmicrohttpd threads"),
	NUM(http_memory, "16384", 4096, 1048576,
	    "bytes per HTTP connection (request head, reply buffer): less "
	    "memory per SSE stream, smaller heads accepted"),
	NUM(max_connections, "16000", 2, 1000000,
	    "connections at most, HTTP and WebSocket; more get 503"),
	NUM(max_streams, "0", 0, 1000000,
	    "held streams at most (SSE, long polls, WebSockets), below "
	    "--max-connections so short requests keep room; more get 503 "
	    "(0: --max-connections less 1/16, at least 1)"),
	STR(log_level, "info", "error, warn, info or debug"),
};
#define NOPTIONS (sizeof options / sizeof options[0])

/* The option's name as typed: underscores become dashes. */
static bool name_matches(const char *def, const char *arg, size_t len)
{
	if (strlen(def) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = def[i] == '_' ? '-' : def[i];

		if (arg[i] != c)
			return false;
	}
	return true;
}

static int set_option(struct config *cfg, const struct option_def *o,
		      const char *value, FILE *err)
{
	char *field = (char *)cfg + o->offset;
	unsigned long v;
	char *end;

	if (o->type == OPT_STR) {
		*(const char **)field = value;
		return 0;
	}
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || end == value || *end || value[0] == '-' || v < o->min ||
	    v > o->max) {
		fprintf(err, "anypush: --");
		for (const char *c = o->name; *c; c++)
			fputc(*c == '_' ? '-' : *c, err);
		fprintf(err, " wants a number from %lu to %lu, not '%s'\n",
			o->min, o->max, value);
		return -1;
	}
	*(unsigned long *)field = v;
	return 0;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NOPTIONS; i++)
		set_option(cfg, &options[i], options[i].def, stderr);
}

void config_usage(FILE *out)
{
	fprintf(out, "Usage: anypush [OPTION]...\n"
		     "Realtime push gateway: one message bus over short "
		     "polling, long polling,\nServer-Sent Events and WebSocket "
		     "on one port.\n\nOptions (default in brackets):\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		char name[64];
		size_t k;

		for (k = 0; options[i].name[k] && k < sizeof name - 1; k++)
			name[k] = options[i].name[k] == '_' ?
					  '-' :
					  options[i].name[k];
		name[k] = '\0';
		fprintf(out, "  --%-18s %s [%s]\n", name, options[i].help,
			options[i].def);
	}
	fprintf(out, "  --%-18s %s\n  --%-18s %s\n", "help", "show this text",
		"version", "print the version");
}

bool config_option_at(size_t i, struct config_option_info *out)
{
	if (i >= NOPTIONS)
		return false;
	out->name = options[i].name;
	out->def = options[i].def;
	out->help = options[i].help;
	out->number = options[i].type == OPT_NUM;
	out->min = options[i].min;
	out->max = options[i].max;
	return true;
}

static const struct option_def *find_option(const char *arg, size_t len)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (name_matches(options[i].name, arg, len))
			return &options[i];
	return NULL;
}

static int check(const struct config *cfg, FILE *err)
{
	if (log_level_parse(cfg->log_level) < 0) {
		fprintf(err, "anypush: unknown --log-level '%s'\n",
			cfg->log_level);
		return -1;
	}
	if (transport_enable_only(cfg->transports) < 0) {
		fprintf(err,
			"anypush: unknown transport in --transports '%s' "
			"(see --help)\n",
			cfg->transports);
		return -1;
	}
	if (cfg->ws_hangup <= cfg->ws_ping) {
		fprintf(err, "anypush: --ws-hangup must be greater than "
			     "--ws-ping\n");
		return -1;
	}
	if (cfg->max_streams && cfg->max_streams >= cfg->max_connections) {
		fprintf(err, "anypush: --max-streams must be smaller than "
			     "--max-connections\n");
		return -1;
	}
	if (cfg->max_message >= cfg->history_memory) {
		fprintf(err, "anypush: --max-message must be smaller than "
			     "--history-memory\n");
		return -1;
	}
	return 0;
}

enum config_result config_parse(struct config *cfg, int argc, char **argv,
				FILE *out, FILE *err)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq, *value;
		const struct option_def *o;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(out);
			return CONFIG_EXIT_OK;
		}
		/* not in --help: they feed the build (anypush.8 and
		 * anypush.conf.example), not the user */
		if (strcmp(arg, "--help-man") == 0) {
			config_doc_man(out);
			return CONFIG_EXIT_OK;
		}
		if (strcmp(arg, "--help-config") == 0) {
			config_doc_example(out);
			return CONFIG_EXIT_OK;
		}
		if (strcmp(arg, "--version") == 0) {
			fprintf(out, "anypush " PACKAGE_VERSION "\n");
			return CONFIG_EXIT_OK;
		}
		if (strncmp(arg, "--", 2) != 0) {
			fprintf(err,
				"anypush: unexpected argument '%s' "
				"(see --help)\n",
				arg);
			return CONFIG_ERROR;
		}
		arg += 2;
		eq = strchr(arg, '=');
		o = find_option(arg, eq ? (size_t)(eq - arg) : strlen(arg));
		if (o == NULL) {
			fprintf(err,
				"anypush: unknown option '%s' (see "
				"--help)\n",
				argv[i]);
			return CONFIG_ERROR;
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fprintf(err, "anypush: --%s needs a value\n", arg);
			return CONFIG_ERROR;
		}
		if (set_option(cfg, o, value, err) < 0)
			return CONFIG_ERROR;
	}
	return check(cfg, err) < 0 ? CONFIG_ERROR : CONFIG_RUN;
}

/* Resolved where it is used, not in config_parse, so that a config made
 * by config_defaults alone (the tests) gets the same budget. */
unsigned long config_max_streams(const struct config *cfg)
{
	if (cfg->max_streams)
		return cfg->max_streams;
	/* leave short requests 1/16 of the connections */
	return cfg->max_connections -
	       (cfg->max_connections >= 32 ? cfg->max_connections / 16 : 1);
}
