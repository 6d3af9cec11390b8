/* The config file: its parser on hostile text (long lines, no '=',
 * duplicates, CRLF, NUL, huge numbers, unknown names, a BOM), flags over
 * the file in either order, the file named in errors, and SIGHUP's
 * reload and update. Errors go to a memory stream to be read back. */
#include "unit.h"

#include "config.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct config cfg;
static char *errbuf;
static size_t errlen;

/* Parse text over the defaults; the result, with the error in errbuf. */
static int text(const char *s, size_t len)
{
	FILE *err = open_memstream(&errbuf, &errlen);
	int rc;

	ck_assert_ptr_nonnull(err);
	config_free(&cfg);
	config_defaults(&cfg);
	rc = config_parse_text(&cfg, "t.conf", s, len, err);
	fclose(err);
	return rc;
}

/* The text fails with one line "anypush: t.conf:LINE: ...WORD...". */
static void expect_error(const char *s, size_t len, int line, const char *word)
{
	char where[64];
	int rc = text(s, len);

	snprintf(where, sizeof where, "anypush: t.conf:%d: ", line);
	ck_assert_msg(rc == -1, "accepted: %.60s", s);
	ck_assert_msg(strncmp(errbuf, where, strlen(where)) == 0 &&
			      strstr(errbuf, word) != NULL &&
			      strchr(errbuf, '\n') == errbuf + errlen - 1,
		      "want '%s...%s', got '%s'", where, word, errbuf);
	free(errbuf);
}

static void expect_ok(const char *s, size_t len)
{
	int rc = text(s, len);

	ck_assert_msg(rc == 0 && errlen == 0, "refused: '%s'", errbuf);
	free(errbuf);
}

static void teardown(void)
{
	config_free(&cfg);
}

START_TEST(test_good_file)
{
	expect_ok(LIT("# a comment\n\n  \t\nport = 9000\nhistory-size=5\n"
		      "  history_age\t=\t7  \nweb_root = \"/srv/my web\"\n"
		      "port_file =\nbind = \"\"\nlog-level = debug"));
	ck_assert_uint_eq(cfg.port, 9000);
	ck_assert_uint_eq(cfg.history_size, 5);
	ck_assert_uint_eq(cfg.history_age, 7);
	ck_assert_str_eq(cfg.web_root, "/srv/my web");
	ck_assert_str_eq(cfg.port_file, "");
	ck_assert_str_eq(cfg.bind, "");
	ck_assert_str_eq(cfg.log_level, "debug");
	/* options not in the file keep their defaults */
	ck_assert_uint_eq(cfg.max_message, 65536);
	expect_ok(LIT(""));
	expect_ok(LIT("\n\n# only comments\n"));
}
END_TEST

START_TEST(test_crlf_and_bom)
{
	expect_ok(LIT("\xEF\xBB\xBFport = 81\r\nweb_root = /w\r\n"));
	ck_assert_uint_eq(cfg.port, 81);
	ck_assert_str_eq(cfg.web_root, "/w"); /* no \r kept */
	/* a BOM anywhere else is text, and no option name */
	expect_error(LIT("port = 1\n\xEF\xBB\xBFport = 2\n"), 2, "unknown");
	/* a lone \r inside a line is a control character */
	expect_error(LIT("web_root = a\rb\n"), 1, "control");
}
END_TEST

