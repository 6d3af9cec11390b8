/* Options are one table: name, type, range, default and help, so --help,
 * the defaults, the flags and the config file cannot disagree.
 *
 * The file is read after the flags and skips every option a flag set, so
 * flags win wherever they stand. Strings from the file are copied into
 * memory the config owns (config_free); strings from argv point into argv,
 * which lives as long as the process. The file format is described in
 * docs/config.md; its parser is pure (text in, config or error out) so it
 * is unit-tested and fuzzed. */
#include "config.h"

#include "config_doc.h"
#include "abuse.h"
#include "ipconns.h"
#include "log.h"
#include "redis_url.h"
#include "origin.h"
#include "transport.h"

#include "xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define LOG_PREFIX "config"
#define FILE_MAX (1 << 20) /* bytes: a config file is small */
#define LINE_MAX 4096      /* bytes: a path, a list, never more */

enum opt_type { OPT_STR, OPT_NUM };

struct option_def {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;
	unsigned long min, max;
	const char *help;
	bool live; /* SIGHUP applies a change without a restart */
};

/* clang-format cannot lay out these initialiser macros */
/* clang-format off */
#define NUM(field, def, min, max, help)                                  \
	{ #field, OPT_NUM, offsetof(struct config, field), def, min, max,  \
	  help, false }
#define STR(field, def, help)                                            \
	{ #field, OPT_STR, offsetof(struct config, field), def, 0, 0, help, \
	  false }
#define LIVE_NUM(field, def, min, max, help)                             \
	{ #field, OPT_NUM, offsetof(struct config, field), def, min, max,  \
	  help, true }
#define LIVE_STR(field, def, help)                                       \
	{ #field, OPT_STR, offsetof(struct config, field), def, 0, 0, help, \
	  true }
/* clang-format on */

