/* The registry of stream techniques, for the hosts that serve any of them
 * (http_stream.c, lws_stream.c). */
#include "stream.h"

#include "transport.h"

static const struct stream_ops *const all[] = {
	&stream_sse,
};

const struct stream_ops *stream_of(const struct transport *t)
{
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (all[i]->transport == t)
			return all[i];
	return NULL;
}
