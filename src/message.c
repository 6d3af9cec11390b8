/* The envelope puts "id" last so everything but the id is written before
 * the bus lock is taken: under the lock, sealing is a few digits. Key order
 * carries no meaning in JSON. */
#include "message.h"

#include "cursor.h"
#include "fmt.h"
#include "payload.h"
#include "xalloc.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const size_t message_headroom = LWS_PRE;
static atomic_long alive;

/* ,"epoch":"3w5e11264sgsf","id":18446744073709551615} */
#define SEAL_MAX (30 + 11 + EPOCH_TEXT_MAX)
/* {"messages":[ + ],"next":"EPOCH:ID"} */
#define SINGLE_EXTRA (13 + 11 + CURSOR_ONE_MAX + 2 + 1)
#define CURSOR_ONE_MAX (EPOCH_TEXT_MAX + 21)

/* The envelope up to the id, with `data` as given. cap is sized by
 * message_new for all of it. */
static size_t write_head(char *p, size_t cap, const struct message_spec *spec,
			 const char *event, const char *from, int64_t ts,
			 const char *data, size_t data_len, const char *binary,
			 size_t *data_off)
{
	size_t n = fmt_at(p, cap, 0,
			  "{\"type\":\"message\",\"channel\":\"%s\","
			  "\"event\":\"%s\",\"data\":",
			  spec->channel, event);

	*data_off = n;
	memcpy(p + n, data, data_len);
	n += data_len;
	p[n] = '\0';
	n = fmt_at(p, cap, n, ",\"ts\":%lld", (long long)ts);
	if (from[0])
		n = fmt_at(p, cap, n, ",\"from\":\"%s\"", from);
	if (binary)
		n = fmt_at(p, cap, n, ",\"binary\":%s", binary);
	return n;
}

struct message *message_new(const struct message_spec *spec, int64_t ts_ms,
			    uint64_t mono_ms)
{
	const char *event = spec->event ? spec->event : "message";
	const char *from = spec->from ? spec->from : "";
	const struct payload *d = spec->data;
	size_t head_max = 140 + strlen(spec->channel) + strlen(event) +
			  strlen(from);
	size_t cap = head_max + d->len + SEAL_MAX;
	bool frames = d->binary && d->raw;
	size_t meta_cap = frames ? head_max + SEAL_MAX : 0;
	size_t raw_len = frames ? d->raw_len : 0;
	size_t size = sizeof(struct message) + LWS_PRE + cap +
		      (frames ? 2 * LWS_PRE : 0) + meta_cap + raw_len;
	struct message *m = xcalloc(1, size);
	size_t ignored;

	atomic_init(&m->refs, 1);
	m->size = size;
	m->ts = ts_ms;
	m->born_ms = mono_ms;
	m->exclude_sender = spec->exclude_sender && from[0];
	m->binary = d->binary;
	m->cap = cap;
	snprintf(m->event, sizeof m->event, "%s", event);
	snprintf(m->from, sizeof m->from, "%s", from);
	/* provisional lengths: message_seal completes both envelopes */
	m->json_len = write_head((char *)m->buf + LWS_PRE, cap, spec, event,
				 from, ts_ms, d->json, d->len,
				 d->binary ? "true" : NULL, &m->data_off);
	m->data_len = d->len;
	if (frames) {
		m->meta_off = LWS_PRE + cap + LWS_PRE;
		m->meta_cap = meta_cap;
		m->meta_len = write_head((char *)m->buf + m->meta_off, meta_cap,
					 spec, event, from, ts_ms, "null", 4,
					 "\"frame\"", &ignored);
		m->raw_off = m->meta_off + meta_cap + LWS_PRE;
		m->raw_len = raw_len;
		memcpy(m->buf + m->raw_off, d->raw, raw_len);
	}
	atomic_fetch_add(&alive, 1);
	return m;
}

void message_seal(struct message *m, uint64_t epoch, uint64_t id)
{
	char e[EPOCH_TEXT_MAX];

	cursor_epoch_text(epoch, e);
	m->epoch = epoch;
	m->id = id;
	m->json_len = fmt_at((char *)m->buf + LWS_PRE, m->cap, m->json_len,
			     ",\"epoch\":\"%s\",\"id\":%llu}", e,
			     (unsigned long long)id);
	if (m->meta_cap == 0)
		return;
	m->meta_len = fmt_at((char *)m->buf + m->meta_off, m->meta_cap,
			     m->meta_len, ",\"epoch\":\"%s\",\"id\":%llu}", e,
			     (unsigned long long)id);
}

struct single_reply {
	size_t len;
	char text[];
};

const char *message_single_reply(struct message *m, size_t *len, size_t *built)
{
	struct single_reply *r = atomic_load_explicit(&m->single,
						      memory_order_acquire);
	struct single_reply *none = NULL;

	*built = 0;
	if (r == NULL) {
		/* racing builders make the same bytes; the loser frees its */
		size_t cap = m->json_len + SINGLE_EXTRA;
		size_t size = sizeof(struct single_reply) + cap;
		struct single_reply *mine = xmalloc(size);
		struct cursor at = { m->epoch, m->id };
		char next[CURSOR_TEXT_MAX];
		size_t n = fmt_at(mine->text, cap, 0, "{\"messages\":[");

		memcpy(mine->text + n, message_json(m), m->json_len);
		n += m->json_len;
		cursor_format(&at, 1, next);
		mine->len = fmt_at(mine->text, cap, n, "],\"next\":\"%s\"}", next);
		if (atomic_compare_exchange_strong(&m->single, &none, mine)) {
			r = mine;
			*built = size;
		} else {
			free(mine);
			r = none;
		}
	}
	*len = r->len;
	return r->text;
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
		free(atomic_load(&m->single));
		free(m);
	}
}

long message_alive(void)
{
	return atomic_load(&alive);
}