static const struct option_def options[] = {
	STR(config, ANYPUSH_CONFIG_FILE,
	    "read options from this file (flags win; a missing default file "
	    "is skipped; '' reads none); SIGHUP reads it again"),
	STR(bind, "",
	    "address to listen on (none given: 127.0.0.1 in open mode, without "
	    "--token-secret-file and --api-key-file; else 0.0.0.0)"),
	NUM(port, "8080", 0, 65535,
	    "TCP port for everything (0: any free port)"),
	STR(port_file, "", "write the bound port to this file once listening"),
	STR(web_root, ANYPUSH_WEB_DIR,
	    "folder served at / (the demo and anypush.js)"),
	STR(transports, "all",
	    "transports to enable, e.g. poll,sse (all: every one)"),
	STR(allow_origin, "",
	    "other origins whose pages may use the gateway, comma-separated "
	    "(https://app.example.com), or * for all; a page on the "
	    "gateway's own origin is always served, others get 403 "
	    "origin_not_allowed"),
	NUM(publish_rate_per_ip, "0", 0, 1000000,
	    "publishes per second per client IP, HTTP and /ws, in bursts of "
	    "as many; more get 429 rate_limited (0: no limit)"),
	NUM(publish_rate_per_client, "0", 0, 1000000,
	    "publishes per second per client id (X-Client-Id, a token's sub, "
	    "a /ws connection's client), in bursts of as many; more get 429 "
	    "rate_limited (0: no limit)"),
	NUM(new_channels_per_ip, "0", 0, 1000000,
	    "channels a client IP may create per second by publishing or "
	    "subscribing, in bursts of as many; more get 429 "
	    "channel_rate_limited (0: no limit)"),
	NUM(max_conns_per_ip, "0", 0, 100000000,
	    "open connections per client IP; one more gets 429 "
	    "too_many_connections (0: no limit)"),
	NUM(max_subscriptions, "256", 1, 256, /* docs/protocol.md: 256 */
	    "channels one /ws connection may subscribe to; one more gets "
	    "the error frame too_many_channels"),
	STR(trusted_proxies, "",
	    "proxies whose X-Forwarded-For names the client IP for the "
	    "per-IP limits, as addresses or CIDRs (127.0.0.1,10.0.0.0/8)"),
	NUM(history_size, "1000", 1, 1000000, "messages kept per channel"),
	LIVE_NUM(history_age, "600", 1, 604800, "seconds a message is kept"),
	NUM(history_memory, "268435456", 65536, 1UL << 40,
	    "bytes of history kept over all channels"),
	NUM(max_channels, "100000", 1, 100000000, "channels at most"),
	LIVE_NUM(max_message, "65536", 1, 16777216, "largest message, bytes"),
	LIVE_NUM(outq_limit, "1048576", 1024, 1UL << 32,
	    "bytes a subscriber may fall behind before it is cut off"),
	LIVE_NUM(presence_window, "30", 1, 3600,
	    "seconds a poller counts as present after its last poll"),
	NUM(max_pollers, "100000", 1, 100000000,
	    "pollers kept for presence (one per channel and client id)"),
	LIVE_NUM(idempotency_window, "300", 0, 86400,
		 "seconds a publish's Idempotency-Key is remembered (0: keys "
		 "are still checked but not remembered)"),
	NUM(idempotency_keys, "100000", 1, 100000000,
	    "idempotency keys remembered over all channels (the oldest go "
	    "first)"),
	LIVE_NUM(heartbeat, "15", 1, 3600, "seconds of silence before a ping"),
	NUM(longpoll_timeout, "25", 1, 120, "default long-poll hold, seconds"),
	NUM(ws_ping, "30", 1, 3600,
	    "ping a WebSocket peer silent (no frame, no pong) this long"),
	NUM(ws_hangup, "60", 2, 7200,
	    "drop a WebSocket peer silent for this many seconds"),
	NUM(head_timeout, "5", 1, 300,
	    "seconds a new connection has to send its request head"),
	NUM(max_pending, "1024", 1, 100000,
	    "connections waiting for their request head, at most"),
	NUM(http_timeout, "60", 1, 3600,
	    "seconds an HTTP connection may stay idle or stalled"),
	NUM(threads, "0", 0, 64, /* WS_LOOPS_MAX */
	    "event loops: WebSocket and SSE loops, each with its own "
	    "libwebsockets "
	    "context, and libmicrohttpd threads unless --http-threads says "
	    "(0: one per online CPU)"),
	NUM(http_threads, "0", 0, 64,
	    "libmicrohttpd threads (0: as many as --threads)"),
	NUM(http_memory, "16384", 4096, 1048576,
	    "bytes per libmicrohttpd connection (request head, reply "
	    "buffer): less memory per connection, smaller heads accepted"),
	NUM(max_connections, "16000", 2, 1000000,
	    "connections at most, HTTP and WebSocket; more get 503"),
	NUM(max_streams, "0", 0, 1000000,
	    "held streams at most (SSE, long polls, WebSockets), below "
	    "--max-connections so short requests keep room; more get 503 "
	    "(0: --max-connections less 1/16, at least 1)"),
	LIVE_STR(log_level, "info", "error, warn, info or debug"),
	LIVE_STR(log_format, "text",
		 "text, or json: one object per line (ts, level, module, msg)"),
	STR(redis, "",
	    "Redis engine: redis://host:port/db or unix:/path (db optional), "
	    "several comma-separated to shard channels; nodes given the same "
	    "list share one bus (empty: the embedded bus)"),
	STR(token_secret_file, "",
	    "clients need a JWT signed with this HS256 secret (or RS256/"
	    "ES256 public key, PEM) to subscribe and publish"),
	STR(api_key_file, "",
	    "the key of 'Authorization: apikey KEY': publish anywhere, the "
	    "admin API and /metrics"),
	STR(public_channels, "",
	    "channel patterns (comma-separated, * matches any run) anyone "
	    "may read without a token"),
	NUM(metrics_public, "0", 0, 1,
	    "1: /metrics needs no API key"),
};
#define NOPTIONS (sizeof options / sizeof options[0])
_Static_assert(NOPTIONS <= CONFIG_MAX_OPTIONS, "raise CONFIG_MAX_OPTIONS");

/* The option's name as typed: underscores become dashes; in the file
 * either is accepted. */
static bool name_matches(const char *def, const char *arg, size_t len,
			 bool either)
{
	if (strlen(def) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = def[i] == '_' ? '-' : def[i];

		if (arg[i] != c && !(either && def[i] == '_' && arg[i] == '_'))
			return false;
	}
	return true;
}

