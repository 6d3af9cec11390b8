/* Failures that cannot be provoked from outside, injected into a whole
 * gateway running in this process: libmicrohttpd failing to create a
 * response (out of memory), a WebSocket loop failing, and a kernel
 * without openat2. The linker redirects the library calls to the __wrap_
 * functions below (-Wl,--wrap=NAME in Makefile.am), which fail on demand
 * and otherwise call the real ones; epoll_wait, called from inside libev,
 * is replaced by defining it here. Requests go over loopback TCP to the
 * gateway's own port, exactly as from a client. */
#include "unit.h"

#include "bus.h"
#include "config.h"
#include "log.h"
#include "message.h"
#include "server.h"
#include "transport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- the injected failures ---- */

static atomic_bool fail_responses; /* every MHD_create_response_* */
static atomic_bool fail_loop;      /* epoll_wait on a WebSocket loop */
static atomic_bool no_openat2;     /* SYS_openat2 is ENOSYS */
static atomic_int openat2_calls;

struct MHD_Response *
__real_MHD_create_response_from_buffer(size_t size, void *buffer,
				       enum MHD_ResponseMemoryMode mode);
struct MHD_Response *
__real_MHD_create_response_from_buffer_with_free_callback_cls(
	size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc,
	void *crfc_cls);
struct MHD_Response *__real_MHD_create_response_from_iovec(
	const struct MHD_IoVec *iov, unsigned int iovcnt,
	MHD_ContentReaderFreeCallback free_cb, void *cls);
struct MHD_Response *__real_MHD_create_response_from_fd(size_t size, int fd);
struct MHD_Response *__real_MHD_create_response_from_callback(
	uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
	void *crc_cls, MHD_ContentReaderFreeCallback crfc);
long __real_syscall(long number, ...);

struct MHD_Response *
__wrap_MHD_create_response_from_buffer(size_t size, void *buffer,
				       enum MHD_ResponseMemoryMode mode);
struct MHD_Response *
__wrap_MHD_create_response_from_buffer_with_free_callback_cls(
	size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc,
	void *crfc_cls);
struct MHD_Response *__wrap_MHD_create_response_from_iovec(
	const struct MHD_IoVec *iov, unsigned int iovcnt,
	MHD_ContentReaderFreeCallback free_cb, void *cls);
struct MHD_Response *__wrap_MHD_create_response_from_fd(size_t size, int fd);
struct MHD_Response *__wrap_MHD_create_response_from_callback(
	uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
	void *crc_cls, MHD_ContentReaderFreeCallback crfc);
long __wrap_syscall(long number, ...);

struct MHD_Response *
__wrap_MHD_create_response_from_buffer(size_t size, void *buffer,
				       enum MHD_ResponseMemoryMode mode)
{
	if (atomic_load(&fail_responses))
		return NULL;
	return __real_MHD_create_response_from_buffer(size, buffer, mode);
}

struct MHD_Response *
__wrap_MHD_create_response_from_buffer_with_free_callback_cls(
	size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc,
	void *crfc_cls)
{
	if (atomic_load(&fail_responses))
		return NULL;
	return __real_MHD_create_response_from_buffer_with_free_callback_cls(
		size, buffer, crfc, crfc_cls);
}

struct MHD_Response *__wrap_MHD_create_response_from_iovec(
	const struct MHD_IoVec *iov, unsigned int iovcnt,
	MHD_ContentReaderFreeCallback free_cb, void *cls)
{
	if (atomic_load(&fail_responses))
		return NULL;
	return __real_MHD_create_response_from_iovec(iov, iovcnt, free_cb, cls);
}

struct MHD_Response *__wrap_MHD_create_response_from_fd(size_t size, int fd)
{
	if (atomic_load(&fail_responses))
		return NULL;
	return __real_MHD_create_response_from_fd(size, fd);
}

struct MHD_Response *__wrap_MHD_create_response_from_callback(
	uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
	void *crc_cls, MHD_ContentReaderFreeCallback crfc)
{
	if (atomic_load(&fail_responses))
		return NULL;
	return __real_MHD_create_response_from_callback(size, block_size, crc,
							crc_cls, crfc);
}

