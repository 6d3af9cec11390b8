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
/* Add to t what fd has had written since *base, and move *base there. */
void cost_bytes(enum transport_id t, int fd, uint64_t *base);

/* CPU */
/* The calling thread's CPU time, in ns. */
uint64_t cost_cpu_now(void);
/* Add to t the calling thread's CPU time since `since` (cost_cpu_now). */
void cost_cpu(enum transport_id t, uint64_t since);

#endif