/* One error line: "anypush: [where: ]message". */
static void fail(FILE *err, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(FILE *err, const char *where, const char *fmt, ...)
{
	va_list ap;

	fprintf(err, "anypush: %s%s", where ? where : "", where ? ": " : "");
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputc('\n', err);
}

/* The option as a flag, "--history-size", for messages. */
static const char *flag_name(const struct option_def *o, char *buf,
			     size_t size)
{
	size_t k = 0;

	buf[k++] = '-';
	buf[k++] = '-';
	for (const char *c = o->name; *c && k < size - 1; c++)
		buf[k++] = *c == '_' ? '-' : *c;
	buf[k] = '\0';
	return buf;
}

/* Digits only: strtoul alone would take spaces, '+' and '-'. */
static int parse_num(const struct option_def *o, const char *value,
		     unsigned long *v, const char *where, FILE *err)
{
	char *end, name[64];

	errno = 0;
	*v = 0;
	if (value[0] >= '0' && value[0] <= '9')
		*v = strtoul(value, &end, 10);
	if (!(value[0] >= '0' && value[0] <= '9') || errno || *end ||
	    *v < o->min || *v > o->max) {
		fail(err, where, "%s wants a number from %lu to %lu, not '%.64s%s'",
		     flag_name(o, name, sizeof name), o->min, o->max, value,
		     strlen(value) > 64 ? "..." : "");
		return -1;
	}
	return 0;
}

/* Set an option; a string is copied when own (it comes from a file). */
static int set_option(struct config *cfg, const struct option_def *o,
		      const char *value, bool own, const char *where,
		      FILE *err)
{
	char *field = (char *)cfg + o->offset;
	size_t i = (size_t)(o - options);
	unsigned long v;

	if (o->type == OPT_STR) {
		free(cfg->owned[i]);
		cfg->owned[i] = own ? xstrdup(value) : NULL;
		*(const char **)field = own ? cfg->owned[i] : value;
		return 0;
	}
	if (parse_num(o, value, &v, where, err) < 0)
		return -1;
	*(unsigned long *)field = v;
	return 0;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < NOPTIONS; i++)
		set_option(cfg, &options[i], options[i].def, false, NULL,
			   stderr);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		free(cfg->owned[i]);
		cfg->owned[i] = NULL;
	}
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

static const struct option_def *find_option(const char *arg, size_t len,
					    bool either)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (name_matches(options[i].name, arg, len, either))
			return &options[i];
	return NULL;
}

