/* Command-line options: defaults, both spellings, ranges, cross-checks and
 * --help. Output goes to memory streams so it can be read back. */
#include "unit.h"

#include "config.h"
#include "transport.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* What one config_parse call printed. */
struct run {
	enum config_result result;
	char *out, *err;
	size_t out_len, err_len;
};

static struct config cfg;

/* Parse argv (NULL-terminated, without the program name) over the
 * defaults. */
static struct run parse(char **args)
{
	char *argv[32] = { (char *)"anypush" };
	int argc = 1;
	struct run r;
	FILE *out, *err;

	while (args[argc - 1]) {
		ck_assert_int_lt(argc, 31);
		argv[argc] = args[argc - 1];
		argc++;
	}
	argv[argc] = NULL;
	out = open_memstream(&r.out, &r.out_len);
	err = open_memstream(&r.err, &r.err_len);
	ck_assert(out && err);
	config_defaults(&cfg);
	r.result = config_parse(&cfg, argc, argv, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

#define ARGS(...) ((char *[]){ __VA_ARGS__, NULL })

/* The run failed with one line "anypush: ..." on err and nothing on out;
 * the line mentions `word`. */
static void expect_error(char **args, const char *word)
{
	struct run r = parse(args);
	bool ok = r.result == CONFIG_ERROR && r.out_len == 0 &&
		  r.err_len > 10 && strncmp(r.err, "anypush: ", 9) == 0 &&
		  strchr(r.err, '\n') == r.err + r.err_len - 1 &&
		  (word == NULL || strstr(r.err, word) != NULL);
	char msg[256];

	snprintf(msg, sizeof msg, "%s: result %d, err '%s'", args[0],
		 (int)r.result, r.err);
	run_free(&r);
	ck_assert_msg(ok, "%s", msg);
}

static void expect_run(char **args)
{
	struct run r = parse(args);
	bool ok = r.result == CONFIG_RUN && r.out_len == 0 && r.err_len == 0;
	char msg[256];

	snprintf(msg, sizeof msg, "%s: result %d, err '%s'", args[0],
		 (int)r.result, r.err);
	run_free(&r);
	ck_assert_msg(ok, "%s", msg);
}

static void reset_transports(void)
{
	/* --transports changes process-wide state */
	ck_assert_int_eq(transport_enable_only("poll,longpoll,sse,ws"), 0);
}

START_TEST(test_defaults)
{
	config_defaults(&cfg);
	ck_assert_str_eq(cfg.bind, "");
	ck_assert_uint_eq(cfg.port, 8080);
	ck_assert_str_eq(cfg.port_file, "");
	ck_assert_str_eq(cfg.web_root, ANYPUSH_WEB_DIR);
	ck_assert_str_eq(cfg.transports, "all");
	ck_assert_uint_eq(cfg.history_size, 1000);
	ck_assert_uint_eq(cfg.history_age, 600);
	ck_assert_uint_eq(cfg.history_memory, 256UL << 20);
	ck_assert_uint_eq(cfg.max_channels, 100000);
	ck_assert_uint_eq(cfg.max_pollers, 100000);
	ck_assert_uint_eq(cfg.max_message, 65536);
	ck_assert_uint_eq(cfg.outq_limit, 1UL << 20);
	ck_assert_uint_eq(cfg.heartbeat, 15);
	ck_assert_uint_eq(cfg.longpoll_timeout, 25);
	ck_assert_uint_eq(cfg.ws_ping, 30);
	ck_assert_uint_eq(cfg.ws_hangup, 60);
	ck_assert_uint_eq(cfg.head_timeout, 5);
	ck_assert_uint_eq(cfg.max_pending, 1024);
	ck_assert_uint_eq(cfg.http_timeout, 60);
	ck_assert_uint_eq(cfg.threads, 0);
	ck_assert_uint_eq(cfg.http_threads, 0);
	ck_assert_uint_eq(cfg.max_connections, 16000);
	ck_assert_str_eq(cfg.log_level, "info");
}
END_TEST

START_TEST(test_no_arguments)
{
	char *none[] = { NULL };
	struct run r = parse(none);

	ck_assert_int_eq(r.result, CONFIG_RUN);
	ck_assert_uint_eq(cfg.port, 8080);
	ck_assert_uint_eq(r.out_len + r.err_len, 0);
	run_free(&r);
	reset_transports();
}
END_TEST

START_TEST(test_both_spellings)
{
	expect_run(ARGS("--port=0"));
	ck_assert_uint_eq(cfg.port, 0);
	expect_run(ARGS("--port", "9000"));
	ck_assert_uint_eq(cfg.port, 9000);
	expect_run(ARGS("--port=65535", "--history-size", "5",
			"--bind=127.0.0.1", "--web-root", "/srv/web"));
	ck_assert_uint_eq(cfg.port, 65535);
	ck_assert_uint_eq(cfg.history_size, 5);
	ck_assert_str_eq(cfg.bind, "127.0.0.1");
	ck_assert_str_eq(cfg.web_root, "/srv/web");
	/* the last one wins */
	expect_run(ARGS("--heartbeat=5", "--heartbeat=7"));
	ck_assert_uint_eq(cfg.heartbeat, 7);
	/* a value may contain '=' */
	expect_run(ARGS("--port-file=/tmp/a=b"));
	ck_assert_str_eq(cfg.port_file, "/tmp/a=b");
	/* or be empty, for strings */
	expect_run(ARGS("--port-file="));
	ck_assert_str_eq(cfg.port_file, "");
	reset_transports();
}
END_TEST

START_TEST(test_every_option_is_accepted)
{
	static char *const opts[][2] = {
		{ "--bind", "::1" },
		{ "--port", "1" },
		{ "--port-file", "p" },
		{ "--web-root", "w" },
		{ "--transports", "sse" },
		{ "--history-size", "1" },
		{ "--history-age", "1" },
		{ "--history-memory", "1048576" },
		{ "--max-channels", "1" },
		{ "--max-message", "1" },
		{ "--outq-limit", "1024" },
		{ "--heartbeat", "1" },
		{ "--longpoll-timeout", "120" },
		{ "--ws-ping", "1" },
		{ "--ws-hangup", "7200" },
		{ "--head-timeout", "1" },
		{ "--max-pending", "1" },
		{ "--http-timeout", "1" },
		{ "--threads", "64" },
		{ "--http-threads", "64" },
		{ "--max-connections", "2" },
		{ "--max-streams", "1" },
		{ "--log-level", "debug" },
	};

	for (size_t i = 0; i < NELEM(opts); i++)
		expect_run(ARGS(opts[i][0], opts[i][1]));
	reset_transports();
}
END_TEST

START_TEST(test_ranges)
{
	static const struct {
		const char *name;
		unsigned long min, max;
	} ranges[] = {
		{ "port", 0, 65535 },           { "history-size", 1, 1000000 },
		{ "history-age", 1, 604800 },   { "heartbeat", 1, 3600 },
		{ "longpoll-timeout", 1, 120 }, { "http-threads", 0, 64 },
		{ "threads", 0, 64 },
	};

	for (size_t i = 0; i < NELEM(ranges); i++) {
		char lo[64], hi[64], below[64], above[64];

		snprintf(lo, sizeof lo, "--%s=%lu", ranges[i].name,
			 ranges[i].min);
		snprintf(hi, sizeof hi, "--%s=%lu", ranges[i].name,
			 ranges[i].max);
		snprintf(below, sizeof below, "--%s=%ld", ranges[i].name,
			 (long)ranges[i].min - 1);
		snprintf(above, sizeof above, "--%s=%lu", ranges[i].name,
			 ranges[i].max + 1);
		expect_run(ARGS(lo));
		expect_run(ARGS(hi));
		expect_error(ARGS(below), strchr(below, '=') + 1);
		expect_error(ARGS(above), strchr(above, '=') + 1);
	}
	reset_transports();
}
END_TEST

START_TEST(test_bad_numbers)
{
	expect_error(ARGS("--port=-1"), "port");
	expect_error(ARGS("--port", "-1"), "port");
	expect_error(ARGS("--port= -1"), "port");
	expect_error(ARGS("--port=65536"), "port");
	expect_error(ARGS("--port=99999999999999999999999"), "port");
	expect_error(ARGS("--port=18446744073709551616"), "port");
	expect_error(ARGS("--port=abc"), "abc");
	expect_error(ARGS("--port=80x"), "port");
	expect_error(ARGS("--port=8O"), "port");
	expect_error(ARGS("--port=0x50"), "port");
	expect_error(ARGS("--port=1e3"), "port");
	expect_error(ARGS("--port=1.5"), "port");
	expect_error(ARGS("--port="), "port");
	expect_error(ARGS("--port", ""), "port");
	expect_error(ARGS("--history-size=0"), "'0'");
	expect_error(ARGS("--heartbeat=-0"), "heartbeat");
	expect_error(ARGS("--ws-hangup=1"), "'1'");
	expect_error(ARGS("--history-memory=-1"), "'-1'");
}
END_TEST

START_TEST(test_error_names_option_as_typed)
{
	/* the reason names the option the way it is typed, with dashes:
	 * "--history_size" is itself an unknown option */
	expect_error(ARGS("--history-size=0"), "--history-size");
	expect_error(ARGS("--ws-hangup=1"), "--ws-hangup");
	expect_error(ARGS("--max-channels", "many"), "--max-channels");
}
END_TEST

START_TEST(test_unknown_and_missing)
{
	expect_error(ARGS("--nope"), "--nope");
	expect_error(ARGS("--nope=1"), "--nope");
	expect_error(ARGS("--Port=1"), NULL);
	expect_error(ARGS("--history_size=5"), NULL); /* dashes, not _ */
	expect_error(ARGS("--port-=1"), NULL);
	expect_error(ARGS("--"), NULL);
	expect_error(ARGS("--="), NULL);
	expect_error(ARGS("-p"), "-p");
	expect_error(ARGS("port=1"), "port=1");
	expect_error(ARGS("--port=1", "extra"), "extra");
	expect_error(ARGS("--port"), "port"); /* no value left */
	expect_error(ARGS("--heartbeat=5", "--bind"), "bind");
	/* the next option is not a value */
	expect_error(ARGS("--port", "--heartbeat=5"), "port");
}
END_TEST

START_TEST(test_cross_checks)
{
	expect_error(ARGS("--transports=poll,foo"), "transport");
	expect_error(ARGS("--transports=POLL"), "transport");
	expect_error(ARGS("--transports=poll,,sse"), "transport");
	expect_error(ARGS("--transports= poll"), "transport");
	expect_error(ARGS("--log-level=loud"), "log-level");
	expect_error(ARGS("--log-level="), "log-level");
	expect_error(ARGS("--ws-ping=60", "--ws-hangup=60"), "ws-hangup");
	expect_error(ARGS("--ws-ping=61"), "ws-hangup"); /* default hangup 60 */
	expect_run(ARGS("--ws-ping=59"));
	expect_error(ARGS("--max-message=65536", "--history-memory=65536"),
		     "max-message");
	expect_run(ARGS("--max-message=65535", "--history-memory=65536"));
	/* streams stop below connections, so short requests keep room */
	expect_error(ARGS("--max-connections=20", "--max-streams=20"),
		     "max-streams");
	expect_error(ARGS("--max-streams=16000"), "max-streams");
	expect_run(ARGS("--max-connections=20", "--max-streams=19"));
	ck_assert_uint_eq(cfg.max_streams, 19);
	ck_assert_uint_eq(config_max_streams(&cfg), 19);
	expect_run(ARGS("--max-connections=20"));
	ck_assert_uint_eq(config_max_streams(&cfg), 19);
	expect_run(ARGS("--max-connections=2"));
	ck_assert_uint_eq(config_max_streams(&cfg), 1);
	expect_run(ARGS("--port=1"));
	ck_assert_uint_eq(config_max_streams(&cfg), 15000);
	config_defaults(&cfg); /* the defaults alone get the same budget */
	ck_assert_uint_eq(config_max_streams(&cfg), 15000);
	reset_transports();
}
END_TEST

/* --threads 0 is one loop per online CPU; --http-threads 0 follows
 * --threads, and either may be set alone. */
START_TEST(test_threads)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long want = cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned long)cpus;

