/* libFuzzer target: the token path (auth.c). The input is a credential
 * as a client sends it: byte 0 picks where it goes (a /ws auth frame's
 * token, the Authorization header, ?token=, or the Cookie header), the
 * rest is the text. Oracles: a token that is accepted must carry the
 * HS256 signature OpenSSL computes over its first two parts with the
 * secret (so alg none, another algorithm or a bad signature never pass),
 * its grant must be well formed, and the '*' patterns must agree with
 * fnmatch(3) on names and patterns of the channel alphabet. */
#include "auth.h"
#include "validate.h"

#include <fnmatch.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-secret-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void setup(void)
{
	static int done;
	char path[] = "/tmp/anypush-fuzz-token-XXXXXX";
	int fd;
	FILE *f;

	if (done)
		return;
	done = 1;
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL || fputs(SECRET, f) < 0 || fclose(f) != 0 ||
	    auth_init(path, NULL, "pub:*") < 0)
		abort();
	remove(path);
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = a[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* The token is head.claims.sig with sig HMAC-SHA256(head.claims). */
static void check_signed(const char *tok)
{
	const char *dot2 = strrchr(tok, '.');
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	char want[128];

	if (dot2 == NULL || HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
				 (const unsigned char *)tok,
				 (size_t)(dot2 - tok), mac, &maclen) == NULL)
		abort();
	b64url(mac, maclen, want);
	if (strncmp(dot2 + 1, want, strlen(want)) != 0)
		abort();
}

static void check_grant(const struct auth_grant *g)
{
	if (!g->has_token || g->exp == 0 ||
	    (g->sub[0] && !client_id_valid(g->sub, strlen(g->sub))))
		abort();
	for (size_t i = 0; i < g->nread; i++)
		if (g->read[i] == NULL)
			abort();
	for (size_t i = 0; i < g->nwrite; i++)
		if (g->write[i] == NULL)
			abort();
}

/* Patterns and names of [a-z:*]: fnmatch without flags is the oracle. */
static void check_patterns(const char *text)
{
	char pat[64], name[64];
	size_t n = strlen(text), half = n / 2, pn = 0, nn = 0;

	for (size_t i = 0; i < half && pn < sizeof pat - 1; i++)
		pat[pn++] = "ab:*"[(unsigned char)text[i] % 4];
	for (size_t i = half; i < n && nn < sizeof name - 1; i++)
		name[nn++] = "ab:"[(unsigned char)text[i] % 3];
	pat[pn] = name[nn] = '\0';
	if (nn == 0)
		return;
	if (auth_pattern_match(pat, name) != (fnmatch(pat, name, 0) == 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_grant g = { .admin = false };
	struct auth_error err;
	char *text, *hdr;
	const char *tok = NULL;
	int r;

	if (size < 1 || size > 12000)
		return 0;
	setup();
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	hdr = malloc(size + 32);
	switch (data[0] % 4) {
	case 0:
		tok = text;
		r = auth_check_token(text, strlen(text), &g, &err);
		break;
	case 1:
		snprintf(hdr, size + 32, "Bearer %s", text);
		tok = text;
		r = auth_check(hdr, NULL, NULL, &g, &err);
		break;
	case 2:
		r = auth_check(NULL, text, NULL, &g, &err);
		tok = text;
		break;
	default:
		snprintf(hdr, size + 32, "a=b; anypush_token=%s", text);
		r = auth_check(NULL, NULL, hdr, &g, &err);
		tok = strchr(text, ';') ? NULL : text;
		break;
	}
	if (r == 0 && g.has_token && tok)
		check_signed(tok);
	if (r == 0 && g.has_token)
		check_grant(&g);
	if (r != 0 && (err.status != 401 || err.code == NULL))
		abort();
	auth_grant_free(&g);
	check_patterns(text);
	free(text);
	free(hdr);
	return 0;
}
