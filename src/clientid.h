/* clientid.h: unguessable connection ids (128 random bits, base64url). */
#ifndef ANYPUSH_CLIENTID_H
#define ANYPUSH_CLIENTID_H

#define CLIENTID_LEN 22

/* Write a fresh id and its NUL into out[CLIENTID_LEN + 1]. */
void clientid_new(char *out);

#endif