	config_defaults(&cfg);
	ck_assert_uint_eq(config_threads(&cfg), want);
	ck_assert_uint_eq(config_http_threads(&cfg), want);
	expect_run(ARGS("--threads=3"));
	ck_assert_uint_eq(config_threads(&cfg), 3);
	ck_assert_uint_eq(config_http_threads(&cfg), 3);
	expect_run(ARGS("--threads=3", "--http-threads=1"));
	ck_assert_uint_eq(config_threads(&cfg), 3);
	ck_assert_uint_eq(config_http_threads(&cfg), 1);
	expect_run(ARGS("--http-threads=5"));
	ck_assert_uint_eq(config_threads(&cfg), want);
	ck_assert_uint_eq(config_http_threads(&cfg), 5);
	reset_transports();
}
END_TEST

START_TEST(test_transports_option)
{
	expect_run(ARGS("--transports=poll,sse"));
	ck_assert(transport_enabled(&transport_poll));
	ck_assert(!transport_enabled(&transport_longpoll));
	ck_assert(transport_enabled(&transport_sse));
	ck_assert(!transport_enabled(&transport_ws));
	/* a refused list changes nothing */
	expect_error(ARGS("--transports=ws,foo"), "transport");
	ck_assert(transport_enabled(&transport_poll));
	ck_assert(!transport_enabled(&transport_ws));
	reset_transports();
	ck_assert(transport_enabled(&transport_ws));
}
END_TEST

