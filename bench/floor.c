/* bench/floor: the least CPU a push server can spend per delivery on this
 * machine, to read the other servers' numbers against.
 *
 *     bench/floor [--subs N] [--channels K] [--rate R] [--count M] [--size B]
 *                 [--pub-conns P]
 *
 * It forks a server that does only what every push server must: one
 * thread on epoll; a subscriber connection sends "S<channel>\n" once; a
 * publisher connection sends "P<channel> <data>\n", and the server writes
 * "<data>\n" to that channel's subscribers and "K\n" back. No HTTP, no
 * framing, no history, no allocation per message. The parent opens N
 * subscribers spread over K channels (subscriber i on channel i mod K;
 * K defaults to N, one each: the many-channel shape, where a message's
 * fixed cost is not shared) and P publisher connections, publishes M
 * messages of B bytes at R per second round-robin over the channels,
 * counts what arrives, and prints one JSON line with the server's CPU
 * per delivery, read from /proc/PID/task/STAR/schedstat as bench/loadgen
 * reads it (srv_sched_us_per_delivery). Then it kills the server by its
 * pid. Loopback only; it stops by itself (at most M / R + 10 seconds of
 * publishing and draining).
 *
 * bench/analysis.md has what it measured and why it is there. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 10000
#define LINE_MAX_LEN 8192

/* ---- the server ---- */

struct conn {
	char line[LINE_MAX_LEN]; /* a partial line kept between reads */
	size_t len;
};

static struct conn *conns;      /* by fd */
/* channel -> its subscribers' fds */
static struct subs {
	int *fd;
	size_t n, cap;
} chan[MAX_SUBS];
static int nfds_max;

static void on_line(int fd, char *line, size_t len)
{
	char *end;
	long ch = strtol(line + 1, &end, 10);

	if (ch < 0 || ch >= MAX_SUBS || end == line + 1)
		return;
	if (line[0] == 'S') {
		struct subs *c = &chan[ch];

		if (c->n == c->cap) {
			int *more = realloc(c->fd, (c->cap ? c->cap * 2 : 4) *
							   sizeof *c->fd);

			if (more == NULL)
				return;
			c->fd = more;
			c->cap = c->cap ? c->cap * 2 : 4;
		}
		c->fd[c->n++] = fd;
	} else if (line[0] == 'P' && *end == ' ') {
		/* the data and its newline */
		size_t n = len - (size_t)(end + 1 - line);

		for (size_t i = 0; i < chan[ch].n; i++)
			(void)send(chan[ch].fd[i], end + 1, n, MSG_NOSIGNAL);
		(void)send(fd, "K\n", 2, MSG_NOSIGNAL);
	}
}

static void on_readable(int fd)
{
	static char buf[65536];
	struct conn *c = &conns[fd];
	ssize_t r = recv(fd, buf, sizeof buf, 0);
	size_t off = 0;

	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		close(fd);
		c->len = 0;
		return;
	}
	while (off < (size_t)r) {
		char *nl = memchr(buf + off, '\n', (size_t)r - off);
		size_t take = nl ? (size_t)(nl - (buf + off)) + 1 :
				   (size_t)r - off;

		if (c->len + take > sizeof c->line) { /* not ours: drop it */
			close(fd);
			c->len = 0;
			return;
		}
		memcpy(c->line + c->len, buf + off, take);
		c->len += take;
		off += take;
		if (nl) {
			on_line(fd, c->line, c->len);
			c->len = 0;
		}
	}
}

static void serve(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC), one = 1;

	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
		_exit(1);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;

			if (fd != lfd) {
				on_readable(fd);
				continue;
			}
			while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
				if (c >= nfds_max) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof one);
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
			}
		}
	}
}

