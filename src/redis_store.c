/* A channel in Redis: keys, scripts, commands and replies (see the header
 * for the layout). Both scripts are one atomic step on the shard that
 * owns the channel, so every node sees one order of ids, and a publish
 * and its notification cannot be told apart by a reader: whoever reads
 * the stream after the notification finds the entry. */
#include "redis_store.h"

#include "message.h"
#include "payload.h"
#include "siphash.h"
#include "xalloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: meta, stream[, idem key]. ARGV: new epoch, history size, history
 * age ms, meta TTL ms, record, notice channel, idem hash, idem window ms.
 * A channel Redis lost (expired, flushed, a restart without data) has no
 * meta: it starts again under the new epoch, and its stream, should it
 * have outlived the meta, goes with it. The meta outlives the stream by
 * a day, so a channel quiet longer than --history-age keeps its epoch
 * and ids like a tomb of the embedded bus does. */
static const char publish_lua[] =
	"local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
	"if not epoch then\n"
	"  redis.call('DEL', KEYS[2])\n"
	"  epoch = ARGV[1]\n"
	"  redis.call('HSET', KEYS[1], 'epoch', epoch, 'last', 0)\n"
	"end\n"
	"if KEYS[3] then\n"
	"  local seen = redis.call('GET', KEYS[3])\n"
	"  if seen then return {'replay', seen} end\n"
	"end\n"
	"local id = redis.call('HINCRBY', KEYS[1], 'last', 1)\n"
	"redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], id .. '-0', 'm', "
	"ARGV[5])\n"
	"redis.call('PEXPIRE', KEYS[2], ARGV[3])\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"if KEYS[3] then\n"
	"  redis.call('SET', KEYS[3], epoch .. ' ' .. id .. ' ' .. ARGV[7], "
	"'PX', ARGV[8])\n"
	"end\n"
	"redis.call('PUBLISH', ARGV[6], epoch .. '\\n' .. id .. '\\n' .. "
	"ARGV[5])\n"
	"return {'ok', epoch, id}\n";

/* KEYS: meta, stream. ARGV: after id, count (0: the head alone), new
 * epoch, meta TTL ms, held epoch, held last id, newest. With a new epoch
 * (not 0), a channel Redis does not know is created empty under it, as a
 * publish would create it, so every node reading it agrees on its epoch
 * before anything is published. A node holding ids of the channel's
 * epoch past Redis' last (Redis came back from an older snapshot, or a
 * replica that lacked the last writes) would see those ids given again to
 * other messages: the channel is lost like one Redis forgot, and takes
 * the new epoch here, in the same atomic step, so a second node finding
 * the same (or a publish meanwhile) sees the new epoch, never a second
 * reset. Newest ("1") takes the last count entries after the id, not the
 * first, in rising order still. */
static const char read_lua[] =
	"local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
	"local last = redis.call('HGET', KEYS[1], 'last')\n"
	"if epoch and ARGV[3] ~= '0' and epoch == ARGV[5] and\n"
	"   tonumber(last or '0') < tonumber(ARGV[6]) then\n"
	"  epoch = nil\n"
	"end\n"
	"if not epoch then\n"
	"  if ARGV[3] == '0' then return {'none'} end\n"
	"  redis.call('DEL', KEYS[2])\n"
	"  epoch = ARGV[3]\n"
	"  last = '0'\n"
	"  redis.call('HSET', KEYS[1], 'epoch', epoch, 'last', 0)\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"end\n"
	"local entries = {}\n"
	"if tonumber(ARGV[2]) > 0 then\n"
	"  if ARGV[7] == '1' then\n"
	"    local rev = redis.call('XREVRANGE', KEYS[2], '+', "
	"'(' .. ARGV[1] .. '-0', 'COUNT', ARGV[2])\n"
	"    for i = #rev, 1, -1 do entries[#entries + 1] = rev[i] end\n"
	"  else\n"
	"    entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', "
	"'+', 'COUNT', ARGV[2])\n"
	"  end\n"
	"end\n"
	"return {'ok', epoch, last, entries}\n";

/* SHA1 of the texts above, as SCRIPT LOAD answers it (test_redis_store
 * checks they match, so editing a script without these fails there). */
