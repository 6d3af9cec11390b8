/* Tokens are checked by libjwt (jwt_decode verifies the signature with
 * our key); the algorithm is then checked against the key's kind, since
 * libjwt follows the token's own header: a token saying "none", or HS256
 * signed with an RSA public key's text as the secret, must not pass.
 * Secrets are read once at start, never logged, and compared in constant
 * time. Everything here is read-only after auth_init, so any thread may
 * check. */
#include "auth.h"

#include "log.h"
#include "validate.h"
#include "xalloc.h"

#include <cJSON.h>
#include <errno.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_PREFIX "auth"
#define KEY_FILE_MAX 16384 /* bytes: a secret or a PEM public key */
#define PATTERNS_MAX 256   /* per claim or --public-channels */

static unsigned char *secret; /* the token key, NULL: no tokens */
static size_t secret_len;
static bool secret_pem; /* a public key: RS256/ES256 only */
static char *api_key;   /* NULL: none */
static size_t api_key_len;
static char **public_pats;
static size_t npublic;

/* The whole file, trailing whitespace cut; NULL on error (logged). */
static char *read_secret(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		log_error("cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc(KEY_FILE_MAX + 1);
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	fclose(f);
	if (n > KEY_FILE_MAX) {
		log_error("%s: over %d bytes", path, KEY_FILE_MAX);
		goto fail;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n == 0) {
		log_error("%s is empty", path);
		goto fail;
	}
	*len = n;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* libjwt reads only a public key (SubjectPublicKeyInfo, or an RSA key's
 * PKCS#1 form) and refuses every token otherwise, without a word: a
 * private key given by mistake (which also puts the signing key on the
 * gateway) would start a gateway that lets nobody in. Caught at start. */
static bool pem_is_public_key(const char *pem)
{
	static const char *const heads[] = {
		"-----BEGIN PUBLIC KEY-----",
		"-----BEGIN RSA PUBLIC KEY-----",
	};
	size_t line = strcspn(pem, "\r\n");

	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++)
		if (line == strlen(heads[i]) &&
		    strncmp(pem, heads[i], line) == 0)
			return true;
	return false;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Comma-separated patterns; empty items skipped. */
static int split_patterns(const char *text, char ***out, size_t *n)
{
	const char *p = text;

	*out = NULL;
	*n = 0;
	while (p && *p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len > 0) {
			if (*n == PATTERNS_MAX)
				return -1;
			*out = xrealloc(*out, (*n + 1) * sizeof **out);
			(*out)[(*n)++] = xstrndup(p, len);
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

int auth_init(const char *token_secret_file, const char *api_key_file,
	      const char *public_channels)
{
	if (token_secret_file && *token_secret_file) {
		secret = (unsigned char *)read_secret(token_secret_file,
						      &secret_len);
		if (secret == NULL)
			return -1;
		secret_pem = strncmp((char *)secret, "-----BEGIN", 10) == 0;
		if (secret_pem && !pem_is_public_key((char *)secret)) {
			log_error("%s: a PEM here must be a public key "
				  "(-----BEGIN PUBLIC KEY-----); the private "
				  "key stays with the backend that mints the "
				  "tokens",
				  token_secret_file);
			return -1;
		}
		if (secret_pem) {
			/* libjwt wants the PEM with its final newline */
			secret[secret_len++] = '\n';
		}
	}
	if (api_key_file && *api_key_file) {
		api_key = read_secret(api_key_file, &api_key_len);
		if (api_key == NULL)
			return -1;
	}
	if (auth_open())
		log_warn("open mode: anyone who reaches the port may publish "
			 "and read every channel (--token-secret-file or "
			 "--api-key-file to check; docs/security.md)");
	if (public_channels &&
	    split_patterns(public_channels, &public_pats, &npublic) < 0) {
		log_error("--public-channels: at most %d patterns",
			  PATTERNS_MAX);
		return -1;
	}
	return 0;
}

void auth_shutdown(void)
{
	if (secret)
		memset(secret, 0, secret_len);
	if (api_key)
		memset(api_key, 0, api_key_len);
	free(secret);
	free(api_key);
	free_list(public_pats, npublic);
	secret = NULL;
	api_key = NULL;
	public_pats = NULL;
	npublic = 0;
}

bool auth_open(void)
{
	return secret == NULL && api_key == NULL;
}

const char *auth_bind(const char *bind)
{
	if (bind && *bind)
		return bind;
	return auth_open() ? "127.0.0.1" : "0.0.0.0";
}

bool auth_has_api_key(void)
{
	return api_key != NULL;
}

static int refuse(struct auth_error *err, unsigned status, const char *code,
		  const char *message)
{
	err->status = status;
	err->code = code;
	err->message = message;
	return -1;
}

/* Every byte of the longer one is looked at, whatever differs first. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
	volatile unsigned char diff = (unsigned char)(alen != blen);
	size_t n = alen > blen ? alen : blen;

	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < alen ? (unsigned char)a[i] : 0;
		unsigned char y = i < blen ? (unsigned char)b[i] : 0;

		diff |= x ^ y;
	}
	return diff == 0;
}

/* A claim's JSON array of strings into a list; absent: empty. */
static int claim_list(jwt_t *jwt, const char *name, char ***out, size_t *n)
{
	char *text = jwt_get_grants_json(jwt, name);
	cJSON *arr, *it;
	int r = -1;

	*out = NULL;
	*n = 0;
	if (text == NULL)
		return 0;
	arr = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > PATTERNS_MAX)
		goto out;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it))
			goto out;
		*out = xrealloc(*out, (*n + 1) * sizeof **out);
		(*out)[(*n)++] = xstrdup(it->valuestring);
	}
	r = 0;
out:
	cJSON_Delete(arr);
	return r;
}

static bool alg_fits_key(jwt_alg_t alg)
{
	if (!secret_pem)
		return alg == JWT_ALG_HS256;
	return alg == JWT_ALG_RS256 || alg == JWT_ALG_ES256;
}

int auth_check_token(const char *token, size_t len, struct auth_grant *g,
		     struct auth_error *err)
{
	jwt_t *jwt = NULL;
	const char *sub;
	char *copy;
	int r;

	if (secret == NULL)
		return refuse(err, 401, "bad_token",
			      "this gateway takes no tokens");
	if (len > AUTH_TOKEN_MAX)
		return refuse(err, 401, "bad_token", "the token is over 8 KB");
	copy = xstrndup(token, len);
	r = jwt_decode(&jwt, copy, secret, (int)secret_len);
	free(copy);
	if (r != 0 || jwt == NULL)
		return refuse(err, 401, "bad_token",
			      "the token is malformed or its signature does "
			      "not verify");
	r = -1;
	if (!alg_fits_key(jwt_get_alg(jwt))) {
		refuse(err, 401, "bad_token",
		       "the token's algorithm is not the one the key is for");
		goto out;
	}
	errno = 0;
	g->exp = jwt_get_grant_int(jwt, "exp");
	if (errno != 0)
		g->exp = 0;
	if (g->exp == 0) {
		refuse(err, 401, "bad_token", "the token has no exp claim");
		goto out;
	}
	if ((long long)time(NULL) >= g->exp) {
		refuse(err, 401, "token_expired", "the token has expired");
		goto out;
	}
	sub = jwt_get_grant(jwt, "sub");
	if (sub && !client_id_valid(sub, strlen(sub))) {
		refuse(err, 401, "bad_token",
		       "the token's sub must match [A-Za-z0-9_-]{1,64}");
		goto out;
	}
	snprintf(g->sub, sizeof g->sub, "%s", sub ? sub : "");
	if (claim_list(jwt, "channels", &g->read, &g->nread) < 0 ||
	    claim_list(jwt, "publish", &g->write, &g->nwrite) < 0) {
		refuse(err, 401, "bad_token",
		       "channels and publish must be arrays of at most 256 "
		       "strings");
		goto out;
	}
	g->has_token = true;
	r = 0;
out:
	jwt_free(jwt);
	return r;
}

/* anypush_token=VALUE among "a=b; c=d". */
static const char *cookie_token(const char *cookie, size_t *len)
{
	static const char name[] = "anypush_token=";
	const char *p = cookie;

	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, sizeof name - 1) == 0) {
			p += sizeof name - 1;
			*len = strcspn(p, ";");
			return p;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

int auth_check(const char *authorization, const char *query_token,
	       const char *cookie, struct auth_grant *g, struct auth_error *err)
{
	const char *tok = NULL;
	size_t len = 0;

	memset(g, 0, sizeof *g);
	if (authorization && strncasecmp(authorization, "apikey ", 7) == 0) {
		const char *k = authorization + 7;

		if (api_key == NULL ||
		    !same_secret(k, strlen(k), api_key, api_key_len))
			return refuse(err, 401, "bad_api_key",
				      "the API key is not this gateway's");
		g->admin = true;
		return 0;
	}
	if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0) {
		tok = authorization + 7;
		len = strlen(tok);
	} else if (query_token) {
		tok = query_token;
		len = strlen(tok);
	} else if (cookie) {
		tok = cookie_token(cookie, &len);
	}
	if (tok == NULL)
		return 0;
	return auth_check_token(tok, len, g, err);
}

