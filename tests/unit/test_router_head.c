/* The router's first look at a connection: incomplete, HTTP, a WebSocket
 * or SSE subscribe lws will accept, malformed, or too large. The bytes are
 * whatever a client sent first, so most cases here are hostile. */
#include "unit.h"

#include "router_head.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 8192 /* the router's own cap */

static enum head_verdict classify(const char *buf, size_t len)
{
	return router_head_classify(buf, len, CAP, true, false);
}

static enum head_verdict classify_str(const char *s)
{
	return classify(s, strlen(s));
}

static const char *verdict_name(enum head_verdict v)
{
	switch (v) {
	case HEAD_INCOMPLETE:
		return "INCOMPLETE";
	case HEAD_HTTP:
		return "HTTP";
	case HEAD_WS:
		return "WS";
	case HEAD_SSE:
		return "SSE";
	case HEAD_BAD:
		return "BAD";
	case HEAD_TOO_LARGE:
		return "TOO_LARGE";
	}
	return "?";
}

#define ck_verdict(got, want)                                                \
	do {                                                                 \
		enum head_verdict g_ = (got), w_ = (want);                   \
		ck_assert_msg(g_ == w_, "%s, expected %s", verdict_name(g_), \
			      verdict_name(w_));                             \
	} while (0)

/* A WebSocket upgrade for target, with upgrade_line as its Upgrade
 * header line (NULL: none). */
static const char *ws_head(const char *target, const char *upgrade_line)
{
	static char buf[2048];

	snprintf(buf, sizeof buf,
		 "GET %s HTTP/1.1\r\n"
		 "Host: localhost:8080\r\n"
		 "%s%s"
		 "Connection: Upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Version: 13\r\n"
		 "Sec-WebSocket-Protocol: anypush.v1\r\n"
		 "\r\n",
		 target, upgrade_line ? upgrade_line : "",
		 upgrade_line ? "\r\n" : "");
	return buf;
}

static enum head_verdict ws_target(const char *target)
{
	return classify_str(ws_head(target, "Upgrade: websocket"));
}

/* ---- plain HTTP ---- */

START_TEST(test_http_requests)
{
	ck_verdict(classify_str("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		   HEAD_HTTP);
	ck_verdict(classify_str("GET /channels/x HTTP/1.1\r\n\r\n"), HEAD_HTTP);
	ck_verdict(classify_str("GET /channels/x?transport=sse HTTP/1.0\r\n"
				"Accept: text/event-stream\r\n\r\n"),
		   HEAD_HTTP);
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\r\n"
				"Content-Length: 2\r\n\r\n{}"),
		   HEAD_HTTP);
	ck_verdict(classify_str("OPTIONS * HTTP/1.1\r\n\r\n"), HEAD_HTTP);
	ck_verdict(classify_str("DELETE /x HTTP/1.1\r\n\r\n"), HEAD_HTTP);
	/* bare LF line ends */
	ck_verdict(classify_str("GET / HTTP/1.1\nHost: x\n\n"), HEAD_HTTP);
	/* a tab and bytes >= 0x80 in a header value are not control bytes */
	ck_verdict(classify_str("GET / HTTP/1.1\r\nX-A:\tv \xc3\xa9\r\n\r\n"),
		   HEAD_HTTP);
	/* one framing header, plain chunked in any case, blanks around it */
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\r\n"
				"Transfer-Encoding: \tChunked \r\n\r\n"),
		   HEAD_HTTP);
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\n"
				"content-length:2\n\n{}"),
		   HEAD_HTTP);
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\r\n"
				"Content-Length: 0000000000000000002 \r\n\r\n{}"),
		   HEAD_HTTP);
	/* names that merely contain the framing ones */
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\r\n"
				"Content-Length: 2\r\nX-Content-Length: 3\r\n"
				"Transfer-Encodings: gzip\r\n\r\n{}"),
		   HEAD_HTTP);
}
END_TEST

START_TEST(test_body_after_head)
{
	/* whatever follows the blank line is the body, not the head */
	static const char req[] = "POST /channels/x HTTP/1.1\r\n"
				  "Content-Type: application/octet-stream\r\n"
				  "Content-Length: 6\r\n\r\n"
				  "\x00\x01\xff\x7f\r\n";

	ck_verdict(classify(LIT(req)), HEAD_HTTP);
	/* even when the body looks like an Upgrade header */
	ck_verdict(classify_str("GET /channels/x HTTP/1.1\r\n\r\n"
				"Upgrade: websocket\r\n\r\n"),
		   HEAD_HTTP);
	/* or holds a NUL right after the head */
	ck_verdict(classify(LIT("GET / HTTP/1.1\r\n\r\n\0\0\0")), HEAD_HTTP);
}
END_TEST