/* Cross-checks; no side effects, so a reload can run them too. */
static int check(const struct config *cfg, FILE *err)
{
	if (log_level_parse(cfg->log_level) < 0) {
		fail(err, NULL, "unknown --log-level '%s'", cfg->log_level);
		return -1;
	}
	if (log_format_parse(cfg->log_format) < 0) {
		fail(err, NULL, "unknown --log-format '%s' (text or json)",
		     cfg->log_format);
		return -1;
	}
	if (transport_list_valid(cfg->transports) < 0) {
		fail(err, NULL,
		     "unknown transport in --transports '%s' (see --help)",
		     cfg->transports);
		return -1;
	}
	if (cfg->redis[0]) {
		struct redis_target t[REDIS_SHARDS_MAX];
		char why[160];

		if (redis_url_list_parse(cfg->redis, t, why, sizeof why) < 0) {
			fail(err, NULL, "%s", why);
			return -1;
		}
	}
	if (!origin_list_valid(cfg->allow_origin)) {
		fail(err, NULL,
		     "--allow-origin '%s' is not *, nor origins such as "
		     "https://example.com:8443 separated by commas",
		     cfg->allow_origin);
		return -1;
	}
	if (!limits_cidrs_valid(cfg->trusted_proxies)) {
		fail(err, NULL,
		     "--trusted-proxies '%s' is not addresses or CIDRs such as "
		     "10.0.0.0/8 separated by commas",
		     cfg->trusted_proxies);
		return -1;
	}
	if (cfg->ws_hangup <= cfg->ws_ping) {
		fail(err, NULL, "--ws-hangup must be greater than --ws-ping");
		return -1;
	}
	if (cfg->max_streams && cfg->max_streams >= cfg->max_connections) {
		fail(err, NULL,
		     "--max-streams must be smaller than --max-connections");
		return -1;
	}
	if (cfg->max_message >= cfg->history_memory) {
		fail(err, NULL,
		     "--max-message must be smaller than --history-memory");
		return -1;
	}
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One line, without its end of line: blank, a comment, or
 * "name = value". set[] holds the line each option was set on (0: not
 * yet); skip[] the options the flags set, which are checked, not set. */
static int parse_line(struct config *cfg, const char *line, size_t len,
		      const char *where, int lineno, int *set,
		      const bool *skip, FILE *err)
{
	const char *name, *value, *eq;
	const struct option_def *o;
	size_t nlen, vlen, i;
	char buf[LINE_MAX + 1], flag[64];
	unsigned long v;

	while (len > 0 && is_space(line[0]))
		line++, len--;
	while (len > 0 && is_space(line[len - 1]))
		len--;
	if (len == 0 || line[0] == '#')
		return 0;
	eq = memchr(line, '=', len);
	if (eq == NULL) {
		fail(err, where, "expected 'name = value' or a # comment");
		return -1;
	}
	name = line;
	nlen = (size_t)(eq - line);
	while (nlen > 0 && is_space(name[nlen - 1]))
		nlen--;
	value = eq + 1;
	vlen = len - (size_t)(value - line);
	while (vlen > 0 && is_space(value[0]))
		value++, vlen--;
	o = find_option(name, nlen, true);
	if (o == NULL || strcmp(o->name, "config") == 0) {
		fail(err, where, "unknown option '%.*s'%s",
		     (int)(nlen > 64 ? 64 : nlen), name,
		     o ? " (--config is a flag only)" : " (see --help)");
		return -1;
	}
	i = (size_t)(o - options);
	if (set[i]) {
		fail(err, where, "%s is set twice (first on line %d)",
		     flag_name(o, flag, sizeof flag), set[i]);
		return -1;
	}
	set[i] = lineno;
	if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
		value++;
		vlen -= 2;
		if (memchr(value, '"', vlen)) {
			fail(err, where, "a quoted value cannot hold '\"'");
			return -1;
		}
	} else if (vlen > 0 && value[0] == '"') {
		fail(err, where, "the value's closing '\"' is missing");
		return -1;
	} else if (memchr(value, '#', vlen)) {
		fail(err, where,
		     "comments go on their own line; quote a value with '#'");
		return -1;
	}
	for (size_t k = 0; k < vlen; k++) {
		if ((unsigned char)value[k] < 0x20 && value[k] != '\t') {
			fail(err, where, "control character in the value");
			return -1;
		}
	}
	memcpy(buf, value, vlen);
	buf[vlen] = '\0';
	if (skip[i])
		return o->type == OPT_NUM ? parse_num(o, buf, &v, where, err) :
					    0;
	return set_option(cfg, o, buf, true, where, err);
}

static int parse_text(struct config *cfg, const char *path,
		      const char *text, size_t len, const bool *skip,
		      FILE *err)
{
	int set[NOPTIONS] = { 0 }, lineno = 0;
	char where[LINE_MAX];
	size_t at = 0;

	/* editors on some systems start UTF-8 files with a byte order mark */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		at = 3;
	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - text) : len, n = end - at;

		lineno++;
		snprintf(where, sizeof where, "%.1000s:%d", path, lineno);
		if (n > 0 && text[end - 1] == '\r')
			n--;
		if (memchr(text + at, '\0', n)) {
			/* C strings would cut the line short */
			fail(err, where, "NUL byte in the line");
			return -1;
		}
		if (n > LINE_MAX) {
			fail(err, where, "line longer than %d bytes",
			     LINE_MAX);
			return -1;
		}
		if (parse_line(cfg, text + at, n, where, lineno, set, skip,
			       err) < 0)
			return -1;
		at = end + 1;
	}
	return 0;
}

int config_parse_text(struct config *cfg, const char *path,
		      const char *text, size_t len, FILE *err)
{
	bool skip[NOPTIONS] = { false };

	return parse_text(cfg, path, text, len, skip, err);
}

/* Read cfg->config over cfg. A missing file is fine unless required. */
static int read_file(struct config *cfg, bool required, const bool *skip,
		     FILE *err)
{
	char *text = NULL, *path;
	size_t len = 0;
	FILE *f;
	int rc = -1;

	if (cfg->config[0] == '\0')
		return 0;
	/* the path survives set_option replacing the field */
	path = xstrdup(cfg->config);
	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT && !required) {
			rc = 0;
			goto out;
		}
		fail(err, path, "%s", strerror(errno));
		goto out;
	}
	text = xmalloc(FILE_MAX + 1);
	len = fread(text, 1, FILE_MAX + 1, f);
	if (ferror(f)) {
		fail(err, path, "read error");
	} else if (len > FILE_MAX) {
		fail(err, path, "larger than %d bytes", FILE_MAX);
	} else {
		rc = parse_text(cfg, path, text, len, skip, err);
	}
	fclose(f);
