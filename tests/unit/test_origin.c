/* The Origin check (origin.h): --allow-origin lists, same origin by Host
 * whatever the scheme, and the Origin and Host lines of a raw head. */
#include "unit.h"

#include "origin.h"

#include <string.h>

static bool allowed(const char *list, const char *origin, const char *host)
{
	return origin_allowed_by(list, origin, origin ? strlen(origin) : 0,
				 host, host ? strlen(host) : 0);
}

START_TEST(test_list_syntax)
{
	ck_assert(origin_list_valid(""));
	ck_assert(origin_list_valid("*"));
	ck_assert(origin_list_valid("https://a.example"));
	ck_assert(
		origin_list_valid("http://a.example:8080, https://b.example"));
	ck_assert(origin_list_valid("http://[::1]:8080"));
	ck_assert(!origin_list_valid("a.example"));
	ck_assert(!origin_list_valid("https://a.example/"));
	ck_assert(!origin_list_valid("https://a.example/x"));
	ck_assert(!origin_list_valid("ftp://a.example"));
	ck_assert(!origin_list_valid("https://"));
	ck_assert(!origin_list_valid("https://u@a.example"));
	ck_assert(!origin_list_valid("https://a.example,"));
	ck_assert(!origin_list_valid(",https://a.example"));
	ck_assert(!origin_list_valid("**"));
}
END_TEST

START_TEST(test_same_origin)
{
	/* no Origin: not a browser, or a same-origin GET */
	ck_assert(allowed(NULL, NULL, "gw.example"));
	ck_assert(allowed(NULL, NULL, NULL));
	ck_assert(allowed(NULL, "http://gw.example:8080", "gw.example:8080"));
	/* behind a TLS proxy: https page, Host without the port */
	ck_assert(allowed(NULL, "https://gw.example", "gw.example"));
	ck_assert(allowed(NULL, "https://gw.example", "gw.example:443"));
	ck_assert(allowed(NULL, "http://gw.example", "gw.example:80"));
	ck_assert(allowed(NULL, "https://GW.example", "gw.EXAMPLE"));
	/* another port, host, or a suffix or prefix of it */
	ck_assert(!allowed(NULL, "http://gw.example:8081", "gw.example:8080"));
	ck_assert(!allowed(NULL, "http://gw.example", "gw.example:8080"));
	ck_assert(!allowed(NULL, "https://gw.example", "gw.example:80"));
	ck_assert(!allowed(NULL, "http://evil.gw.example", "gw.example"));
	ck_assert(!allowed(NULL, "http://gw.example.evil", "gw.example"));
	ck_assert(!allowed(NULL, "http://gw.example/", "gw.example"));
	ck_assert(!allowed(NULL, "null", "gw.example"));
	ck_assert(!allowed(NULL, "http://gw.example", NULL));
	ck_assert(!allowed(NULL, "http://", ""));
}
END_TEST

START_TEST(test_listed)
{
	const char *list = "https://app.example, http://b.example:81";

	ck_assert(allowed(list, "https://app.example", "gw.example"));
	ck_assert(allowed(list, "HTTPS://APP.example", "gw.example"));
	ck_assert(allowed(list, "http://b.example:81", "gw.example"));
	ck_assert(!allowed(list, "http://app.example", "gw.example"));
	ck_assert(!allowed(list, "https://app.example:444", "gw.example"));
	ck_assert(!allowed(list, "https://app.exampl", "gw.example"));
	ck_assert(!allowed(list, "https://app.example.evil", "gw.example"));
	ck_assert(!allowed(list, "http://b.example", "gw.example"));
	ck_assert(allowed("*", "null", "gw.example"));
	ck_assert(allowed("*", "http://anything", NULL));
}
END_TEST

START_TEST(test_head)
{
	static const char ok[] = "GET /ws HTTP/1.1\r\nHost: gw.example\r\n"
				 "origin:  https://gw.example \r\n\r\n";
	static const char evil[] = "GET /ws HTTP/1.1\r\nHost: gw.example\r\n"
				   "Origin: https://evil.example\r\n\r\n";
	static const char none[] = "GET /ws HTTP/1.1\r\nHost: gw.example\r\n"
				   "X-Origin: https://evil.example\r\n\r\n";
	/* a header after the head's end is the body's, not the head's */
	static const char body[] = "GET /ws HTTP/1.1\nHost: gw.example\n\n"
				   "Origin: https://evil.example\n\n";
	/* the request line is not a header, whatever it holds */
	static const char line[] = "Origin: /x HTTP/1.1\r\nHost: gw.example\r\n"
				   "\r\n";

	origin_configure("");
	ck_assert(origin_head_allowed(LIT(ok)));
	ck_assert(!origin_head_allowed(LIT(evil)));
	ck_assert(origin_head_allowed(LIT(none)));
	ck_assert(origin_head_allowed(LIT(body)));
	ck_assert(origin_head_allowed(LIT(line)));
	origin_configure("https://evil.example");
	ck_assert(origin_head_allowed(LIT(evil)));
	origin_configure("");
	ck_assert(!origin_head_allowed(LIT(evil)));
}
END_TEST

static Suite *origin_suite(void)
{
	Suite *s = suite_create("origin");
	TCase *tc = tcase_create("origin");

	tcase_add_test(tc, test_list_syntax);
	tcase_add_test(tc, test_same_origin);
	tcase_add_test(tc, test_listed);
	tcase_add_test(tc, test_head);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(origin_suite)
