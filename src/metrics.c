/* Counters are relaxed atomics: they are read for monitoring only, never
 * to make decisions, so no ordering is needed. */
#include "metrics.h"
#include "abuse.h"

#include "bus.h"
#include "capacity.h"
#include "ipconns.h"
#include "message.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>

struct metrics metrics;

struct text {
	char *buf;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < t->cap - t->len)
			break;
		t->cap *= 2;
		t->buf = xrealloc(t->buf, t->cap);
	}
	t->len += (size_t)n;
}

static void counter(struct text *t, const char *name, const char *help,
		    atomic_ullong *c)
{
	put(t,
	    "# HELP anypush_%s %s\n# TYPE anypush_%s counter\n"
	    "anypush_%s %llu\n",
	    name, help, name, name, (unsigned long long)atomic_load(c));
}

static void per_transport(struct text *t, const char *name, const char *help,
			  const char *type, atomic_ullong *c, struct bus *bus)
{
	put(t, "# HELP anypush_%s %s\n# TYPE anypush_%s %s\n", name, help, name,
	    type);
	for (int i = 0; i < TRANSPORT_COUNT; i++) {
		unsigned long long v = c ? atomic_load(&c[i]) :
					   bus_subscribers_of(bus, i);

		put(t, "anypush_%s{transport=\"%s\"} %llu\n", name,
		    transport_by_id(i)->name, v);
	}
}

static void cpu_seconds(struct text *t)
{
	put(t, "# HELP anypush_cpu_seconds_total Thread CPU time spent in the "
	       "transport's own callbacks.\n"
	       "# TYPE anypush_cpu_seconds_total counter\n");
	for (int i = 0; i < TRANSPORT_COUNT; i++)
		put(t, "anypush_cpu_seconds_total{transport=\"%s\"} %.6f\n",
		    transport_by_id(i)->name,
		    (double)atomic_load(&metrics.cpu_ns[i]) / 1e9);
}

char *metrics_render(struct bus *bus, const struct capacity *cap,
		     const size_t *loop_loads, size_t nloops, size_t *len)
{
	struct text t = { xmalloc(4096), 0, 4096 };
	struct bus_stats st;

	bus_stats(bus, &st);
	counter(&t, "published_total", "Messages published.",
		&metrics.published);
	counter(&t, "evicted_total", "Messages dropped from history.",
		&metrics.evicted);
	counter(&t, "gaps_total", "Gap signals sent to subscribers.",
		&metrics.gaps);
	counter(&t, "slow_consumers_total",
		"Subscribers disconnected for falling behind.",
		&metrics.slow_consumers);
	counter(&t, "dead_peers_total",
		"Held connections whose peer was seen gone.",
		&metrics.dead_peers);
	counter(&t, "connections_accepted_total", "TCP connections accepted.",
		&metrics.accepted);
	counter(&t, "head_timeouts_total",
		"Connections closed before sending a request head in time.",
		&metrics.head_timeouts);
	counter(&t, "head_rejected_total",
		"Connections refused for a malformed or oversized head.",
		&metrics.head_rejected);
	counter(&t, "pending_evicted_total",
		"Pending connections closed because the pending cap was hit.",
		&metrics.pending_evicted);
	counter(&t, "head_peeked_bytes_total",
		"Bytes the router copied out of sockets to read request heads.",
		&metrics.head_peeked_bytes);
	counter(&t, "over_capacity_total",
		"Connections and streams refused for --max-connections or "
		"--max-streams.",
		&metrics.over_capacity);
	counter(&t, "http_errors_total", "JSON error replies sent.",
		&metrics.http_errors);
	counter(&t, "origin_refused_total",
		"Requests and WebSocket handshakes refused for their Origin "
		"(--allow-origin).",
		&metrics.origin_refused);
	counter(&t, "rate_limited_total",
		"Publishes refused for --publish-rate-per-ip or "
		"--publish-rate-per-client.",
		&metrics.rate_limited);
	counter(&t, "channel_rate_limited_total",
		"Publishes and subscribes refused for --new-channels-per-ip.",
		&metrics.channel_rate_limited);
	counter(&t, "conns_refused_per_ip_total",
		"Connections refused for --max-conns-per-ip.",
		&ipconns_refused);
	counter(&t, "subscriptions_refused_total",
		"/ws subscribes refused for --max-subscriptions "
		"(too_many_channels).",
		&metrics.subscriptions_refused);
	counter(&t, "limit_ips_evicted_total",
		"Client IPs whose per-IP limit state gave its slot to a new "
		"IP (the table is full).",
		&abuse_ips_evicted);
	counter(&t, "idempotent_replays_total",
		"Publishes with a known idempotency key, answered with the "
		"first one's id and not stored.",
		&metrics.idempotent_replays);
	per_transport(&t, "delivered_total", "Messages delivered.", "counter",
		      metrics.delivered, bus);
	per_transport(&t, "subscriptions_total", "Subscriptions opened.",
		      "counter", metrics.subscriptions, bus);
	per_transport(&t, "subscribers", "Subscribers attached now.", "gauge",
		      NULL, bus);
	per_transport(&t, "requests_total",
		      "HTTP requests that chose the transport, WebSocket "
		      "connections opened.",
		      "counter", metrics.requests, bus);
	per_transport(&t, "sent_bytes_total",
		      "Bytes written to the transport's sockets, headers "
		      "included.",
		      "counter", metrics.sent_bytes, bus);
	cpu_seconds(&t);
	put(&t,
	    "# TYPE anypush_channels gauge\nanypush_channels %zu\n"
	    "# TYPE anypush_retained_messages gauge\n"
	    "anypush_retained_messages %zu\n"
	    "# TYPE anypush_retained_bytes gauge\n"
	    "anypush_retained_bytes %zu\n"
	    "# TYPE anypush_messages_alive gauge\n"
	    "anypush_messages_alive %ld\n"
	    "# TYPE anypush_pollers gauge\n"
	    "anypush_pollers %zu\n"
	    "# TYPE anypush_idempotency_keys gauge\n"
	    "anypush_idempotency_keys %zu\n"
	    "# TYPE anypush_connections gauge\n"
	    "anypush_connections %zu\n"
	    "# TYPE anypush_streams gauge\n"
	    "anypush_streams %zu\n"
	    "# TYPE anypush_ip_connections gauge\n"
	    "anypush_ip_connections %zu\n"
	    "# TYPE anypush_ip_connections_ips gauge\n"
	    "anypush_ip_connections_ips %zu\n",
	    st.channels, st.retained, st.retained_bytes, message_alive(),
	    st.pollers, st.idem_keys, capacity_connections(cap),
	    capacity_streams(cap), ipconns_held(), ipconns_ips());
	put(&t, "# HELP anypush_ws_loop_connections WebSocket connections "
		"and SSE streams "
		"each loop (--threads) holds now.\n"
		"# TYPE anypush_ws_loop_connections gauge\n");
	for (size_t i = 0; i < nloops; i++)
		put(&t, "anypush_ws_loop_connections{loop=\"%zu\"} %zu\n", i,
		    loop_loads[i]);
	*len = t.len;
	return t.buf;
}