START_TEST(test_hostile_lines)
{
	char big[8192];

	expect_error(LIT("port 80\n"), 1, "name = value");
	expect_error(LIT("# fine\nport\n"), 2, "name = value");
	expect_error(LIT("= 80\n"), 1, "unknown option");
	expect_error(LIT("port = 80\nnope = 1\n"), 2, "unknown option 'nope'");
	expect_error(LIT("--port = 80\n"), 1, "unknown option");
	expect_error(LIT("help = 1\n"), 1, "unknown option");
	expect_error(LIT("config = /etc/x\n"), 1, "flag only");
	expect_error(LIT("port = 80\n\nport = 81\n"), 3,
		     "set twice (first on line 1)");
	expect_error(LIT("history_size = 1\nhistory-size = 1\n"), 2, "twice");
	expect_error(LIT("port = 80 # the port\n"), 1, "own line");
	expect_error(LIT("web_root = \"/a\n"), 1, "closing");
	expect_error(LIT("web_root = \"a\"b\"\n"), 1, "quoted");
	expect_ok(LIT("web_root = \"#a\"\n"));
	ck_assert_str_eq(cfg.web_root, "#a");
	/* a NUL anywhere refuses the file: C strings would cut it short */
	expect_error(LIT("port = 80\n# \0\n"), 2, "NUL");
	/* line length: at the cap is fine, one past it is not */
	memset(big, 'a', sizeof big);
	memcpy(big, "web_root = ", 11);
	expect_ok(big, 4096);
	ck_assert_uint_eq(strlen(cfg.web_root), 4096 - 11);
	expect_error(big, 4097, 1, "longer than 4096");
	expect_error(big, sizeof big, 1, "longer");
}
END_TEST

START_TEST(test_numbers)
{
	expect_error(LIT("port = 99999999999999999999999999\n"), 1,
		     "--port wants a number from 0 to 65535");
	expect_error(LIT("history_size = 18446744073709551616\n"), 1,
		     "--history-size wants a number");
	expect_error(LIT("port = -1\n"), 1, "wants a number");
	expect_error(LIT("port = +1\n"), 1, "wants a number");
	expect_error(LIT("port = 0x10\n"), 1, "wants a number");
	expect_error(LIT("port = \n"), 1, "wants a number");
	expect_error(LIT("port = 65536\n"), 1, "65535");
	expect_error(LIT("port = 8 0\n"), 1, "wants a number");
	expect_ok(LIT("port = \"80\"\n"));
	ck_assert_uint_eq(cfg.port, 80);
}
END_TEST

/* The file through config_parse: path and flags, in both orders. */
static char path[64];

static void write_file(const char *s)
{
	FILE *f;

	snprintf(path, sizeof path, "/tmp/anypush-test-%d.conf", (int)getpid());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(s, f);
	fclose(f);
}

static enum config_result parse(char **argv, int argc)
{
	FILE *out = fopen("/dev/null", "w"),
	     *err = open_memstream(&errbuf, &errlen);
	enum config_result r;

	ck_assert(out && err);
	config_free(&cfg);
	config_defaults(&cfg);
	r = config_parse(&cfg, argc, argv, out, err);
	fclose(out);
	fclose(err);
	return r;
}

START_TEST(test_flags_win)
{
	char flag[96];

	write_file("port = 9000\nheartbeat = 3\nweb_root = /from/file\n");
	snprintf(flag, sizeof flag, "--config=%s", path);
	{
		char *before[] = { "anypush", "--port=1", flag, NULL };
		char *after[] = { "anypush", flag, "--port", "2", NULL };

		ck_assert_int_eq(parse(before, 3), CONFIG_RUN);
		free(errbuf);
		ck_assert_uint_eq(cfg.port, 1);
		ck_assert_uint_eq(cfg.heartbeat, 3);
		ck_assert_str_eq(cfg.web_root, "/from/file");
		ck_assert_int_eq(parse(after, 4), CONFIG_RUN);
		free(errbuf);
		ck_assert_uint_eq(cfg.port, 2);
		ck_assert_uint_eq(cfg.heartbeat, 3);
	}
	/* a bad value in the file is an error even where a flag wins */
	write_file("port = lots\n");
	{
		char *argv[] = { "anypush", "--port=1", flag, NULL };

		ck_assert_int_eq(parse(argv, 3), CONFIG_ERROR);
		ck_assert_msg(strstr(errbuf, path) && strstr(errbuf, ":1: "),
			      "%s", errbuf);
		free(errbuf);
	}
	unlink(path);
	{
		char *argv[] = { "anypush", flag, NULL };
		char *none[] = { "anypush", "--config=", NULL };

		/* named and missing is an error; '' reads nothing */
		ck_assert_int_eq(parse(argv, 2), CONFIG_ERROR);
		ck_assert_ptr_nonnull(strstr(errbuf, "No such file"));
		free(errbuf);
		ck_assert_int_eq(parse(none, 2), CONFIG_RUN);
		free(errbuf);
	}
}
END_TEST