static const char publish_sha[] = "1bb34504b2c684106253c4d2497d0f152a0d0052";
static const char read_sha[] = "eeef24be73e3e3f7031c86ad2bb520e32ead47d1";

#define META_TTL_EXTRA_MS (24ull * 3600 * 1000)

void redis_cmd_arg(struct redis_cmd *cmd, const char *s, size_t len)
{
	cmd->argv[cmd->argc] = s;
	cmd->argvlen[cmd->argc] = len;
	cmd->argc++;
}

void redis_cmd_argf(struct redis_cmd *cmd, unsigned *buf, const char *fmt, ...)
{
	char *b = cmd->bufs[(*buf)++];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, REDIS_KEY_MAX, fmt, ap);
	va_end(ap);
	redis_cmd_arg(cmd, b, (size_t)n);
}

static void script(struct redis_cmd *cmd, const char *text, const char *sha,
		   bool full_text, int nkeys, unsigned *buf)
{
	if (full_text) {
		redis_cmd_arg(cmd, "EVAL", 4);
		redis_cmd_arg(cmd, text, strlen(text));
	} else {
		redis_cmd_arg(cmd, "EVALSHA", 7);
		redis_cmd_arg(cmd, sha, strlen(sha));
	}
	redis_cmd_argf(cmd, buf, "%d", nkeys);
}

/* ts\nflags\nevent\nfrom\ndata: event and from cannot hold a newline
 * (validate.h), data is last and may hold anything. */
static char *encode_record(const struct redis_publish *p, size_t *len)
{
	char head[32 + EVENT_NAME_MAX + CLIENT_ID_MAX];
	int n = snprintf(head, sizeof head, "%" PRId64 "\n%d\n%s\n%s\n",
			 p->ts_ms,
			 (p->exclude_sender ? 1 : 0) | (p->binary ? 2 : 0),
			 p->event, p->from);
	char *r = xmalloc((size_t)n + p->data_len + 1);

	memcpy(r, head, (size_t)n);
	memcpy(r + n, p->data, p->data_len);
	*len = (size_t)n + p->data_len;
	return r;
}

void redis_store_publish_cmd(const struct redis_publish *p, bool full_text,
			     struct redis_cmd *cmd)
{
	unsigned buf = 0;
	int c = (int)p->channel_len;
	size_t rlen;

	memset(cmd, 0, sizeof *cmd);
	script(cmd, publish_lua, publish_sha, full_text, p->idem_key ? 3 : 2,
	       &buf);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:m", c, p->channel);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:s", c, p->channel);
	if (p->idem_key)
		redis_cmd_argf(cmd, &buf, "ap:{%.*s}:k:%s", c, p->channel, p->idem_key);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, p->new_epoch);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, p->history_size ? p->history_size : 1);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, p->history_age_ms ? p->history_age_ms : 1);
	redis_cmd_argf(cmd, &buf, "%" PRIu64,
	     p->history_age_ms + (uint64_t)META_TTL_EXTRA_MS);
	cmd->record = encode_record(p, &rlen);
	redis_cmd_arg(cmd, cmd->record, rlen);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:n", c, p->channel);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, p->idem_hash);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, p->idem_window_ms ? p->idem_window_ms : 1);
}

void redis_store_read_cmd(const char *channel, size_t len, uint64_t after_id,
			  size_t count, uint64_t new_epoch,
			  uint64_t history_age_ms, bool full_text,
			  struct redis_cmd *cmd)
{
	const struct redis_read rd = {
		.after_id = after_id,
		.count = count,
		.new_epoch = new_epoch,
		.history_age_ms = history_age_ms,
	};

	redis_store_read_held_cmd(channel, len, &rd, full_text, cmd);
}

void redis_store_read_held_cmd(const char *channel, size_t len,
			       const struct redis_read *rd, bool full_text,
			       struct redis_cmd *cmd)
{
	unsigned buf = 0;

