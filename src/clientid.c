/* getrandom() never fails for 16 bytes once the pool is initialised; on an
 * unexpected failure we abort rather than hand out guessable ids. */
#include "clientid.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

void clientid_new(char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[16];
	unsigned bits = 0, acc = 0, n = 0;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		fprintf(stderr, "anypush: getrandom failed\n");
		abort();
	}
	for (size_t i = 0; i < sizeof raw; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[n++] = alphabet[(acc << (6 - bits)) & 63];
	out[n] = '\0';
}
