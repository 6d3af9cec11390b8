/* Only WebSocket subscribes that will certainly be accepted go to
 * libwebsockets; anything doubtful (a bad channel, a bad cursor, a
 * percent-encoded name) goes to libmicrohttpd, whose handler answers with
 * the JSON error the protocol promises. libwebsockets cannot send those. */
#include "router_head.h"

#include "cursor.h"
#include "validate.h"

#include <string.h>
#include <strings.h>

#define METHOD_MAX 16

static const char *find_end(const char *buf, size_t len)
{
	const char *p = memmem(buf, len, "\r\n\r\n", 4);
	const char *q = memmem(buf, len, "\n\n", 2);

	if (p == NULL || (q && q < p))
		return q ? q + 2 : NULL;
	return p + 4;
}

/* The method so far is [A-Z]+ followed by a space; -1 if it cannot be. */
static int method_plausible(const char *buf, size_t len)
{
	for (size_t i = 0; i < len && i <= METHOD_MAX; i++) {
		if (buf[i] == ' ')
			return i > 0 ? 0 : -1;
		if (buf[i] < 'A' || buf[i] > 'Z')
			return -1;
	}
	return len > METHOD_MAX ? -1 : 0;
}

static bool head_chars_ok(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c < 0x20 && c != '\r' && c != '\n' && c != '\t')
			return false;
		if (c == 0x7F)
			return false;
	}
	return true;
}

/* The value of query argument `name` in q[0..len), or NULL. */
static const char *query_arg(const char *q, size_t len, const char *name,
			     size_t *vlen)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < len;) {
		size_t seg = 0;

		while (i + seg < len && q[i + seg] != '&')
			seg++;
		if (seg > nlen && memcmp(q + i, name, nlen) == 0 &&
		    q[i + nlen] == '=') {
			*vlen = seg - nlen - 1;
			return q + i + nlen + 1;
		}
		i += seg + 1;
	}
	return NULL;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) with %XX escapes decoded into buf[0..cap), as libmicrohttpd
 * and libwebsockets decode a query value before the handlers see it;
 * the decoded length, or -1 for a broken escape or no room. */
static long query_unescape(const char *s, size_t len, char *buf, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = i + 2 < len ? hex_digit(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			i += 2;
		}
		if (n == cap)
			return -1;
		buf[n++] = (char)c;
	}
	return (long)n;
}

/* The value of header `name` (with its colon) in the head, trimmed of
 * leading blanks; NULL if absent. */
static const char *header_value(const char *head, size_t len, const char *name,
				size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = head, *end = head + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		const char *line = ++p,
			   *eol = memchr(line, '\n', (size_t)(end - line));

		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > nlen &&
		    strncasecmp(line, name, nlen) == 0) {
			const char *v = line + nlen;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen &&
			       (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
	}
	return NULL;
}

const char *router_head_header(const char *buf, size_t len, const char *name,
			       size_t *vlen)
{
	const char *end = find_end(buf, len);

	return end ? header_value(buf, (size_t)(end - buf), name, vlen) :
		     NULL;
}

/* An upgrade lws will complete: Upgrade: websocket, a 16-byte base64
 * key and version 13 (lws 4.1.6 answers 101 even without a key). */
static bool websocket_handshake_ok(const char *head, size_t len)
{
	const char *v;
	size_t vlen;
	bool ws = false;

	v = header_value(head, len, "Upgrade:", &vlen);
	for (size_t i = 0; v && i + 9 <= vlen && !ws; i++)
		ws = strncasecmp(v + i, "websocket", 9) == 0;
	if (!ws)
		return false;
	v = header_value(head, len, "Sec-WebSocket-Key:", &vlen);
	if (v == NULL || vlen != 24 || v[22] != '=' || v[23] != '=')
		return false;
	v = header_value(head, len, "Sec-WebSocket-Version:", &vlen);
	return v && vlen == 2 && memcmp(v, "13", 2) == 0;
}