out:
	free(text);
	free(path);
	return rc;
}

/* The flags over cfg; then the file, skipping what the flags set. */
static enum config_result load(struct config *cfg, int argc, char **argv,
			       FILE *out, FILE *err)
{
	bool flagged[NOPTIONS] = { false }, required = false;

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
			fail(err, NULL,
			     "unexpected argument '%s' (see --help)", arg);
			return CONFIG_ERROR;
		}
		arg += 2;
		eq = strchr(arg, '=');
		o = find_option(arg, eq ? (size_t)(eq - arg) : strlen(arg),
				false);
		if (o == NULL) {
			fail(err, NULL, "unknown option '%s' (see --help)",
			     argv[i]);
			return CONFIG_ERROR;
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			fail(err, NULL, "--%s needs a value", arg);
			return CONFIG_ERROR;
		}
		if (set_option(cfg, o, value, false, NULL, err) < 0)
			return CONFIG_ERROR;
		flagged[o - options] = true;
		if (strcmp(o->name, "config") == 0)
			required = true;
	}
	if (read_file(cfg, required, flagged, err) < 0)
		return CONFIG_ERROR;
	return check(cfg, err) < 0 ? CONFIG_ERROR : CONFIG_RUN;
}

enum config_result config_parse(struct config *cfg, int argc, char **argv,
				FILE *out, FILE *err)
{
	enum config_result r = load(cfg, argc, argv, out, err);

	if (r == CONFIG_RUN) {
		transport_enable_only(cfg->transports);
		origin_configure(cfg->allow_origin);
		limits_configure(&(struct limits_rates){
					 cfg->publish_rate_per_ip,
					 cfg->publish_rate_per_client,
					 cfg->new_channels_per_ip },
				 cfg->trusted_proxies);
		ipconns_configure(cfg->max_conns_per_ip);
	}
	return r;
}

int config_reload(struct config *next, int argc, char **argv, FILE *err)
{
	/* --help and --version ended the process at start-up */
	config_defaults(next);
	return load(next, argc, argv, err, err) == CONFIG_RUN ? 0 : -1;
}

/* A value as text, for the reload log. */
static const char *show(const struct config *cfg, const struct option_def *o,
			char *buf, size_t size)
{
	const char *field = (const char *)cfg + o->offset;

	if (o->type == OPT_STR)
		return *(const char *const *)field;
	snprintf(buf, size, "%lu", *(const unsigned long *)field);
	return buf;
}

int config_update(struct config *cur, const struct config *next)
{
	int changed = 0;

	/* check() saw the file's --history-memory, which applies only after
	 * a restart: the live --max-message must stay below the running one */
	if (next->max_message >= cur->history_memory) {
		log_error("reload refused, keeping the old options: "
			  "--max-message %lu must stay below the running "
			  "--history-memory %lu (that one needs a restart)",
			  next->max_message, cur->history_memory);
		return -1;
	}

	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];
		char *to = (char *)cur + o->offset, a[32], b[32], flag[64];
		const char *old = show(cur, o, a, sizeof a);
		const char *new = show(next, o, b, sizeof b);

		if (strcmp(old, new) == 0)
			continue;
		if (!o->live) {
			log_warn("%s changed in the file; needs a restart",
				 flag_name(o, flag, sizeof flag));
			continue;
		}
		log_info("reloaded: %s %s -> %s", o->name, old, new);
		changed++;
		if (o->type == OPT_STR) {
			/* strings are read on the main thread only */
			set_option(cur, o, new, true, NULL, stderr);
		} else {
			/* numbers are read by other threads: config_live */
			__atomic_store_n((unsigned long *)to,
					 *(const unsigned long *)((const char *)next +
								  o->offset),
					 __ATOMIC_RELAXED);
		}
	}
	return changed;
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

unsigned long config_threads(const struct config *cfg)
{
	long cpus;

	if (cfg->threads)
		return cfg->threads;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return 1;
	return cpus > 64 ? 64 : (unsigned long)cpus;
}

unsigned long config_http_threads(const struct config *cfg)
{
	return cfg->http_threads ? cfg->http_threads : config_threads(cfg);
}
