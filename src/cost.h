/* cost.h: what each transport costs the gateway, for /metrics: the
 * requests it serves, the bytes it writes to sockets and the thread CPU
 * its code spends (docs/protocol.md, "healthz and metrics", says exactly
 * what is counted). Lock-free: relaxed atomic adds to per-transport
 * counters in struct metrics, from any thread. */
#ifndef ANYPUSH_COST_H
#define ANYPUSH_COST_H

#include "transport.h"

#include <stdint.h>

/* Requests */
/* One HTTP request or WebSocket connection served by transport t. */
void cost_request(enum transport_id t);

/* Bytes */
/* Bytes the process has written to the TCP socket fd so far, headers
 * included, whether or not the kernel has sent them yet; 0 if fd is not
 * a TCP socket. */
uint64_t cost_written(int fd);
/* Add n bytes to t that the caller wrote itself, every one of them: a
 * reply whose status line and headers it formatted (no read needed). */
void cost_sent(enum transport_id t, uint64_t n);
/* Add to t what fd has had written since *base, and move *base there. */
void cost_bytes(enum transport_id t, int fd, uint64_t *base);

/* A held connection's bytes, read from the kernel at most once every
 * COST_BYTES_EVERY_MS after a write round (one system call per round
 * would cost a busy stream a tenth of its CPU) and always at its close
 * (cost_bytes on .base). */
#define COST_BYTES_EVERY_MS 1000
struct cost_tally {
	uint64_t base;  /* cost_bytes' *base */
	uint64_t at_ms; /* bus_now_ms() of the last read */
};
/* cost_bytes, if the last read was COST_BYTES_EVERY_MS or more before
 * now_ms. */
void cost_bytes_lazy(enum transport_id t, int fd, struct cost_tally *tally,
		     uint64_t now_ms);

/* CPU */
/* The calling thread's CPU time, in ns. */
uint64_t cost_cpu_now(void);
/* Add to t the calling thread's CPU time since `since` (cost_cpu_now). */
void cost_cpu(enum transport_id t, uint64_t since);
/* The calling thread's CPU time since `since`, shared among the
 * transports by served[t], the pieces of work each had in it (a loop's
 * batch of wake-ups, timed once: the clock is a system call). */
void cost_cpu_shared(uint64_t since, const unsigned served[TRANSPORT_COUNT]);

#endif
