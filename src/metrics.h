/* metrics.h: process-wide counters, exported at /metrics. */
#ifndef ANYPUSH_METRICS_H
#define ANYPUSH_METRICS_H

#include "transport.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct capacity;

struct metrics {
	atomic_ullong published;      /* messages accepted */
	atomic_ullong evicted;        /* messages dropped from history */
	atomic_ullong gaps;           /* gap signals sent */
	atomic_ullong slow_consumers; /* subscribers cut for lagging */
	atomic_ullong dead_peers;     /* suspended peers seen gone */
	atomic_ullong delivered[TRANSPORT_COUNT];
	atomic_ullong subscriptions[TRANSPORT_COUNT];
	/* what each transport costs (cost.c) */
	atomic_ullong requests[TRANSPORT_COUNT];   /* requests, connections */
	atomic_ullong sent_bytes[TRANSPORT_COUNT]; /* written to sockets */
	atomic_ullong cpu_ns[TRANSPORT_COUNT];     /* thread CPU in its code */
	atomic_ullong accepted; /* TCP connections accepted */
	atomic_ullong routed_http, routed_ws;
	atomic_ullong head_timeouts;   /* closed before a full request head */
	atomic_ullong head_rejected;   /* malformed or oversized heads */
	atomic_ullong pending_evicted; /* pending cap reached */
	atomic_ullong head_peeked_bytes; /* copied out of sockets by peeks */
	atomic_ullong over_capacity;     /* refused for --max-connections/-streams */
	atomic_ullong http_errors;     /* JSON error replies */
	atomic_ullong origin_refused;  /* 403 origin_not_allowed */
	atomic_ullong rate_limited;    /* 429 rate_limited publishes */
	atomic_ullong channel_rate_limited; /* 429 channel_rate_limited */
	atomic_ullong subscriptions_refused; /* past --max-subscriptions */
	atomic_ullong idempotent_replays; /* keyed publishes answered again */
};

extern struct metrics metrics;

static inline void metrics_add(atomic_ullong *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* The Prometheus text exposition; the caller free()s it. loop_loads[i]
 * is the connections WebSocket loop i holds (ws_loads). */
char *metrics_render(struct bus *bus, const struct capacity *cap,
		     const size_t *loop_loads, size_t nloops, size_t *len);

#endif