START_TEST(test_reload_update)
{
	struct config next;
	char flag[96];
	FILE *err;

	write_file("log_level = info\nmax_message = 100\nport = 0\n");
	snprintf(flag, sizeof flag, "--config=%s", path);
	{
		char *argv[] = { "anypush", flag, "--heartbeat=4", NULL };

		ck_assert_int_eq(parse(argv, 3), CONFIG_RUN);
		free(errbuf);
		/* a refused file leaves next to be freed, cur untouched */
		write_file("max_message = 200\nport = x\n");
		err = open_memstream(&errbuf, &errlen);
		ck_assert_int_eq(config_reload(&next, 3, argv, err), -1);
		fclose(err);
		ck_assert_ptr_nonnull(strstr(errbuf, ":2: --port"));
		free(errbuf);
		config_free(&next);
		ck_assert_uint_eq(cfg.max_message, 100);
		/* live ones change; port is only reported; flags still win */
		write_file("log_level = debug\nmax_message = 200\nport = 7\n"
			   "heartbeat = 9\n");
		err = open_memstream(&errbuf, &errlen);
		ck_assert_int_eq(config_reload(&next, 3, argv, err), 0);
		fclose(err);
		free(errbuf);
		log_set_level(LOG_ERROR); /* quiet: the update logs */
		ck_assert_int_eq(config_update(&cfg, &next), 2);
		config_free(&next);
		ck_assert_str_eq(cfg.log_level, "debug");
		ck_assert_uint_eq(cfg.max_message, 200);
		ck_assert_uint_eq(cfg.port, 0);
		ck_assert_uint_eq(cfg.heartbeat, 4);
	}
	unlink(path);
}
END_TEST

START_TEST(test_update_fits_running)
{
	/* a file valid on its own but not with what runs: a larger history
	 * budget waits for a restart, so a live max_message at or above the
	 * running budget is refused whole */
	struct config cur, next;

	config_defaults(&cur);
	cur.history_memory = 65536;
	next = cur;
	next.history_memory = 1 << 20;
	next.max_message = 100000;
	next.heartbeat = cur.heartbeat + 1;
	log_set_level(LOG_ERROR); /* quiet: the refusal logs */
	ck_assert_int_eq(config_update(&cur, &next), -1);
	ck_assert_uint_eq(cur.max_message, 65536);
	ck_assert_uint_eq(cur.heartbeat, next.heartbeat - 1);
	next.max_message = 65535;
	ck_assert_int_eq(config_update(&cur, &next), 2);
	ck_assert_uint_eq(cur.max_message, 65535);
}
END_TEST

START_TEST(test_json_escape)
{
	char out[64];

	ck_assert_uint_eq(log_json_escape(out, sizeof out,
					  "a\"b\\c\n\x01"
					  "d\t"),
			  strlen("a\\\"b\\\\c\\u000a\\u0001d\\u0009"));
	ck_assert_str_eq(out, "a\\\"b\\\\c\\u000a\\u0001d\\u0009");
	/* cut between escapes, never inside one */
	log_json_escape(out, 7, "abcde\"f");
	ck_assert_str_eq(out, "abcde");
}
END_TEST

static Suite *config_file_suite(void)
{
	Suite *s = suite_create("config_file");
	TCase *tc = tcase_create("text");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_crlf_and_bom);
	tcase_add_test(tc, test_hostile_lines);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_flags_win);
	tcase_add_test(tc, test_reload_update);
	tcase_add_test(tc, test_update_fits_running);
	tcase_add_test(tc, test_json_escape);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(config_file_suite)