/* ---- WebSocket ---- */

START_TEST(test_ws_upgrades)
{
	ck_verdict(ws_target("/channels/x"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?since=5"), HEAD_WS);
	ck_verdict(ws_target("/channels/chat:lobby?since=0&transport=ws"),
		   HEAD_WS);
	ck_verdict(ws_target("/channels/a,b,c?since=1,2,3"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?since=18446744073709551615"),
		   HEAD_WS);
	ck_verdict(ws_target("/channels/x?client=abc_DEF-123"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?foo=bar&since=3"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?since=k3x9a2bq:17"), HEAD_WS);
	ck_verdict(ws_target("/channels/a,b?since=k3x9a2bq:17,4"), HEAD_WS);
}
END_TEST

/* MHD and lws decode the query before the handlers parse the cursor, and
 * browsers encode the colon (URLSearchParams, encodeURIComponent): the
 * router must judge the same decoded text, or an encoded cursor would
 * reach MHD, which cannot upgrade, and get 400 upgrade_required. */
START_TEST(test_ws_encoded_cursor)
{
	ck_verdict(ws_target("/channels/x?since=k3x9a2bq%3A17"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?since=k3x9a2bq%3a17"), HEAD_WS);
	ck_verdict(
		ws_target("/channels/a,b?since=k3x9a2bq%3A17%2Cp0ab12cd%3A4"),
		HEAD_WS);
	ck_verdict(ws_target("/channels/a,b?since=k3x9a2bq:17%2c4"), HEAD_WS);
	ck_verdict(ws_target("/channels/x?since=%31%37"), HEAD_WS);
	/* still strict after decoding; broken escapes go to MHD's 400 */
	ck_verdict(ws_target("/channels/x?since=k3x9a2bq%3A"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=1%2C2"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=1%00"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=17%"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=17%3"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=%zz17"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=%253A"), HEAD_HTTP);
	ck_verdict(ws_target("/channels/x?since=1+2"), HEAD_HTTP);
}
END_TEST

/* 32 of the longest cursors, each colon and comma encoded: more text
 * than CURSOR_TEXT_MAX before decoding, exactly the limit after. */
START_TEST(test_ws_encoded_cursor_longest)
{
	static char target[1500];
	size_t n;

	n = (size_t)snprintf(target, sizeof target, "/channels/");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(target + n, sizeof target - n, "%sc%d",
				      i ? "," : "", i);
	n += (size_t)snprintf(target + n, sizeof target - n, "?since=");
	for (int i = 0; i < 32; i++)
		n += (size_t)snprintf(target + n, sizeof target - n,
				      "%s3w5e11264sgsf%%3A18446744073709551615",
				      i ? "%2C" : "");
	ck_assert_uint_lt(n, sizeof target - 8);
	ck_verdict(ws_target(target), HEAD_WS);
	/* one more cursor than channels */
	snprintf(target + n, sizeof target - n, "%%2C1");
	ck_verdict(ws_target(target), HEAD_HTTP);
}
END_TEST

START_TEST(test_ws_upgrade_header_case)
{
	ck_verdict(classify_str(ws_head("/channels/x", "upgrade: WebSocket")),
		   HEAD_WS);
	ck_verdict(classify_str(ws_head("/channels/x", "UPGRADE: WEBSOCKET")),
		   HEAD_WS);
	ck_verdict(classify_str(ws_head("/channels/x", "Upgrade:websocket")),
		   HEAD_WS);
	/* no Upgrade, or not to websocket: plain HTTP */
	ck_verdict(classify_str(ws_head("/channels/x", NULL)), HEAD_HTTP);
	ck_verdict(classify_str(ws_head("/channels/x", "Upgrade: h2c")),
		   HEAD_HTTP);
	ck_verdict(classify_str(ws_head("/channels/x", "X-Upgrade: websocket")),
		   HEAD_HTTP);
	/* not in the request line either */
	ck_verdict(classify_str("GET /channels/x?u=Upgrade:websocket HTTP/1.1"
				"\r\n\r\n"),
		   HEAD_HTTP);
}
END_TEST

START_TEST(test_ws_disabled)
{
	const char *h = ws_head("/channels/x?since=5", "Upgrade: websocket");

	ck_verdict(router_head_classify(h, strlen(h), CAP, false, false), HEAD_HTTP);
}
END_TEST

START_TEST(test_ws_doubtful_goes_to_http)
{
	/* libmicrohttpd answers these with the protocol's JSON errors */
	static const char *const targets[] = {
		"/channels/x?since=abc",
		"/channels/x?since=",
		"/channels/x?since=-1",
		"/channels/x?since=18446744073709551616",
		"/channels/x?since=1,2", /* two ids for one channel */
		"/channels/a,b?since=1", /* one id for two */
		"/channels/x?transport=sse",
		"/channels/x?transport=poll",
		"/channels/x?transport=WS",
		"/channels/x?client=bad!id",
		"/channels/a%3Ab",
		"/channels/caf%C3%A9",
		"/channels/",
		"/channels",
		"/channels/x/info",
		"/channels/a,,b",
		"/channels/a,a",
		"/channels/.",
		"/channels/..",
		"/channels/a b",
		"/",
		"/index.html",
		"/ws/x",
		"http://evil/channels/x",
	};

	for (size_t i = 0; i < NELEM(targets); i++) {
		enum head_verdict v = ws_target(targets[i]);

		ck_assert_msg(v == HEAD_HTTP || v == HEAD_BAD, "%s: %s",
			      targets[i], verdict_name(v));
		if (strchr(targets[i], ' ') == NULL)
			ck_assert_msg(v == HEAD_HTTP, "%s: %s", targets[i],
				      verdict_name(v));
	}
}
END_TEST

START_TEST(test_ws_needs_get)
{
	ck_verdict(classify_str("POST /channels/x HTTP/1.1\r\n"
				"Upgrade: websocket\r\n\r\n"),
		   HEAD_HTTP);
	ck_verdict(classify_str("GETX /channels/x HTTP/1.1\r\n"
				"Upgrade: websocket\r\n\r\n"),
		   HEAD_HTTP);
}
END_TEST

/* ---- incomplete and too large ---- */

/* An SSE subscribe with the given target and extra header lines. */
static enum head_verdict sse_classify(const char *target, const char *extra,
				      bool sse_enabled)
{
	char buf[2048];

	snprintf(buf, sizeof buf,
		 "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", target,
		 extra);
	return router_head_classify(buf, strlen(buf), CAP, true, sse_enabled);
}

#define ACCEPT_SSE "Accept: text/event-stream\r\n"

START_TEST(test_sse_valid)
{
	ck_verdict(sse_classify("/channels/a?transport=sse", "", true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a,b.c", ACCEPT_SSE, true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a", "accept: TEXT/Event-Stream\r\n",
				true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a,b?transport=sse&since=3,4"
				"&client=me_1&presence=1&sse_events=0",
				"", true),
		   HEAD_SSE);
	/* browsers encode the colon and comma of a cursor */
	ck_verdict(sse_classify("/channels/a,b?transport=sse&since="
				"abc%3A3%2Cabc%3A4",
				"", true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a?transport=sse",
				"Last-Event-ID: abc:7\r\n", true),
		   HEAD_SSE);
	/* an empty Last-Event-ID is ignored, as http.c ignores it */
	ck_verdict(sse_classify("/channels/a?transport=sse&since=2",
				"Last-Event-ID: \r\n", true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a?transport=sse&sse_events=true",
				"", true),
		   HEAD_SSE);
	ck_verdict(sse_classify("/channels/a?transport=sse&sse_events=false",
				"", true),
		   HEAD_SSE);
}
END_TEST

/* Whatever libmicrohttpd must answer with a JSON error, or may read
 * differently, goes there. */
START_TEST(test_sse_doubtful_goes_to_http)
{
	ck_verdict(sse_classify("/channels/a?transport=sse", "", false),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a", "", true), HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=poll", ACCEPT_SSE, true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=longpoll", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=ss", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse%20", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a/info?transport=sse", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a%62?transport=sse", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a,a?transport=sse", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/?transport=sse", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/other?transport=sse", "", true), HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&since=x", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a,b?transport=sse&since=3", "",
				true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&since=%3", "",
				true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse",
				"Last-Event-ID: -1\r\n", true),
		   HEAD_HTTP);
	/* Last-Event-ID wins over a good since */
	ck_verdict(sse_classify("/channels/a?transport=sse&since=1",
				"Last-Event-ID: x\r\n", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&client=a%20b", "",
				true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&client=", "", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&sse_events=2", "",
				true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse&sse_events=", "",
				true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse",
				"Content-Length: 0\r\n", true),
		   HEAD_HTTP);
	ck_verdict(sse_classify("/channels/a?transport=sse",
				"Transfer-Encoding: chunked\r\n", true),
		   HEAD_HTTP);
	/* without ?transport, an upgrade picks ws first (http.c) */
	ck_verdict(sse_classify("/channels/a",
				ACCEPT_SSE "Upgrade: websocket\r\n", true),
		   HEAD_HTTP);
}
END_TEST

START_TEST(test_sse_needs_get)
{
	const char *h = "POST /channels/a?transport=sse HTTP/1.1\r\n"
			"Host: x\r\n\r\n";
	const char *head = "HEAD /channels/a?transport=sse HTTP/1.1\r\n"
			   "Host: x\r\n\r\n";

	ck_verdict(router_head_classify(h, strlen(h), CAP, true, true),
		   HEAD_HTTP);
	ck_verdict(router_head_classify(head, strlen(head), CAP, true, true),
		   HEAD_HTTP);
}
END_TEST

START_TEST(test_incomplete)
{
	static const char *const heads[] = {
		"",
		"G",
		"GET",
		"GET ",
		"GET /chan",
		"GET / HTTP/1.1",
		"GET / HTTP/1.1\r",
		"GET / HTTP/1.1\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r",
		"POST /channels/x HTTP/1.1\r\nContent-Length: 5\r\n",
	};

	for (size_t i = 0; i < NELEM(heads); i++)
		ck_assert_msg(classify_str(heads[i]) == HEAD_INCOMPLETE,
			      "'%s': %s", heads[i],
			      verdict_name(classify_str(heads[i])));
}
END_TEST

START_TEST(test_every_prefix_incomplete)
{
	/* a head arriving a byte at a time decides only at its end */
	const char *h = ws_head("/channels/a,b?since=4,0",
				"Upgrade: websocket");
	size_t len = strlen(h);

	for (size_t n = 0; n < len; n++)
		ck_assert_msg(classify(h, n) == HEAD_INCOMPLETE,
			      "prefix %zu: %s", n,
			      verdict_name(classify(h, n)));
	ck_verdict(classify(h, len), HEAD_WS);
}
END_TEST

START_TEST(test_too_large)
{
	static char buf[CAP + 64];
	size_t n;

	/* a long target with no end of head */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', sizeof buf - 5);
	ck_verdict(router_head_classify(buf, CAP - 1, CAP, true, false),
		   HEAD_INCOMPLETE);
	ck_verdict(router_head_classify(buf, CAP, CAP, true, false), HEAD_TOO_LARGE);

	/* many headers */
	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
	while (n + 8 <= CAP)
		n += (size_t)sprintf(buf + n, "X-A: b\r\n");
	ck_verdict(router_head_classify(buf, n, n, true, false), HEAD_TOO_LARGE);
	ck_verdict(router_head_classify(buf, n, n + 1, true, false), HEAD_INCOMPLETE);

	/* a complete head right at the cap is fine: the last header
	 * "X-A: b\r\n" becomes "X-A:\r\n\r\n" */
	memcpy(buf + n - 4, "\r\n\r\n", 4);
	ck_verdict(router_head_classify(buf, n, n, true, false), HEAD_HTTP);
}
END_TEST

/* ---- malformed ---- */

struct bad_head {
	const char *s;
	size_t len;
	const char *what;
};

#define BH(s, what)                        \
	{                                  \
		(s), sizeof(s) - 1, (what) \
	}

static const struct bad_head bad_heads[] = {
	BH("get / HTTP/1.1\r\n\r\n", "lowercase method"),
	BH("Get / HTTP/1.1\r\n\r\n", "mixed-case method"),
	BH(" GET / HTTP/1.1\r\n\r\n", "leading space"),
	BH("GET\t/ HTTP/1.1\r\n\r\n", "tab after method"),
	BH("GET  / HTTP/1.1\r\n\r\n", "double space"),
	BH("GET /\r\n\r\n", "no HTTP version (HTTP/0.9)"),
	BH("GET / \r\n\r\n", "empty HTTP version"),
	BH("GET /HTTP/1.1\r\n\r\n", "no space before the version"),
	BH("GET / HTTP/2.0\r\n\r\n", "HTTP/2 text"),
	BH("GET / FTP/1.1\r\n\r\n", "not HTTP"),
	BH("GET / http/1.1\r\n\r\n", "lowercase version"),
	BH("GET / HTTP/1\r\n\r\n", "short version"),
	BH("\r\n\r\n", "empty request line"),
	BH("\n\n", "empty request line, LF"),
	BH("GET\r\n\r\n", "method only"),
	BH("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 preface"),
	BH("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", "NUL in a header"),
	BH("GET /\0 HTTP/1.1\r\n\r\n", "NUL in the target"),
	BH("GET /\0", "NUL before the head ends"),
	BH("\0", "just NUL"),
	BH("GET / HTTP/1.1\r\nX: \x01\r\n\r\n", "control byte in a header"),
	BH("GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", "DEL in a header"),
	BH("GET /\x1b[2J HTTP/1.1\r\n\r\n", "escape in the target"),
	BH("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", "17-letter method"),
	BH("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "long method, incomplete"),
	BH("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "TLS ClientHello"),
	BH("SSH-2.0-OpenSSH_9.6\r\n", "SSH banner"),
	BH("\xff\xfe\xfd", "binary"),
	BH("{\"op\":\"subscribe\"}", "JSON"),
	BH("1 / HTTP/1.1\r\n\r\n", "digit method"),
	/* framing two parsers could read differently (request smuggling) */
	BH("POST / HTTP/1.1\r\nContent-Length: 5\r\n"
	   "Transfer-Encoding: chunked\r\n\r\n",
	   "Content-Length and Transfer-Encoding"),
	BH("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	   "Transfer-Encoding: identity\r\n\r\n",
	   "two Transfer-Encoding headers"),
	BH("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
	   "two Content-Length headers, even equal"),
	BH("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
	   "a Transfer-Encoding list"),
	BH("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	   "a Transfer-Encoding other than chunked"),
	BH("POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
	   "a blank before the colon"),
	BH("POST / HTTP/1.1\nContent-Length\t: 5\n\n",
	   "a tab before the colon"),
	BH("POST / HTTP/1.1\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n"
	   "Content-Length: 5\r\n\r\n",
	   "a folded header line"),
	BH("GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", "a line without a colon"),
	BH("GET / HTTP/1.1\r\n: v\r\n\r\n", "an empty header name"),
	BH("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "a negative length"),
	BH("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", "a signed length"),
	BH("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", "a length list"),
	BH("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", "two numbers"),
	BH("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", "an empty length"),
	BH("POST / HTTP/1.1\r\nContent-Length: 12345678901234567890\r\n\r\n",
	   "a 20-digit length"),
};

START_TEST(test_bad)
{
	const struct bad_head *c = &bad_heads[_i];
	enum head_verdict v = classify(c->s, c->len);

	ck_assert_msg(v == HEAD_BAD, "%s: %s", c->what, verdict_name(v));
}
END_TEST

/* xorshift: reproducible noise */
static uint64_t rng = 0x2545F4914F6CDD1DULL;

static unsigned next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng >> 32);
}

START_TEST(test_random_binary)
{
	char buf[512];

	for (int round = 0; round < 2000; round++) {
		size_t len = 1 + next_rand() % sizeof buf;

		for (size_t i = 0; i < len; i++)
			buf[i] = (char)next_rand();
		/* a first byte that cannot start a method */
		if (buf[0] >= 'A' && buf[0] <= 'Z')
			buf[0] = (char)0x80;
		ck_verdict(classify(buf, len), HEAD_BAD);
	}
}
END_TEST

START_TEST(test_random_mutations)
{
	/* good heads with a few random edits, cut anywhere, classified from
	 * a buffer of exactly their length: any verdict, but a sane one and
	 * no read out of bounds (valgrind or ASan would say) */
	static const char interesting[] = " ,?&=%:/\r\n\t\0~.";
	const char *bases[4];
	char work[1200];
	int counts[HEAD_TOO_LARGE + 1] = { 0 };

	bases[0] = strdup(
		ws_head("/channels/a,b?since=1,2", "Upgrade: websocket"));
	bases[1] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	bases[2] = "POST /channels/x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	bases[3] = "GET /channels/a,b?transport=sse&since=1,2 HTTP/1.1\r\n"
		   "Accept: text/event-stream\r\n\r\n";
	ck_assert_ptr_nonnull(bases[0]);
	for (int round = 0; round < 30000; round++) {
		const char *base = bases[next_rand() % 4];
		size_t len = strlen(base), edits = next_rand() % 4, cap;
		enum head_verdict v;
		char *exact;

		memcpy(work, base, len);
		for (size_t e = 0; e < edits && len > 0; e++) {
			size_t at = next_rand() % len;

			switch (next_rand() % 4) {
			case 0: /* any byte */
				work[at] = (char)next_rand();
				break;
			case 1: /* a byte that means something here */
				work[at] = interesting[next_rand() %
						       (sizeof interesting - 1)];
				break;
			case 2: /* delete */
				memmove(work + at, work + at + 1, len - at - 1);
				len--;
				break;
			default: /* insert */
				memmove(work + at + 1, work + at, len - at);
				work[at] = interesting[next_rand() %
						       (sizeof interesting - 1)];
				len++;
				break;
			}
		}
		if (next_rand() % 4 == 0)
			len = next_rand() % (len + 1);
		switch (next_rand() % 3) {
		case 0:
			cap = len;
			break;
		case 1:
			cap = len + 1;
			break;
		default:
			cap = CAP;
			break;
		}
		exact = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(exact);
		memcpy(exact, work, len);
		v = router_head_classify(exact, len, cap ? cap : 1,
					 next_rand() % 2, next_rand() % 2);
		free(exact);
		ck_assert_int_ge(v, HEAD_INCOMPLETE);
		ck_assert_int_le(v, HEAD_TOO_LARGE);
		counts[v]++;
	}
	free((char *)bases[0]);
	/* the edits reach every verdict */
	for (int v = 0; v <= HEAD_TOO_LARGE; v++)
		ck_assert_msg(counts[v] > 0, "never %s",
			      verdict_name((enum head_verdict)v));
}
END_TEST

START_TEST(test_exact_length_reads)
{
	/* every prefix of many heads, each in a buffer of exactly that
	 * size, so a read past len is caught by valgrind/ASan */
	static const char *const heads[] = {
		"GET /channels/a,b?since=1,2&client=x HTTP/1.1\r\n"
		"Upgrade: websocket\r\n\r\n",
		"GET / HTTP/1.1\n\n",
		"GET /channels/x?since HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
		"GET /channels/x?&&& HTTP/1.1\r\nUpgrade:\r\n\r\n",
		"GET /channels/x HTTP/1.1\r\nUpgrade: websocke\r\n\r\n",
	};

	for (size_t i = 0; i < NELEM(heads); i++) {
		size_t len = strlen(heads[i]);

		for (size_t n = 1; n <= len; n++) {
			char *b = malloc(n);

			ck_assert_ptr_nonnull(b);
			memcpy(b, heads[i], n);
			(void)router_head_classify(b, n, CAP, true, false);
			free(b);
		}
	}
}
END_TEST

/* ---- scanning a head that comes in pieces ---- */

/* Feed buf[0..len) to a fresh scanner in pieces of `step` bytes (0: random
 * sizes) and check after every piece that it says "ready" exactly when
 * the whole classifier would say more than INCOMPLETE. */
static void scan_agrees(const char *buf, size_t len, size_t cap, size_t step)
{
	struct head_scan s = { 0 };
	size_t at = 0;

	while (at < len) {
		size_t k = step ? step : 1 + next_rand() % 64;
		bool ready;
		enum head_verdict v;

		if (k > len - at)
			k = len - at;
		ready = router_head_scan(&s, buf + at, k, cap);
		at += k;
		v = router_head_classify(buf, at, cap, true, false);
		ck_assert_msg(ready == (v != HEAD_INCOMPLETE),
			      "after %zu of %zu bytes (cap %zu): scan %s, "
			      "classify %s",
			      at, len, cap, ready ? "ready" : "waits",
			      verdict_name(v));
		if (ready)
			return; /* the router stops feeding here */
	}
}

START_TEST(test_scan_matches_classify)
{
	static const char *const heads[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET / HTTP/1.1\r\n\nbody",
		"GET / HTTP/1.1\r\n\r\n\x01\x02",
		"POST /channels/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n",
		"ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
		"GET\r\n\r\n",
		"\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r",
		"GET / HTTP/1.1\r\r\n\n",
		"GET / HTTP/1.1\n\r\n\r\n",
	};

	for (size_t i = 0; i < NELEM(heads); i++) {
		size_t len = strlen(heads[i]);

		for (size_t step = 1; step <= 4; step++)
			scan_agrees(heads[i], len, CAP, step);
		scan_agrees(heads[i], len, CAP, len);
		scan_agrees(heads[i], len, len, 1);
		scan_agrees(heads[i], len, len > 8 ? len - 8 : 1, 1);
	}
	for (size_t i = 0; i < NELEM(bad_heads); i++) {
		scan_agrees(bad_heads[i].s, bad_heads[i].len, CAP, 1);
		scan_agrees(bad_heads[i].s, bad_heads[i].len, CAP, 3);
	}
	scan_agrees(ws_head("/channels/a,b?since=4,0", "Upgrade: websocket"),
		    strlen(ws_head("/channels/a,b?since=4,0",
				   "Upgrade: websocket")),
		    CAP, 1);
}
END_TEST

START_TEST(test_scan_byte_by_byte_to_the_cap)
{
	/* an 8 KiB head a byte at a time: ready at the blank line, or at the
	 * cap when there is none, and each byte is fed once */
	static char buf[CAP];
	struct head_scan s = { 0 };
	size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
	size_t i;

	while (n + 8 <= CAP - 4)
		n += (size_t)sprintf(buf + n, "X-A: b\r\n");
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	for (i = 0; i < n - 1; i++)
		ck_assert(!router_head_scan(&s, buf + i, 1, CAP));
	ck_assert(router_head_scan(&s, buf + i, 1, CAP));
	ck_assert_uint_eq(s.seen, n);
	ck_verdict(router_head_classify(buf, n, CAP, true, false), HEAD_HTTP);
	/* stays ready */
	ck_assert(router_head_scan(&s, "x", 1, CAP));

	memset(&s, 0, sizeof s);
	memset(buf, 'a', sizeof buf);
	memcpy(buf, "GET /", 5);
	for (i = 0; i < CAP - 1; i++)
		ck_assert(!router_head_scan(&s, buf + i, 1, CAP));
	ck_assert(router_head_scan(&s, buf + i, 1, CAP));
	ck_verdict(router_head_classify(buf, CAP, CAP, true, false), HEAD_TOO_LARGE);
}
END_TEST

START_TEST(test_scan_random_mutations)
{
	/* the mutated heads of test_random_mutations, cut into random
	 * pieces: the scanner and the classifier never disagree */
	static const char interesting[] = " ,?&=%:/\r\n\t\0~.";
	const char *bases[2] = { "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
				 "POST /c HTTP/1.1\nContent-Length: 3\n\nabc" };
	char work[128];

	for (int round = 0; round < 20000; round++) {
		const char *base = bases[next_rand() % 2];
		size_t len = strlen(base), edits = 1 + next_rand() % 4;

		memcpy(work, base, len);
		for (size_t e = 0; e < edits; e++) {
			size_t at = next_rand() % len;

			work[at] = next_rand() % 2 ?
					   (char)next_rand() :
					   interesting[next_rand() %
						       (sizeof interesting - 1)];
		}
		scan_agrees(work, len, next_rand() % 2 ? CAP : len, 0);
	}
}
END_TEST

/* ---- long polls for libwebsockets ---- */

/* The length router_head_longpoll gives a long poll with that target
 * and extra header lines, and the head's own length in *len. */
static size_t lp(const char *target, const char *extra, size_t *len)
{
	static char buf[6000];

	snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
		 target, extra);
	*len = strlen(buf);
	return router_head_longpoll(buf, *len);
}

START_TEST(test_longpoll_valid)
{
	static const char *const ok[] = {
		"/channels/a?transport=longpoll",
		"/channels/a,b?transport=longpoll&since=3,4&timeout=120",
		"/channels/a?timeout=999999&transport=longpoll&client=c-1",
		"/channels/a?transport=longpoll&since=k3x:7&presence=1",
		"/channels/a?transport=long%70oll",
	};

	/* credentials and an Origin go too: lws checks the token and the
	 * router the Origin (router.c) */
	static const char *const extras[] = {
		"Connection: keep-alive\r\n",
		"Authorization: Bearer x.y.z\r\n",
		"Cookie: anypush_token=x.y.z\r\n",
		"Origin: https://app.example\r\n",
	};
	size_t len;

	for (size_t i = 0; i < NELEM(ok); i++)
		ck_assert_uint_eq(lp(ok[i], "", &len), len);
	for (size_t i = 0; i < NELEM(extras); i++)
		ck_assert_uint_eq(lp(ok[0], extras[i], &len), len);
	ck_assert_uint_eq(
		lp("/channels/a?token=x.y.z&transport=longpoll", "", &len), len);
}
END_TEST

/* Anything lws might read otherwise than libmicrohttpd, or that is not
 * to be held, stays with libmicrohttpd (0). */
START_TEST(test_longpoll_doubtful_goes_to_http)
{
	static const char *const targets[] = {
		"/channels/a",
		"/channels/a?transport=poll",
		"/channels/a?transport=sse",
		"/channels/a?transport=longpoll&timeout=0",
		"/channels/a?transport=longpoll&timeout=1234567",
		"/channels/a?transport=longpoll&timeout=x",
		"/channels/a?transport=longpoll&timeout=",
		"/channels/a?transport=longpoll&since=x",
		"/channels/a?transport=longpoll&since=1,2",
		"/channels/a?transport=longpoll&client=a%20b",
		"/channels/a?transport=longpoll&client=a+b",
		"/channels/a%62?transport=longpoll",
		"/channels/?transport=longpoll",
		"/healthz?transport=longpoll",
	};
	static const char *const extras[] = {
		"Connection: close\r\n",
		"Content-Length: 0\r\n",
		"Transfer-Encoding: chunked\r\n",
		"Upgrade: websocket\r\nConnection: Upgrade\r\n",
		"Last-Event-ID: 1\r\n",
	};
	const char *t = "/channels/a?transport=longpoll";
	char buf[6000];
	size_t len;

	for (size_t i = 0; i < NELEM(targets); i++)
		ck_assert_uint_eq(lp(targets[i], "", &len), 0);
	for (size_t i = 0; i < NELEM(extras); i++)
		ck_assert_uint_eq(lp(t, extras[i], &len), 0);
	/* HTTP/1.0, no Host, another method */
	strcpy(buf,
	       "GET /channels/a?transport=longpoll HTTP/1.0\r\nHost: x\r\n\r\n");
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf)), 0);
	strcpy(buf, "GET /channels/a?transport=longpoll HTTP/1.1\r\n\r\n");
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf)), 0);
	strcpy(buf,
	       "PUT /channels/a?transport=longpoll HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf)), 0);
	/* bytes after the head (pipelined), or a head cut short */
	strcpy(buf,
	       "GET /channels/a?transport=longpoll HTTP/1.1\r\nHost: x\r\n\r\nG");
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf)), 0);
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf) - 3), 0);
	/* bare LF line ends, and heads over LONGPOLL_HEAD_MAX */
	strcpy(buf, "GET /channels/a?transport=longpoll HTTP/1.1\nHost: x\n\n");
	ck_assert_uint_eq(router_head_longpoll(buf, strlen(buf)), 0);
	memset(buf, 'a', sizeof buf);
	buf[LONGPOLL_HEAD_MAX] = '\0';
	ck_assert_uint_eq(lp(t, buf, &len), 0);
}
END_TEST