/* ---- the load ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU of every thread of pid, in ns */
static unsigned long long sched_ns(pid_t pid)
{
	char dir[64], path[400];
	unsigned long long sum = 0, v;
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	d = opendir(dir);
	while (d && (e = readdir(d)) != NULL) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/schedstat", dir, e->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &v) == 1)
			sum += v;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

static int dial(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("floor: connect");
		exit(1);
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return s;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0) {
			perror("floor: send");
			exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

static long arg(int argc, char **argv, const char *name, long def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return strtol(argv[i + 1], NULL, 10);
	return def;
}

int main(int argc, char **argv)
{
	long subs = arg(argc, argv, "--subs", 1000);
	long nch = arg(argc, argv, "--channels", subs);
	long rate = arg(argc, argv, "--rate", 500);
	long count = arg(argc, argv, "--count", 5000);
	long size = arg(argc, argv, "--size", 100);
	long npub = arg(argc, argv, "--pub-conns", 4);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof sa;
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	int lfd, ep, *pubs;
	long sent = 0, got = 0, acks = 0, expected = 0;
	char *line, *data;
	unsigned long long c0, c1;
	double t0, deadline;
	pid_t pid;

	if (subs < 1 || subs > MAX_SUBS || nch < 1 || nch > subs ||
	    rate < 1 || count < 1 ||
	    size < 1 || size > 4000 || npub < 1 || npub > 64) {
		fprintf(stderr, "usage: bench/floor [--subs 1..%d] [--channels "
				"1..subs] [--rate R] [--count M] [--size "
				"1..4000] [--pub-conns 1..64]\n",
			MAX_SUBS);
		return 2;
	}
	nfds_max = (int)subs + (int)npub + 64;
	conns = calloc((size_t)nfds_max, sizeof *conns);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (conns == NULL || lfd < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
		perror("floor: listen");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("floor: fork");
		return 1;
	}
	if (pid == 0)
		serve(lfd);
	close(lfd);

	ep = epoll_create1(EPOLL_CLOEXEC);
	for (long i = 0; i < subs; i++) {
		char s[32];
		int fd = dial(ntohs(sa.sin_port));
		int n = snprintf(s, sizeof s, "S%ld\n", i % nch);

		send_all(fd, s, (size_t)n);
		fcntl(fd, F_SETFL, O_NONBLOCK);
		ev.data.u64 = (1ull << 32) | (unsigned)fd;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	pubs = calloc((size_t)npub, sizeof *pubs);
	for (long i = 0; i < npub; i++) {
		pubs[i] = dial(ntohs(sa.sin_port));
		ev.data.u64 = (unsigned)pubs[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, pubs[i], &ev);
	}
	line = malloc((size_t)size + 32);
	data = malloc((size_t)size + 1);
	memset(data, 'x', (size_t)size);
	data[size] = '\0';
	usleep(500000); /* every subscriber registered */

	c0 = sched_ns(pid);
	t0 = now_s();
	deadline = t0 + (double)count / (double)rate + 10;
	for (long m = 0; m < count; m++) /* channel c holds subscribers c, c + K, ... */
		expected += subs / nch + (m % nch < subs % nch);
	while ((got < expected || acks < count) && now_s() < deadline) {
		double due;
		int wait_ms, n;

		while (sent < count &&
		       t0 + (double)sent / (double)rate <= now_s()) {
			int len = snprintf(line, (size_t)size + 32, "P%ld %s\n",
					   sent % nch, data);

			send_all(pubs[sent % npub], line, (size_t)len);
			sent++;
		}
		due = sent < count ? t0 + (double)sent / (double)rate : deadline;
		wait_ms = (int)((due - now_s()) * 1000);
		n = epoll_wait(ep, evs, 256, wait_ms < 0 ? 0 : wait_ms);
		for (int i = 0; i < n; i++) {
			static char buf[65536];
			int fd = (int)(evs[i].data.u64 & 0xffffffffu);
			int is_sub = (int)(evs[i].data.u64 >> 32);
			ssize_t r = recv(fd, buf, sizeof buf, 0);

			for (ssize_t k = 0; k < r; k++)
				if (buf[k] == '\n')
					*(is_sub ? &got : &acks) += 1;
		}
	}
	c1 = sched_ns(pid);
	printf("{\"server\":\"floor\",\"subs\":%ld,\"channels\":%ld,"
	       "\"rate\":%ld,\"count\":%ld,\"size\":%ld,\"published\":%ld,"
	       "\"expected\":%ld,\"delivered\":%ld,\"acks\":%ld,\"lost\":%ld,"
	       "\"srv_sched_us_per_delivery\":%.3f,\"wall_s\":%.2f}\n",
	       subs, nch, rate, count, size, sent, expected, got, acks,
	       expected - got,
	       (double)(c1 - c0) / 1e3 / (double)(got ? got : 1),
	       now_s() - t0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return got == expected ? 0 : 1;
}
