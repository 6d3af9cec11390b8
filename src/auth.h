/* auth.h: who may subscribe and publish where. Client tokens (JWT, checked
 * by libjwt against --token-secret-file), the server-side API key
 * (--api-key-file) and the channels open to everyone (--public-channels).
 * Without a secret and a key the gateway is open (docs/security.md). */
#ifndef ANYPUSH_AUTH_H
#define ANYPUSH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MAX 8192 /* bytes: a longer token is refused unread */
#define AUTH_SUB_MAX 64     /* CLIENT_ID_MAX */

/* The last event of an SSE stream whose token expired. anypush.js ignores
 * an error event's data and reconnects when the stream ends, with a
 * fresh token from its token option. */
#define AUTH_SSE_EXPIRED                                    \
	"event: error\ndata: {\"type\":\"error\",\"code\":" \
	"\"token_expired\",\"message\":\"the token has expired\"}\n\n"

/* What one request may do. Filled by auth_check; auth_grant_free. */
struct auth_grant {
	bool admin;     /* the API key: everything, the admin API too */
	bool has_token; /* a valid token came */
	char sub[AUTH_SUB_MAX + 1]; /* its "sub", "" when it has none */
	long long exp; /* its "exp", seconds since the epoch; 0: none */
	char **read;   /* its "channels" patterns */
	size_t nread;
	char **write; /* its "publish" patterns */
	size_t nwrite;
};

/* Why a credential was refused: HTTP status, documented code, words. */
struct auth_error {
	unsigned status;
	const char *code;
	const char *message;
};

/* Setup (main thread, before any request) */
/* Read the secret and key files and the public patterns; NULL or "" for
 * none. 0, or -1 with the reason logged. */
int auth_init(const char *token_secret_file, const char *api_key_file,
	      const char *public_channels);
void auth_shutdown(void);
/* Neither a token secret nor an API key: everyone may do everything. */
bool auth_open(void);
/* The address to listen on: bind if given, else loopback in open mode
 * (an open gateway is for this machine unless asked) and all addresses
 * otherwise. */
const char *auth_bind(const char *bind);
/* An API key is set (the admin API exists). */
bool auth_has_api_key(void);

/* Checking */
/* The credential of a request: the Authorization header, else ?token=,
 * else the Cookie header's anypush_token; any may be NULL. Fills g (free
 * it with auth_grant_free, whatever the return). 0, or -1 with err set
 * for a credential that came but is not good; none at all is 0 with an
 * empty grant (the public channels only). */
int auth_check(const char *authorization, const char *query_token,
	       const char *cookie, struct auth_grant *g,
	       struct auth_error *err);
/* Check one token alone (the /ws auth op, the fuzzer). */
int auth_check_token(const char *token, size_t len, struct auth_grant *g,
		     struct auth_error *err);
void auth_grant_free(struct auth_grant *g);
/* May g read (subscribe to, replay) or publish to channel? */
bool auth_may_read(const struct auth_grant *g, const char *channel);
bool auth_may_publish(const struct auth_grant *g, const char *channel);
struct channel_list;
/* A subscribe: every channel readable, the client id asked for (NULL:
 * none) the token's. 0, or -1 with err set (401 without a credential,
 * 403 with one that does not allow it). */
int auth_subscribe_check(const struct auth_grant *g,
			 const struct channel_list *chs, const char *client,
			 struct auth_error *err);
/* A publish to channel from client (NULL: none), the same way. */
int auth_publish_check(const struct auth_grant *g, const char *channel,
		       const char *client, struct auth_error *err);
/* A client id the request asked for against the token's sub: false when
 * the token names another. */
bool auth_client_ok(const struct auth_grant *g, const char *client);
/* The token has expired (exp passed) at now_s. */
bool auth_expired(const struct auth_grant *g, long long now_s);
/* A glob with '*' only, as the claims and --public-channels use. */
bool auth_pattern_match(const char *pattern, const char *name);

#endif
