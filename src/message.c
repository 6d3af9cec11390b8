/* The envelope puts "id" last so everything but the id is written before
 * the bus lock is taken: under the lock, sealing is a few digits. Key order
 * carries no meaning in JSON. */
#include "message.h"

#include "payload.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const size_t message_headroom = LWS_PRE;
static atomic_long alive;

/* ,"id":18446744073709551615} */
#define SEAL_MAX 30

struct message *message_new(const struct message_spec *spec, int64_t ts_ms,
			    uint64_t mono_ms)
{
	const char *event = spec->event ? spec->event : "message";
	const char *from = spec->from ? spec->from : "";
	size_t head_max = 120 + strlen(spec->channel) + strlen(event) +
			  strlen(from);
	size_t cap = head_max + spec->data->len + SEAL_MAX;
	struct message *m = xcalloc(1, sizeof *m + LWS_PRE + cap);
	char *p = (char *)m->buf + LWS_PRE;
	int n;

	atomic_init(&m->refs, 1);
	m->ts = ts_ms;
	m->born_ms = mono_ms;
	m->exclude_sender = spec->exclude_sender && from[0];
	m->binary = spec->data->binary;
	m->cap = cap;
	snprintf(m->event, sizeof m->event, "%s", event);
	snprintf(m->from, sizeof m->from, "%s", from);
	n = snprintf(p, cap, "{\"type\":\"message\",\"channel\":\"%s\","
			     "\"event\":\"%s\",\"data\":",
		     spec->channel, event);
	m->data_off = (size_t)n;
	memcpy(p + n, spec->data->json, spec->data->len);
	m->data_len = spec->data->len;
	n += (int)spec->data->len;
	n += snprintf(p + n, cap - (size_t)n, ",\"ts\":%lld",
		      (long long)ts_ms);
	if (from[0])
		n += snprintf(p + n, cap - (size_t)n, ",\"from\":\"%s\"", from);
	if (m->binary)
		n += snprintf(p + n, cap - (size_t)n, ",\"binary\":true");
	m->json_len = (size_t)n; /* provisional: seal completes it */
	atomic_fetch_add(&alive, 1);
	return m;
}

void message_seal(struct message *m, uint64_t id)
{
	char *p = (char *)m->buf + LWS_PRE;

	m->id = id;
	m->json_len += (size_t)snprintf(p + m->json_len, m->cap - m->json_len,
					",\"id\":%llu}", (unsigned long long)id);
}

void message_ref(struct message *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void message_unref(struct message *m)
{
	if (m == NULL)
		return;
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		atomic_fetch_sub(&alive, 1);
		free(m);
	}
}

long message_alive(void)
{
	return atomic_load(&alive);
}