/* Every option, as typed on the command line. */
static const char *const option_names[] = {
	"--bind",
	"--port",
	"--port-file",
	"--web-root",
	"--transports",
	"--history-size",
	"--history-age",
	"--history-memory",
	"--max-channels",
	"--max-message",
	"--outq-limit",
	"--heartbeat",
	"--longpoll-timeout",
	"--ws-ping",
	"--ws-hangup",
	"--head-timeout",
	"--max-pending",
	"--http-timeout",
	"--threads",
	"--http-threads",
	"--max-connections",
	"--max-streams",
	"--log-level",
	"--help",
	"--version",
};

START_TEST(test_help)
{
	struct run r = parse(ARGS("--help"));

	ck_assert_int_eq(r.result, CONFIG_EXIT_OK);
	ck_assert_uint_eq(r.err_len, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "Usage: anypush"));
	for (size_t i = 0; i < NELEM(option_names); i++) {
		char word[40];

		/* the name followed by a space: --port, not just --port-file */
		snprintf(word, sizeof word, "%s ", option_names[i]);
		ck_assert_msg(strstr(r.out, word) != NULL, "%s not in --help",
			      option_names[i]);
	}
	ck_assert_ptr_nonnull(strstr(r.out, "[8080]"));
	ck_assert_ptr_nonnull(strstr(r.out, "[1000]"));
	ck_assert_ptr_nonnull(strstr(r.out, "[15]"));
	ck_assert(r.out[r.out_len - 1] == '\n');
	run_free(&r);
}
END_TEST