	memset(cmd, 0, sizeof *cmd);
	script(cmd, read_lua, read_sha, full_text, 2, &buf);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:m", (int)len, channel);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:s", (int)len, channel);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, rd->after_id);
	redis_cmd_argf(cmd, &buf, "%zu", rd->count);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, rd->new_epoch);
	redis_cmd_argf(cmd, &buf, "%" PRIu64,
	     rd->history_age_ms + (uint64_t)META_TTL_EXTRA_MS);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, rd->held_epoch);
	redis_cmd_argf(cmd, &buf, "%" PRIu64, rd->held_last_id);
	redis_cmd_arg(cmd, rd->newest ? "1" : "0", 1);
}

void redis_cmd_free(struct redis_cmd *cmd)
{
	free(cmd->record);
	cmd->record = NULL;
}

bool redis_store_noscript(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 &&
	       memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* A decimal u64 that is all of s[0..len). */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool is_str(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
	       memcmp(r->str, s, r->len) == 0;
}

/* A string or integer reply as a u64. */
static int reply_u64(const redisReply *r, uint64_t *out)
{
	if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
		*out = (uint64_t)r->integer;
		return 0;
	}
	if (r->type == REDIS_REPLY_STRING)
		return parse_u64(r->str, r->len, out);
	return -1;
}

int redis_store_publish_reply(const redisReply *r, uint64_t idem_hash,
			      struct redis_published *out)
{
	const char *s, *sp1, *sp2;
	uint64_t hash;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2)
		return -1;
	if (is_str(r->element[0], "ok") && r->elements == 3) {
		out->kind = REDIS_STORED;
		return reply_u64(r->element[1], &out->epoch) < 0 ||
				       reply_u64(r->element[2], &out->id) < 0 ?
			       -1 :
			       0;
	}
	if (!is_str(r->element[0], "replay") ||
	    r->element[1]->type != REDIS_REPLY_STRING)
		return -1;
	/* "<epoch> <id> <hash>" */
	s = r->element[1]->str;
	sp1 = memchr(s, ' ', r->element[1]->len);
	sp2 = sp1 ? memchr(sp1 + 1, ' ',
			   (size_t)(s + r->element[1]->len - sp1 - 1)) :
		    NULL;
	if (sp2 == NULL || parse_u64(s, (size_t)(sp1 - s), &out->epoch) < 0 ||
	    parse_u64(sp1 + 1, (size_t)(sp2 - sp1 - 1), &out->id) < 0 ||
	    parse_u64(sp2 + 1, (size_t)(s + r->element[1]->len - sp2 - 1),
		      &hash) < 0)
		return -1;
	out->kind = hash == idem_hash ? REDIS_REPLAYED : REDIS_CONFLICT;
	return 0;
}

int redis_store_read_reply(const redisReply *r, struct redis_range *out)
{
	memset(out, 0, sizeof *out);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return -1;
	if (is_str(r->element[0], "none") && r->elements == 1)
		return 0;
	if (!is_str(r->element[0], "ok") || r->elements != 4 ||
	    reply_u64(r->element[1], &out->epoch) < 0 ||
	    reply_u64(r->element[2], &out->last_id) < 0 ||
	    r->element[3]->type != REDIS_REPLY_ARRAY)
		return -1;
	out->exists = true;
	out->entries = r->element[3];
	out->count = r->element[3]->elements;
	return 0;
}

/* One line of a record: up to the next newline, into [s, end). */
static const char *line(const char *s, const char *end, const char **eol)
{
	*eol = memchr(s, '\n', (size_t)(end - s));
	return *eol ? *eol + 1 : NULL;
}

static int decode_record(const char *s, size_t len, struct redis_record *out)
{
	const char *end = s + len, *eol, *next;
	uint64_t v, flags;

	/* ts */
	next = line(s, end, &eol);
	if (next == NULL || parse_u64(s, (size_t)(eol - s), &v) < 0 ||
	    v > INT64_MAX)
		return -1;
	out->ts_ms = (int64_t)v;
	s = next;
	next = line(s, end, &eol);
	if (next == NULL || parse_u64(s, (size_t)(eol - s), &flags) < 0 ||
	    flags > 3)
		return -1;
	out->exclude_sender = flags & 1;
	out->binary = flags & 2;
	s = next;
	next = line(s, end, &eol);
	if (next == NULL || !event_name_valid(s, (size_t)(eol - s)))
		return -1;
	memcpy(out->event, s, (size_t)(eol - s));
	out->event[eol - s] = '\0';
	s = next;
	next = line(s, end, &eol);
	if (next == NULL || (eol > s && !client_id_valid(s, (size_t)(eol - s))))
		return -1;
	memcpy(out->from, s, (size_t)(eol - s));
	out->from[eol - s] = '\0';
	out->data = next;
	out->data_len = (size_t)(end - next);
	return 0;
}