/* The executable's definition wins over libc's for libev too. Only the
 * WebSocket loop threads (named ws-N by ws.c) fail; epoll_pwait with no
 * mask is the same call and is not replaced. */
int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	char name[16] = "";

	if (atomic_load(&fail_loop) &&
	    pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
	    strncmp(name, "ws-", 3) == 0) {
		errno = EBADF;
		return -1;
	}
	return epoll_pwait(epfd, events, max, timeout, NULL);
}

/* syscall() takes up to six arguments; passing all six on is what glibc's
 * own syscall() does with them. */
long __wrap_syscall(long number, ...)
{
	long a[6];
	va_list ap;

	if (number == SYS_openat2) {
		atomic_fetch_add(&openat2_calls, 1);
		if (atomic_load(&no_openat2)) {
			errno = ENOSYS;
			return -1;
		}
	}
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- a gateway in this process ---- */

static char dir[64];
static char port_file[128], web[128];
static struct config cfg;
static struct server srv;
static unsigned port;
static bool running;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* dir/web: index.html, sub/real.txt, linkdir -> ../outside (which holds
 * secret.txt), linkfile.txt -> ../outside/secret.txt */
static void make_tree(void)
{
	char p[256];

	snprintf(dir, sizeof dir, "/tmp/anypush-faults-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(web, sizeof web, "%s/web", dir);
	snprintf(port_file, sizeof port_file, "%s/port", dir);
	ck_assert_int_eq(mkdir(web, 0700), 0);
	snprintf(p, sizeof p, "%s/sub", web);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/outside", dir);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/index.html", web);
	write_file(p, "<title>faults</title>");
	snprintf(p, sizeof p, "%s/sub/real.txt", web);
	write_file(p, "real");
	snprintf(p, sizeof p, "%s/outside/secret.txt", dir);
	write_file(p, "TOPSECRET");
	snprintf(p, sizeof p, "%s/linkdir", web);
	ck_assert_int_eq(symlink("../outside", p), 0);
	snprintf(p, sizeof p, "%s/linkfile.txt", web);
	ck_assert_int_eq(symlink("../outside/secret.txt", p), 0);
}

static void remove_tree(void)
{
	static const char *const paths[] = {
		"web/linkfile.txt",
		"web/linkdir",
		"outside/secret.txt",
		"outside",
		"web/sub/real.txt",
		"web/sub",
		"web/index.html",
		"web",
		"port",
	};
	char p[256];

	for (size_t i = 0; i < NELEM(paths); i++) {
		snprintf(p, sizeof p, "%s/%s", dir, paths[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
	rmdir(dir);
}

static void setup(void)
{
	sigset_t term;
	FILE *f;

	/* as main does: server_fail's SIGTERM waits for sigwait */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	atomic_store(&fail_responses, false);
	atomic_store(&fail_loop, false);
	atomic_store(&no_openat2, false);
	log_set_level(LOG_ERROR);
	make_tree();
	config_defaults(&cfg);
	cfg.bind = "127.0.0.1";
	cfg.port = 0;
	cfg.port_file = port_file;
	cfg.web_root = web;
	cfg.history_size = 1;
	ck_assert_int_eq(server_start(&srv, &cfg), 0);
	running = true;
	f = fopen(port_file, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%u", &port), 1);
	fclose(f);
}

static void teardown(void)
{
	atomic_store(&fail_responses, false);
	atomic_store(&no_openat2, false);
	if (running)
		server_stop(&srv);
	running = false;
	remove_tree();
}

static int connect_gw(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* Send one request with Connection: close and read until the gateway
 * closes (5 s at most). The reply text, "" when the connection was
 * closed without one. */
static const char *exchange(const char *method, const char *path,
			    const char *headers)
{
	static char buf[65536];
	char req[1024];
	size_t n = 0;
	int fd = connect_gw(), len;

	len = snprintf(req, sizeof req,
		       "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
		       "Connection: close\r\n\r\n",
		       method, path, headers);
	ck_assert_int_eq(write(fd, req, (size_t)len), len);
	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);

		ck_assert_msg(r >= 0, "%s %s: no end within 5 s", method, path);
		if (r == 0 || n + (size_t)r == sizeof buf - 1)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return buf;
}

static int status_of(const char *reply)
{
	int st = 0;

	if (sscanf(reply, "HTTP/1.1 %d", &st) != 1)
		return 0;
	return st;
}

static void publish(const char *channel)
{
	char path[128];

	snprintf(path, sizeof path, "/channels/%s", channel);
	ck_assert_int_eq(
		status_of(exchange("POST", path, "Content-Length: 0\r\n")),
		201);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- MHD_create_response_* returns NULL ---- */

/* Every kind of reply: the connection is closed without an answer (there
 * is no memory for one), the gateway goes on serving. */
START_TEST(test_no_response_closes)
{
	static const char *const paths[] = {
		"/healthz",
		"/metrics",
		"/index.html",
		"/nope.txt", /* the 404 JSON error */
		"/channels/f:a?transport=poll",
		/* percent-encoded, so that the router leaves this stream to
		 * libmicrohttpd (valid ones are libwebsockets', which makes
		 * no libmicrohttpd response) */
		"/channels/f%3Aa?transport=sse",
		"/channels/f:a,f:b?transport=poll",
	};

	atomic_store(&fail_responses, true);
	for (size_t i = 0; i < NELEM(paths); i++)
		ck_assert_msg(exchange("GET", paths[i], "")[0] == '\0', "%s",
			      paths[i]);
	ck_assert_str_eq(exchange("OPTIONS", "/channels/f:a", ""), "");
	atomic_store(&fail_responses, false);
	ck_assert_int_eq(status_of(exchange("GET", "/healthz", "")), 200);
	ck_assert_int_eq(status_of(exchange("OPTIONS", "/channels/f:a", "")),
			 204);
	/* the SSE subscriber was detached with its connection */
	for (int i = 0; i < 100 && bus_subscribers_of(srv.bus, TRANSPORT_SSE);
	     i++)
		sleep_ms(10);
	ck_assert_uint_eq(bus_subscribers_of(srv.bus, TRANSPORT_SSE), 0);
}
END_TEST

/* A one-message poll reply shares the message (a reference taken for
 * the response). Without a response that reference must be dropped, or
 * the message outlives its eviction from history. */
START_TEST(test_poll_single_no_leak)
{
	long alive;

	publish("leak:one");
	alive = message_alive();
	atomic_store(&fail_responses, true);
	ck_assert_str_eq(exchange("GET", "/channels/leak:one?since=0", ""), "");
	atomic_store(&fail_responses, false);
	publish("leak:one"); /* history holds one: evicts the first */
	ck_assert_int_eq(message_alive(), alive);
}
END_TEST

/* Any other poll reply is an iovec over several messages' references. */
START_TEST(test_poll_list_no_leak)
{
	long alive;

	publish("leak:a");
	publish("leak:b");
	alive = message_alive();
	atomic_store(&fail_responses, true);
	ck_assert_str_eq(
		exchange("GET", "/channels/leak:a,leak:b?since=0,0", ""), "");
	atomic_store(&fail_responses, false);
	publish("leak:a");
	publish("leak:b");
	ck_assert_int_eq(message_alive(), alive);
}
END_TEST

/* MHD takes over a static file's fd only with a response. */
START_TEST(test_static_no_fd_leak)
{
	int before, after = 0;

	exchange("GET", "/index.html", ""); /* warm up */
	before = open_fds();
	atomic_store(&fail_responses, true);
	for (int i = 0; i < 20; i++)
		ck_assert_str_eq(exchange("GET", "/index.html", ""), "");
	atomic_store(&fail_responses, false);
	/* MHD closes the sockets themselves a moment after the peer sees
	 * the end; the router's wake-up sockets come and go too */
	for (int i = 0; i < 100; i++) {
		after = open_fds();
		if (after <= before)
			break;
		sleep_ms(10);
	}
	ck_assert_int_lt(after, before + 5);
}
END_TEST

/* /metrics renders into a buffer MHD frees with the response; without
 * a response it must be freed here. The leak shows as heap growth. */
START_TEST(test_metrics_no_leak)
{
	size_t len = strlen(exchange("GET", "/metrics", ""));
	struct mallinfo2 before, after;

	ck_assert_uint_gt(len, 1000);
	before = mallinfo2();
	atomic_store(&fail_responses, true);
	for (int i = 0; i < 300; i++)
		ck_assert_str_eq(exchange("GET", "/metrics", ""), "");
	atomic_store(&fail_responses, false);
	sleep_ms(100);
	after = mallinfo2();
	/* 300 leaked renders would be 300 * len; allow a tenth of that for
	 * MHD's and the allocator's own churn */
	ck_assert_msg(after.uordblks < before.uordblks + 30 * len,
		      "heap grew by %zu bytes over 300 failed /metrics",
		      after.uordblks - before.uordblks);
}
END_TEST

/* ---- a WebSocket loop fails ---- */

/* A loop thread cannot go on (epoll_wait fails, so libev gives up): the
 * gateway stops itself (main gets SIGTERM and exits 1) instead of
 * leaving that loop's WebSockets frozen. */
START_TEST(test_ws_loop_failure_stops)
{
	static const char upgrade[] =
		"GET /channels/f:ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	struct timespec wait = { .tv_sec = 5 };
	sigset_t term;
	int fd, sig;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	ck_assert(!server_failed(&srv));
	atomic_store(&fail_loop, true);
	/* a WebSocket to adopt wakes the loop thread */
	fd = connect_gw();
	ck_assert_int_eq(write(fd, upgrade, sizeof upgrade - 1),
			 (ssize_t)(sizeof upgrade - 1));
	sig = sigtimedwait(&term, NULL, &wait);
	atomic_store(&fail_loop, false);
	ck_assert_int_eq(sig, SIGTERM);
	ck_assert(server_failed(&srv));
	/* and the orderly stop still works without the loop thread */
	server_stop(&srv);
	running = false;
	close(fd);
}
END_TEST

/* ---- static files without openat2 ---- */

/* A kernel before 5.6: the component walk serves the same files and
 * follows no symlink either. */
START_TEST(test_static_without_openat2)
{
	const char *r;

	atomic_store(&no_openat2, true);
	atomic_store(&openat2_calls, 0);
	r = exchange("GET", "/index.html", "");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_nonnull(strstr(r, "<title>faults</title>"));
	r = exchange("GET", "/sub/real.txt", "");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nreal"));
	r = exchange("GET", "/linkdir/secret.txt", "");
	ck_assert_int_eq(status_of(r), 404);
	ck_assert_ptr_null(strstr(r, "TOPSECRET"));
	r = exchange("GET", "/linkfile.txt", "");
	ck_assert_int_eq(status_of(r), 404);
	ck_assert_ptr_null(strstr(r, "TOPSECRET"));
	ck_assert_int_eq(status_of(exchange("GET", "/sub/", "")), 404);
	ck_assert_int_eq(status_of(exchange("GET", "/nope/real.txt", "")), 404);
	/* it was openat2 that failed over to the walk */
	ck_assert_int_ge(atomic_load(&openat2_calls), 6);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc;

#define CASE(name)                                      \
	tc = tcase_create(name);                        \
	tcase_add_checked_fixture(tc, setup, teardown); \
	tcase_set_timeout(tc, 60);                      \
	suite_add_tcase(s, tc)

	/* one case each, so that CK_RUN_CASE=name runs one alone */
	CASE("no_response_closes");
	tcase_add_test(tc, test_no_response_closes);
	CASE("poll_single_no_leak");
	tcase_add_test(tc, test_poll_single_no_leak);
	CASE("poll_list_no_leak");
	tcase_add_test(tc, test_poll_list_no_leak);
	CASE("static_no_fd_leak");
	tcase_add_test(tc, test_static_no_fd_leak);
	CASE("metrics_no_leak");
	tcase_add_test(tc, test_metrics_no_leak);
	CASE("ws_loop_failure_stops");
	tcase_add_test(tc, test_ws_loop_failure_stops);
	CASE("static_without_openat2");
	tcase_add_test(tc, test_static_without_openat2);
#undef CASE
	return s;
}

UNIT_MAIN(faults_suite)
