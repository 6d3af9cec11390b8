/* The counts, the info script and the control messages of
 * redis_nodes.h. A node's counts live in one hash per shard rather than
 * one per channel, so the heartbeat is one PEXPIRE per shard whatever
 * the number of channels, and a killed node's counts all go at once
 * when Redis expires it: no clock is compared between machines. The
 * info script reads a field of each live node's hash: O(nodes). */
#include "redis_nodes.h"

#include "cursor.h"

#include <stdio.h>
#include <string.h>

#define NODES_KEY "ap:nodes"

/* KEYS: meta, stream. ARGV: channel name, the asking node's id (its own
 * counts it adds itself, fresher than Redis'). */
static const char info_lua[] =
	"local epoch = redis.call('HGET', KEYS[1], 'epoch')\n"
	"local last = redis.call('HGET', KEYS[1], 'last') or '0'\n"
	"local n = redis.call('XLEN', KEYS[2])\n"
	"local first = ''\n"
	"if n > 0 then\n"
	"  first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1][1]\n"
	"end\n"
	"local sums = {}\n"
	"for _, id in ipairs(redis.call('SMEMBERS', '" NODES_KEY "')) do\n"
	"  if id ~= ARGV[2] then\n"
	"    local k = 'ap:node:' .. id\n"
	"    local v = redis.call('HGET', k, ARGV[1])\n"
	"    if v then\n"
	"      local i = 1\n"
	"      for x in string.gmatch(v, '%d+') do\n"
	"        sums[i] = (sums[i] or 0) + tonumber(x)\n"
	"        i = i + 1\n"
	"      end\n"
	"    elseif redis.call('EXISTS', k) == 0 then\n"
	"      redis.call('SREM', '" NODES_KEY "', id)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return {epoch or '', last, first, n, table.concat(sums, ' ')}\n";

static void cmd_init(struct redis_cmd *cmd)
{
	memset(cmd, 0, sizeof *cmd);
}

void redis_nodes_id_new(char *out)
{
	/* two draws: cursor_epoch_new is random below EPOCH_HIGH */
	snprintf(out, REDIS_NODE_ID_MAX + 1, "%08llx%08llx",
		 (unsigned long long)(cursor_epoch_new() & 0xffffffffu),
		 (unsigned long long)(cursor_epoch_new() & 0xffffffffu));
}

void redis_nodes_counts_cmd(const char *node, const char *channel, size_t len,
			    const size_t *counts, struct redis_cmd *cmd)
{
	unsigned buf = 0;
	bool any = false;
	char *v;
	size_t n = 0;

	cmd_init(cmd);
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		any = any || counts[i] > 0;
	redis_cmd_arg(cmd, any ? "HSET" : "HDEL", 4);
	redis_cmd_argf(cmd, &buf, "ap:node:%s", node);
	redis_cmd_arg(cmd, channel, len);
	if (!any)
		return;
	v = cmd->bufs[buf++];
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		n += (size_t)snprintf(v + n, REDIS_KEY_MAX - n, "%s%zu",
				      i ? " " : "", counts[i]);
	redis_cmd_arg(cmd, v, n);
}

void redis_nodes_expire_cmd(const char *node, struct redis_cmd *cmd)
{
	unsigned buf = 0;

	cmd_init(cmd);
	redis_cmd_arg(cmd, "PEXPIRE", 7);
	redis_cmd_argf(cmd, &buf, "ap:node:%s", node);
	redis_cmd_argf(cmd, &buf, "%d", REDIS_NODE_TTL_MS);
}

void redis_nodes_join_cmd(const char *node, struct redis_cmd *cmd)
{
	cmd_init(cmd);
	redis_cmd_arg(cmd, "SADD", 4);
	redis_cmd_arg(cmd, NODES_KEY, strlen(NODES_KEY));
	redis_cmd_arg(cmd, node, strlen(node));
}

void redis_nodes_info_cmd(const char *channel, size_t len, const char *node,
			  struct redis_cmd *cmd)
{
	unsigned buf = 0;

	cmd_init(cmd);
	redis_cmd_arg(cmd, "EVAL", 4);
	redis_cmd_arg(cmd, info_lua, strlen(info_lua));
	redis_cmd_arg(cmd, "2", 1);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:m", (int)len, channel);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:s", (int)len, channel);
	redis_cmd_arg(cmd, channel, len);
	redis_cmd_arg(cmd, node, strlen(node));
}

/* The decimal u64 at the start of s[0..len), up to a '-' or the end. */
static int lead_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	for (; i < len && s[i] != '-'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 20)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	*out = v;
	return 0;
}

int redis_nodes_info_reply(const redisReply *r, struct redis_info *out)
{
	const redisReply *sums;
	const char *s, *end;

	memset(out, 0, sizeof *out);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5)
		return -1;
	for (size_t i = 0; i < 5; i++)
		if (r->element[i]->type !=
		    (i == 3 ? REDIS_REPLY_INTEGER : REDIS_REPLY_STRING))
			return -1;
	if (r->element[0]->len > 0) {
		if (lead_u64(r->element[0]->str, r->element[0]->len,
			     &out->epoch) < 0 ||
		    lead_u64(r->element[1]->str, r->element[1]->len,
			     &out->last_id) < 0)
			return -1;
		out->exists = out->epoch != 0;
	}
	out->retained = out->exists ? (size_t)r->element[3]->integer : 0;
	out->oldest_id = out->last_id + 1;
	if (out->retained > 0 &&
	    lead_u64(r->element[2]->str, r->element[2]->len, &out->oldest_id) <
		    0)
		return -1;
	sums = r->element[4];
	s = sums->str;
	end = s + sums->len;
	for (int i = 0; i < TRANSPORT_COUNT && s < end; i++) {
		size_t v = 0;

		while (s < end && *s >= '0' && *s <= '9')
			v = v * 10 + (size_t)(*s++ - '0');
		out->subscribers[i] = v;
		while (s < end && *s == ' ')
			s++;
	}
	return 0;
}

void redis_nodes_delete_cmd(const char *channel, size_t len,
			    struct redis_cmd *cmd)
{
	unsigned buf = 0;

	cmd_init(cmd);
	redis_cmd_arg(cmd, "DEL", 3);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:m", (int)len, channel);
	redis_cmd_argf(cmd, &buf, "ap:{%.*s}:s", (int)len, channel);
}

void redis_nodes_control_cmd(char kind, const char *name, size_t len,
			     struct redis_cmd *cmd)
{
	unsigned buf = 0;

	cmd_init(cmd);
	redis_cmd_arg(cmd, "PUBLISH", 7);
	redis_cmd_arg(cmd, REDIS_CONTROL_CHANNEL, strlen(REDIS_CONTROL_CHANNEL));
	redis_cmd_argf(cmd, &buf, "%c %.*s", kind, (int)len, name);
}

int redis_nodes_control_decode(const char *s, size_t len, char *kind,
			       const char **name, size_t *name_len)
{
	if (len < 3 || (s[0] != 'd' && s[0] != 'c') || s[1] != ' ')
		return -1;
	*kind = s[0];
	*name = s + 2;
	*name_len = len - 2;
	return 0;
}