/* The router reads X-Forwarded-For for --max-conns-per-ip: only in a
 * complete head, the first such line, trimmed, never from the body. */
START_TEST(test_header_value)
{
	const char *h = "GET / HTTP/1.1\r\nHost: x\r\n"
			"x-forwarded-for:  10.0.0.1, 10.0.0.2 \r\n"
			"X-Forwarded-For: 192.0.2.1\r\n\r\n"
			"X-Forwarded-For: 203.0.113.1\r\n";
	const char *body = "POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\n"
			   "X-Forwarded-For: 203.0.113.1\r\n";
	size_t n = 0;
	const char *v = router_head_header(h, strlen(h), "X-Forwarded-For:", &n);

	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(n, strlen("10.0.0.1, 10.0.0.2"));
	ck_assert(strncmp(v, "10.0.0.1, 10.0.0.2", n) == 0);
	ck_assert_ptr_null(router_head_header(body, strlen(body),
					      "X-Forwarded-For:", &n));
	/* not ended yet: nothing */
	ck_assert_ptr_null(router_head_header(h, 40, "X-Forwarded-For:", &n));
	ck_assert_ptr_null(router_head_header(h, strlen(h), "Origin:", &n));
}
END_TEST

static Suite *router_head_suite(void)
{
	Suite *s = suite_create("router_head");
	TCase *tc = tcase_create("classify");

	tcase_add_test(tc, test_http_requests);
	tcase_add_test(tc, test_body_after_head);
	tcase_add_test(tc, test_ws_upgrades);
	tcase_add_test(tc, test_ws_encoded_cursor);
	tcase_add_test(tc, test_ws_encoded_cursor_longest);
	tcase_add_test(tc, test_ws_upgrade_header_case);
	tcase_add_test(tc, test_ws_disabled);
	tcase_add_test(tc, test_ws_doubtful_goes_to_http);
	tcase_add_test(tc, test_ws_needs_get);
	tcase_add_test(tc, test_sse_valid);
	tcase_add_test(tc, test_sse_doubtful_goes_to_http);
	tcase_add_test(tc, test_sse_needs_get);
	tcase_add_test(tc, test_longpoll_valid);
	tcase_add_test(tc, test_longpoll_doubtful_goes_to_http);
	tcase_add_test(tc, test_incomplete);
	tcase_add_test(tc, test_every_prefix_incomplete);
	tcase_add_test(tc, test_too_large);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_loop_test(tc, test_bad, 0, (int)NELEM(bad_heads));
	tcase_add_test(tc, test_random_binary);
	tcase_add_test(tc, test_random_mutations);
	tcase_add_test(tc, test_exact_length_reads);
	suite_add_tcase(s, tc);

	tc = tcase_create("scan");
	tcase_add_test(tc, test_scan_matches_classify);
	tcase_add_test(tc, test_scan_byte_by_byte_to_the_cap);
	tcase_add_test(tc, test_scan_random_mutations);
	tcase_add_test(tc, test_header_value);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_MAIN(router_head_suite)