START_TEST(test_help_wins)
{
	/* -h, and --help after other options, even bad ones later */
	struct run r = parse(ARGS("-h"));

	ck_assert_int_eq(r.result, CONFIG_EXIT_OK);
	ck_assert_ptr_nonnull(strstr(r.out, "--port "));
	run_free(&r);
	r = parse(ARGS("--port=1", "--help", "--nope"));
	ck_assert_int_eq(r.result, CONFIG_EXIT_OK);
	ck_assert_uint_eq(r.err_len, 0);
	run_free(&r);
}
END_TEST

START_TEST(test_usage_matches_help)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	struct run r;

	ck_assert_ptr_nonnull(f);
	config_usage(f);
	fclose(f);
	r = parse(ARGS("--help"));
	ck_assert_uint_eq(len, r.out_len);
	ck_assert_str_eq(buf, r.out);
	free(buf);
	run_free(&r);
}
END_TEST

START_TEST(test_version)
{
	struct run r = parse(ARGS("--version"));

	ck_assert_int_eq(r.result, CONFIG_EXIT_OK);
	ck_assert(strncmp(r.out, "anypush ", 8) == 0);
	ck_assert(r.out_len > 9 && r.out[r.out_len - 1] == '\n');
	ck_assert_uint_eq(r.err_len, 0);
	run_free(&r);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_no_arguments);
	tcase_add_test(tc, test_both_spellings);
	tcase_add_test(tc, test_every_option_is_accepted);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_bad_numbers);
	tcase_add_test(tc, test_error_names_option_as_typed);
	tcase_add_test(tc, test_unknown_and_missing);
	tcase_add_test(tc, test_cross_checks);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_transports_option);
	suite_add_tcase(s, tc);

	tc = tcase_create("help");
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_help_wins);
	tcase_add_test(tc, test_usage_matches_help);
	tcase_add_test(tc, test_version);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(config_suite)