/* GET /ws or /channels/LIST[?query], with a query lws will accept. */
static bool ws_target_ok(const char *t, size_t len)
{
	static const char prefix[] = "/channels/";
	const char *q = memchr(t, '?', len), *v;
	size_t plen = q ? (size_t)(q - t) : len, qlen = q ? len - plen - 1 : 0;
	struct channel_list chs;
	struct cursor ids[CHANNELS_PER_SUBSCRIPTION_MAX];
	char since[CURSOR_TEXT_MAX];
	size_t vlen;

	if (plen == 3 && memcmp(t, "/ws", 3) == 0) {
		v = q ? query_arg(q + 1, qlen, "client", &vlen) : NULL;
		return v == NULL || client_id_valid(v, vlen);
	}
	if (plen <= sizeof prefix - 1 || memcmp(t, prefix, sizeof prefix - 1))
		return false;
	if (channel_list_parse(t + sizeof prefix - 1, plen - sizeof prefix + 1,
			       &chs) < 0)
		return false;
	if (q == NULL)
		return true;
	v = query_arg(q + 1, qlen, "transport", &vlen);
	if (v && !(vlen == 2 && memcmp(v, "ws", 2) == 0))
		return false;
	v = query_arg(q + 1, qlen, "since", &vlen);
	if (v) {
		/* browsers send EPOCH:ID as EPOCH%3AID (and commas as %2C) */
		long n = query_unescape(v, vlen, since, sizeof since);

		if (n < 0 || cursor_parse(since, (size_t)n, chs.count, ids) < 0)
			return false;
	}
	v = query_arg(q + 1, qlen, "client", &vlen);
	return v == NULL || client_id_valid(v, vlen);
}

/* The value of query argument `name` percent-decoded into buf (cap),
 * as the libraries will see it: its length, -1 if absent, -2 if it
 * does not decode. */
static long query_value(const char *q, size_t qlen, const char *name,
			char *buf, size_t cap)
{
	size_t vlen = 0;
	const char *v = q ? query_arg(q, qlen, name, &vlen) : NULL;
	long n;

	if (v == NULL)
		return -1;
	n = query_unescape(v, vlen, buf, cap);
	return n < 0 ? -2 : n;
}

/* Whether an SSE subscribe will be served as it is, so that every
 * doubtful one goes to libmicrohttpd, which answers the JSON error
 * (http.c subscribe, http_stream.c): GET /channels/LIST with a list
 * channel_list_parse takes; transport=sse, or no transport with Accept:
 * text/event-stream and no WebSocket upgrade (pick_transport's order);
 * a Last-Event-ID (which wins) or since that parses as one cursor per
 * channel; a valid client id; sse_events absent, 0, 1, true or false;
 * and no request body. */
static bool sse_ok(const char *head, size_t len, const char *t, size_t tlen)
{
	static const char prefix[] = "/channels/";
	const char *q = memchr(t, '?', tlen), *v;
	size_t plen = q ? (size_t)(q - t) : tlen, qlen = q ? tlen - plen - 1 : 0;
	struct channel_list chs;
	struct cursor ids[CHANNELS_PER_SUBSCRIPTION_MAX];
	char buf[CURSOR_TEXT_MAX];
	size_t vlen;
	long n;

	if (q)
		q++;
	if (plen <= sizeof prefix - 1 || memcmp(t, prefix, sizeof prefix - 1))
		return false;
	if (channel_list_parse(t + sizeof prefix - 1, plen - sizeof prefix + 1,
			       &chs) < 0)
		return false;
	if (header_value(head, len, "Content-Length:", &vlen) ||
	    header_value(head, len, "Transfer-Encoding:", &vlen))
		return false;
	n = query_value(q, qlen, "transport", buf, sizeof buf);
	if (n == -1) {
		bool accept = false;

		v = header_value(head, len, "Accept:", &vlen);
		for (size_t i = 0; v && i + 17 <= vlen && !accept; i++)
			accept = strncasecmp(v + i, "text/event-stream", 17) ==
				 0;
		v = header_value(head, len, "Upgrade:", &vlen);
		for (size_t i = 0; v && i + 9 <= vlen && accept; i++)
			accept = strncasecmp(v + i, "websocket", 9) != 0;
		if (!accept)
			return false;
	} else if (n != 3 || memcmp(buf, "sse", 3) != 0) {
		return false;
	}
	v = header_value(head, len, "Last-Event-ID:", &vlen);
	if (v && vlen > 0) {
		if (vlen >= sizeof buf ||
		    cursor_parse(v, vlen, chs.count, ids) < 0)
			return false;
	} else {
		n = query_value(q, qlen, "since", buf, sizeof buf);
		if (n == -2 ||
		    (n >= 0 && cursor_parse(buf, (size_t)n, chs.count, ids) < 0))
			return false;
	}
	n = query_value(q, qlen, "client", buf, sizeof buf);
	if (n == -2 || (n >= 0 && !client_id_valid(buf, (size_t)n)))
		return false;
	n = query_value(q, qlen, "sse_events", buf, sizeof buf);
	return n == -1 || (n == 1 && (buf[0] == '0' || buf[0] == '1')) ||
	       (n == 4 && memcmp(buf, "true", 4) == 0) ||
	       (n == 5 && memcmp(buf, "false", 5) == 0);
}