int redis_store_decode_notice(const char *s, size_t len,
			      struct redis_record *out)
{
	const char *end = s + len, *eol, *next;

	memset(out, 0, sizeof *out);
	next = line(s, end, &eol);
	if (next == NULL || parse_u64(s, (size_t)(eol - s), &out->epoch) < 0)
		return -1;
	s = next;
	next = line(s, end, &eol);
	if (next == NULL || parse_u64(s, (size_t)(eol - s), &out->id) < 0)
		return -1;
	return decode_record(next, (size_t)(end - next), out);
}

int redis_store_range_entry(const struct redis_range *range, size_t i,
			    struct redis_record *out)
{
	const redisReply *e, *id, *fields;
	const char *dash;

	memset(out, 0, sizeof *out);
	if (i >= range->count)
		return -1;
	e = range->entries->element[i];
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
		return -1;
	id = e->element[0];
	fields = e->element[1];
	if (id->type != REDIS_REPLY_STRING ||
	    fields->type != REDIS_REPLY_ARRAY || fields->elements != 2 ||
	    !is_str(fields->element[0], "m") ||
	    fields->element[1]->type != REDIS_REPLY_STRING)
		return -1;
	dash = memchr(id->str, '-', id->len);
	if (dash == NULL ||
	    parse_u64(id->str, (size_t)(dash - id->str), &out->id) < 0)
		return -1;
	out->epoch = range->epoch;
	return decode_record(fields->element[1]->str, fields->element[1]->len,
			     out);
}

size_t redis_store_notice_channel(const char *channel, size_t len, char *buf)
{
	return (size_t)snprintf(buf, REDIS_KEY_MAX, "ap:{%.*s}:n", (int)len,
				channel);
}

int redis_store_channel_of_notice(const char *s, size_t len, const char **name,
				  size_t *name_len)
{
	if (len < 7 || memcmp(s, "ap:{", 4) != 0 ||
	    memcmp(s + len - 3, "}:n", 3) != 0)
		return -1;
	*name = s + 4;
	*name_len = len - 7;
	return channel_name_valid(*name, *name_len) ? 0 : -1;
}

uint64_t redis_store_message_hash(const struct message *m)
{
	static const struct siphash_key key = { 0x616e797075736869ULL,
						0x64656d706f74656eULL };
	unsigned char k[8 + 2 + EVENT_NAME_MAX];
	uint64_t h = siphash13(&key, message_json(m) + m->data_off,
			       m->data_len);
	size_t n = strlen(m->event);

	memcpy(k, &h, 8);
	k[8] = m->binary;
	k[9] = m->exclude_sender;
	memcpy(k + 10, m->event, n);
	return siphash13(&key, k, 10 + n);
}

struct message *redis_store_message(const char *channel, size_t len,
				    const struct redis_record *r,
				    uint64_t mono_ms)
{
	char name[CHANNEL_NAME_MAX + 1];
	struct payload data = { 0 };
	struct message_spec spec = {
		.channel = name,
		.event = r->event,
		.from = r->from,
		.exclude_sender = r->exclude_sender,
		.data = &data,
	};
	struct message *m = NULL;

	if (len > CHANNEL_NAME_MAX)
		return NULL;
	snprintf(name, sizeof name, "%.*s", (int)len, channel);
	if (r->binary) {
		payload_from_binary(r->data, r->data_len, &data);
	} else {
		/* stored by a node that checked it: still, a line break
		 * would end an SSE event early */
		if (r->data_len == 0 || memchr(r->data, '\n', r->data_len) ||
		    memchr(r->data, '\r', r->data_len))
			return NULL;
		data.json = xmalloc(r->data_len + 1);
		memcpy(data.json, r->data, r->data_len);
		data.json[r->data_len] = '\0';
		data.len = r->data_len;
	}
	m = message_new(&spec, r->ts_ms, mono_ms);
	payload_free(&data);
	return m;
}
