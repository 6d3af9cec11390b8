/* WebSocket keepalive on a timer wheel (see ws_alive.h). lws 4.1.6 has
 * its own (the validity policy), but it keeps every connection's timer in
 * one sorted list per context and re-inserts by walking it on every ping
 * and pong: at 10,000 connections that walk was most of the CPU. Here a
 * bucket is a list, filing is a push, and a received frame only stores
 * its time; the deadline is checked when its bucket comes round. */
#include "ws_alive.h"

static uint64_t tick_of(uint64_t ms)
{
	/* rounded up: a bucket's turn comes when all it holds is due */
	return (ms + WS_ALIVE_TICK_MS - 1) / WS_ALIVE_TICK_MS;
}

static void unlink_link(struct ws_alive_link *link)
{
	link->prev->next = link->next;
	link->next->prev = link->prev;
	link->prev = link->next = NULL;
}

static void file(struct ws_alive *w, struct ws_alive_link *link,
		 uint64_t due_ms)
{
	uint64_t t = tick_of(due_ms);
	struct ws_alive_link *head;

	/* a bucket whose turn has passed would wait a whole lap */
	if (t <= w->turned)
		t = w->turned + 1;
	head = &w->buckets[t % WS_ALIVE_BUCKETS];
	link->due_ms = due_ms;
	link->next = head->next;
	link->prev = head;
	head->next->prev = link;
	head->next = link;
}

void ws_alive_init(struct ws_alive *w, const struct ws_alive_ops *ops,
		   uint64_t ping_ms, uint64_t hangup_ms, uint64_t now_ms)
{
	w->ops = ops;
	w->ping_ms = ping_ms;
	w->hangup_ms = hangup_ms;
	w->turned = now_ms / WS_ALIVE_TICK_MS;
	w->visits = 0;
	for (size_t i = 0; i < WS_ALIVE_BUCKETS; i++)
		w->buckets[i].prev = w->buckets[i].next = &w->buckets[i];
}

void ws_alive_add(struct ws_alive *w, struct ws_alive_link *link,
		  uint64_t now_ms)
{
	link->seen_ms = now_ms;
	link->pinged = false;
	file(w, link, now_ms + w->ping_ms);
}

void ws_alive_seen(struct ws_alive_link *link, uint64_t now_ms)
{
	link->seen_ms = now_ms;
	link->pinged = false;
}

void ws_alive_pong(struct ws_alive *w, struct ws_alive_link *link,
		   uint64_t now_ms)
{
	ws_alive_seen(link, now_ms);
	if (link->next == NULL)
		return;
	unlink_link(link);
	file(w, link, now_ms + w->ping_ms);
}

void ws_alive_remove(struct ws_alive_link *link)
{
	if (link->next)
		unlink_link(link);
}

/* One link whose bucket came round at now_ms. */
static void visit(struct ws_alive *w, struct ws_alive_link *link,
		  uint64_t now_ms)
{
	uint64_t idle = now_ms - link->seen_ms;

	w->visits++;
	unlink_link(link);
	if (link->due_ms > now_ms) { /* a lap early */
		file(w, link, link->due_ms);
		return;
	}
	if (idle >= w->hangup_ms) {
		w->ops->hangup(link);
		return;
	}
	if (idle < w->ping_ms) { /* a frame came since it was filed */
		file(w, link, link->seen_ms + w->ping_ms);
		return;
	}
	if (!link->pinged) {
		link->pinged = true;
		w->ops->ping(link);
	}
	file(w, link, link->seen_ms + w->hangup_ms);
}

void ws_alive_turn(struct ws_alive *w, uint64_t now_ms)
{
	uint64_t now_tick = now_ms / WS_ALIVE_TICK_MS;

	while (w->turned < now_tick) {
		struct ws_alive_link *head =
			&w->buckets[++w->turned % WS_ALIVE_BUCKETS];
		struct ws_alive_link lap;

		/* take the bucket's whole list first: visiting may file a
		 * link in this same bucket again (a lap on) */
		if (head->next == head)
			continue;
		lap.next = head->next;
		lap.prev = head->prev;
		lap.next->prev = &lap;
		lap.prev->next = &lap;
		head->next = head->prev = head;
		while (lap.next != &lap)
			visit(w, lap.next, now_ms);
	}
}