/* A ?timeout= http_longpoll.c takes: 1 to 6 digits, over 0. */
static bool timeout_ok(const char *s, size_t len)
{
	bool nonzero = false;

	if (len == 0 || len > 6)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

size_t router_head_longpoll(const char *buf, size_t len)
{
	static const char line[] = "GET /channels/", ver[] = " HTTP/1.1\r\n";
	const char *end = len <= LONGPOLL_HEAD_MAX ? find_end(buf, len) : NULL;
	const char *t = buf + sizeof line - 1, *eol, *q, *sp, *v;
	struct cursor ids[CHANNELS_PER_SUBSCRIPTION_MAX];
	struct channel_list chs;
	char val[CURSOR_TEXT_MAX];
	size_t vlen, hlen, qlen;
	long n;

	/* nothing may follow the head: lws would read it with the head */
	if (end == NULL || (size_t)(end - buf) != len || len < 4 ||
	    memcmp(end - 4, "\r\n\r\n", 4) != 0 ||
	    memcmp(buf, line, sizeof line - 1) != 0)
		return 0;
	eol = memchr(buf, '\n', len);
	sp = memchr(t, ' ', (size_t)(eol - t));
	if (sp == NULL || (size_t)(eol + 1 - sp) != sizeof ver - 1 ||
	    memcmp(sp, ver, sizeof ver - 1) != 0)
		return 0;
	hlen = len;
	/* lws and libmicrohttpd must read the same request: no body, no
	 * upgrade, a Host, keep-alive, no Last-Event-ID (which would win
	 * over since in http_route.c). Credentials and an Origin may come:
	 * the lws side checks the token (lws_auth.c) and echoes an Origin
	 * the router allowed (router.c refuses the others first) */
	if (header_value(buf, hlen, "Content-Length:", &vlen) ||
	    header_value(buf, hlen, "Transfer-Encoding:", &vlen) ||
	    header_value(buf, hlen, "Upgrade:", &vlen) ||
	    header_value(buf, hlen, "Last-Event-ID:", &vlen) ||
	    !header_value(buf, hlen, "Host:", &vlen))
		return 0;
	v = header_value(buf, hlen, "Connection:", &vlen);
	if (v && !(vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0))
		return 0;
	q = memchr(t, '?', (size_t)(sp - t));
	if (q == NULL || memchr(q, '+', (size_t)(sp - q)))
		return 0;
	if (channel_list_parse(t, (size_t)(q - t), &chs) < 0)
		return 0;
	q++;
	qlen = (size_t)(sp - q);
	n = query_value(q, qlen, "transport", val, sizeof val);
	if (n != 8 || memcmp(val, "longpoll", 8) != 0)
		return 0;
	n = query_value(q, qlen, "since", val, sizeof val);
	if (n == -2 ||
	    (n >= 0 && cursor_parse(val, (size_t)n, chs.count, ids) < 0))
		return 0;
	n = query_value(q, qlen, "client", val, sizeof val);
	if (n == -2 || (n >= 0 && !client_id_valid(val, (size_t)n)))
		return 0;
	n = query_value(q, qlen, "timeout", val, sizeof val);
	if (n == -2 || (n >= 0 && !timeout_ok(val, (size_t)n)))
		return 0;
	n = query_value(q, qlen, "presence", val, sizeof val);
	return n == -2 ? 0 : len;
}

/* 1 to 19 decimal digits: a Content-Length no parser can read two ways
 * ("+5", "5, 5" and "-5" can be; 19 digits cannot overflow 64 bits). */
static bool digits(const char *s, size_t len)
{
	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Header lines two parsers could read differently, which is how a
 * request is smuggled past a proxy: a folded line, a name with blanks
 * before its colon (libmicrohttpd then keeps the header but ignores it
 * for framing), a line without a colon, a Content-Length that is not
 * digits, two Content-Length or two Transfer-Encoding headers, both at
 * once, or a Transfer-Encoding other than plain chunked (libmicrohttpd
 * would read such a body until the connection closes). hdr[0..len) are the header lines after the
 * request line, up to and including the blank line. */
static bool framing_ok(const char *hdr, size_t len)
{
	const char *end = hdr + len;
	unsigned lengths = 0, encodings = 0;

	for (const char *line = hdr, *eol; line < end; line = eol + 1) {
		const char *colon, *v;
		size_t n, vlen;

		eol = memchr(line, '\n', (size_t)(end - line));
		if (eol == NULL)
			eol = end;
		n = (size_t)(eol - line);
		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break; /* the blank line */
		colon = memchr(line, ':', n);
		if (line[0] == ' ' || line[0] == '\t' || colon == NULL ||
		    colon == line ||
		    memchr(line, ' ', (size_t)(colon - line)) ||
		    memchr(line, '\t', (size_t)(colon - line)))
			return false;
		v = colon + 1;
		vlen = n - (size_t)(v - line);
		while (vlen && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (colon - line == 14 &&
		    strncasecmp(line, "Content-Length", 14) == 0) {
			lengths++;
			if (!digits(v, vlen))
				return false;
		}
		if (colon - line == 17 &&
		    strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			encodings++;
			if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
				return false;
		}
	}
	return lengths + encodings <= 1;
}

enum head_verdict router_head_classify(const char *buf, size_t len, size_t cap,
				       bool ws_enabled, bool sse_enabled)
{
	const char *end, *sp1, *sp2, *eol;

	end = find_end(buf, len);
	if (method_plausible(buf, len) < 0 ||
	    !head_chars_ok(buf, end ? (size_t)(end - buf) : len))
		return HEAD_BAD;
	if (end == NULL)
		return len >= cap ? HEAD_TOO_LARGE : HEAD_INCOMPLETE;
	eol = memchr(buf, '\n', (size_t)(end - buf));
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (sp2 == NULL || sp2 == sp1 + 1 || eol - sp2 < 9 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return HEAD_BAD;
	if (!framing_ok(eol + 1, (size_t)(end - eol - 1)))
		return HEAD_BAD;
	if (sp1 - buf != 3 || memcmp(buf, "GET", 3) != 0)
		return HEAD_HTTP;
	if (sse_enabled &&
	    sse_ok(buf, (size_t)(end - buf), sp1 + 1, (size_t)(sp2 - sp1 - 1)))
		return HEAD_SSE;
	if (!ws_enabled || !websocket_handshake_ok(buf, (size_t)(end - buf)))
		return HEAD_HTTP;
	return ws_target_ok(sp1 + 1, (size_t)(sp2 - sp1 - 1)) ? HEAD_WS :
								HEAD_HTTP;
}

/* The same tests as router_head_classify makes before it parses a
 * complete head (method_plausible, head_chars_ok, find_end), one byte at
 * a time, so no byte is looked at twice. */
bool router_head_scan(struct head_scan *s, const char *buf, size_t len,
		      size_t cap)
{
	for (size_t i = 0; i < len && !s->ready; i++, s->seen++) {
		unsigned char c = (unsigned char)buf[i];

		if (!s->method_ok && s->seen <= METHOD_MAX) {
			if (c == ' ' && s->seen > 0)
				s->method_ok = true;
			else if (c < 'A' || c > 'Z' || s->seen == METHOD_MAX)
				s->ready = true; /* not [A-Z]{1,16}, a space */
		}
		if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') ||
		    c == 0x7F)
			s->ready = true; /* a control byte in the head */
		if (c == '\n' && (s->last[0] == '\n' ||
				  (s->last[0] == '\r' && s->last[1] == '\n' &&
				   s->last[2] == '\r')))
			s->ready = true; /* the blank line: the head ended */
		s->last[2] = s->last[1];
		s->last[1] = s->last[0];
		s->last[0] = c;
	}
	if (s->seen >= cap)
		s->ready = true;
	return s->ready;
}