void auth_grant_free(struct auth_grant *g)
{
	free_list(g->read, g->nread);
	free_list(g->write, g->nwrite);
	g->read = g->write = NULL;
	g->nread = g->nwrite = 0;
}

bool auth_pattern_match(const char *pattern, const char *name)
{
	const char *star = NULL, *back = NULL;

	/* the classic greedy glob with one backtrack point: linear enough
	 * for 200-byte names */
	while (*name) {
		if (*pattern == '*') {
			star = pattern++;
			back = name;
		} else if (*pattern == *name) {
			pattern++;
			name++;
		} else if (star) {
			pattern = star + 1;
			name = ++back;
		} else {
			return false;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static bool any_match(char **pats, size_t n, const char *channel)
{
	for (size_t i = 0; i < n; i++)
		if (auth_pattern_match(pats[i], channel))
			return true;
	return false;
}

bool auth_may_read(const struct auth_grant *g, const char *channel)
{
	if (auth_open() || g->admin)
		return true;
	return any_match(public_pats, npublic, channel) ||
	       any_match(g->read, g->nread, channel);
}

bool auth_may_publish(const struct auth_grant *g, const char *channel)
{
	if (auth_open() || g->admin)
		return true;
	/* public channels are public to read: publishing needs a grant */
	return any_match(g->write, g->nwrite, channel);
}

bool auth_client_ok(const struct auth_grant *g, const char *client)
{
	return client == NULL || g->sub[0] == '\0' ||
	       strcmp(client, g->sub) == 0;
}

bool auth_expired(const struct auth_grant *g, long long now_s)
{
	return g->has_token && g->exp != 0 && now_s >= g->exp;
}

/* Without any credential the answer is "log in", with one "not this". */
static int not_allowed(const struct auth_grant *g, struct auth_error *err,
		       const char *what)
{
	if (!g->has_token && !g->admin)
		return refuse(err, 401, "unauthorized", what);
	return refuse(err, 403, "forbidden", what);
}

static int client_check(const struct auth_grant *g, const char *client,
			struct auth_error *err)
{
	if (!auth_client_ok(g, client))
		return refuse(err, 403, "client_mismatch",
			      "the client id is not the token's sub");
	return 0;
}

int auth_subscribe_check(const struct auth_grant *g,
			 const struct channel_list *chs, const char *client,
			 struct auth_error *err)
{
	char name[CHANNEL_NAME_MAX + 1];

	for (size_t i = 0; i < chs->count; i++) {
		snprintf(name, sizeof name, "%.*s", (int)chs->len[i],
			 chs->name[i]);
		if (!auth_may_read(g, name))
			return not_allowed(g, err,
					   "this channel needs a token that "
					   "lists it in channels");
	}
	return client_check(g, client, err);
}

int auth_publish_check(const struct auth_grant *g, const char *channel,
		       const char *client, struct auth_error *err)
{
	if (!auth_may_publish(g, channel))
		return not_allowed(g, err,
				   "publishing here needs the API key or a "
				   "token that lists the channel in publish");
	return client_check(g, client, err);
}
