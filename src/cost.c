/* Bytes come from the kernel, not from adding up our buffers: a socket's
 * TCP_INFO knows every byte written to it, so the status line and the
 * headers libmicrohttpd and libwebsockets add, chunk framing and frame
 * headers are all counted, which no sum of our bodies could do honestly.
 * "Written" is the unique bytes the kernel has sent (tcpi_bytes_sent less
 * tcpi_bytes_retrans) plus what still waits in the send queue
 * (tcpi_notsent_bytes): write_seq, what the process handed over. A
 * transport samples it at points where it knows whose bytes they are
 * (cost_bytes keeps the last sample) and is charged the difference.
 * Needs Linux 4.19 (tcpi_bytes_sent); older kernels leave the fields 0.
 *
 * TCP_INFO is a system call too: a held connection reads it at most once
 * a second after its writes, and at its close (cost_bytes_lazy), so a
 * busy stream pays one read per second, not one per message, and the
 * total is still the kernel's.
 *
 * CPU is CLOCK_THREAD_CPUTIME_ID around a transport's own callbacks.
 * That clock is a system call, not vDSO, so it is read once at the start
 * and once at the end of a callback, never per message, and once around
 * a whole batch of wake-ups on a libwebsockets loop (cost_cpu_shared),
 * never per session woken. */
#include "cost.h"

#include "metrics.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void cost_request(enum transport_id t)
{
	metrics_add(&metrics.requests[t], 1);
}

void cost_sent(enum transport_id t, uint64_t n)
{
	metrics_add(&metrics.sent_bytes[t], n);
}

uint64_t cost_written(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;

	memset(&ti, 0, sizeof ti);
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 0;
	return ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans +
	       ti.tcpi_notsent_bytes;
}

void cost_bytes(enum transport_id t, int fd, uint64_t *base)
{
	uint64_t now = cost_written(fd);

	/* 0: not TCP, or the socket is already gone; nothing to charge */
	if (now > *base) {
		metrics_add(&metrics.sent_bytes[t], now - *base);
		*base = now;
	}
}

void cost_bytes_lazy(enum transport_id t, int fd, struct cost_tally *tally,
		     uint64_t now_ms)
{
	if (now_ms - tally->at_ms < COST_BYTES_EVERY_MS)
		return;
	tally->at_ms = now_ms;
	cost_bytes(t, fd, &tally->base);
}

uint64_t cost_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cost_cpu(enum transport_id t, uint64_t since)
{
	uint64_t now = cost_cpu_now();

	if (now > since)
		metrics_add(&metrics.cpu_ns[t], now - since);
}

void cost_cpu_shared(uint64_t since, const unsigned served[TRANSPORT_COUNT])
{
	uint64_t now = cost_cpu_now(), left, total = 0;

	if (now <= since)
		return;
	left = now - since;
	for (int t = 0; t < TRANSPORT_COUNT; t++)
		total += served[t];
	/* each its share by count of what is left, so the last one takes
	 * what division rounded away and the whole is counted */
	for (int t = 0; t < TRANSPORT_COUNT && total > 0; t++) {
		uint64_t part = left * served[t] / total;

		metrics_add(&metrics.cpu_ns[t], part);
		left -= part;
		total -= served[t];
	}
}
