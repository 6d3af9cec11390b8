/* redis_server.h: a redis-server of the test's own, on a unix socket in a
 * fresh temporary folder (no TCP port to collide with anything), without
 * persistence but an explicit SAVE. It dies with the process that started it
 * (PR_SET_PDEATHSIG), so a test that fails halfway leaves nothing behind;
 * redis_server_stop ends it by pid. A missing redis-server is a failure,
 * never a skip: scripts/setup installs it. */
#ifndef ANYPUSH_TEST_REDIS_SERVER_H
#define ANYPUSH_TEST_REDIS_SERVER_H

#include <check.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct redis_server {
	pid_t pid;
	char dir[64];
	char sock[96];
	char log[96];
	char rdb[96]; /* what SAVE writes, and a restart loads */
};

/* Start it in rs->dir (made by redis_server_start). */
static inline void redis_server_run(struct redis_server *rs)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	rs->pid = fork();
	ck_assert_int_ge(rs->pid, 0);
	if (rs->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execlp("redis-server", "redis-server", "--port", "0",
		       "--unixsocket", rs->sock, "--unixsocketperm", "700",
		       "--dir", rs->dir, "--save", "", "--appendonly", "no",
		       "--loglevel", "warning", "--logfile", rs->log,
		       (char *)NULL);
		_exit(127);
	}
	/* bounded: 250 tries of 20 ms */
	for (int i = 0; i < 250; i++) {
		redisContext *c = redisConnectUnix(rs->sock);
		int status;

		if (c && !c->err) {
			redisFree(c);
			return;
		}
		redisFree(c);
		if (waitpid(rs->pid, &status, WNOHANG) == rs->pid)
			ck_abort_msg("redis-server did not start (exit %d): "
				     "scripts/setup installs it",
				     WIFEXITED(status) ? WEXITSTATUS(status) :
							 -1);
		nanosleep(&tick, NULL);
	}
	ck_abort_msg("redis-server did not answer within 5 s");
}

static inline void redis_server_start(struct redis_server *rs)
{
	snprintf(rs->dir, sizeof rs->dir, "/tmp/anypush-redis-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(rs->dir));
	snprintf(rs->sock, sizeof rs->sock, "%s/redis.sock", rs->dir);
	snprintf(rs->log, sizeof rs->log, "%s/redis.log", rs->dir);
	snprintf(rs->rdb, sizeof rs->rdb, "%s/dump.rdb", rs->dir);
	redis_server_run(rs);
}

/* Kill it by pid (SIGKILL: nothing saved on the way out). */
static inline void redis_server_kill(struct redis_server *rs)
{
	if (rs->pid > 0) {
		kill(rs->pid, SIGKILL);
		waitpid(rs->pid, NULL, 0);
		rs->pid = 0;
	}
}

static inline void redis_server_stop(struct redis_server *rs)
{
	redis_server_kill(rs);
	unlink(rs->sock);
	unlink(rs->rdb);
	unlink(rs->log);
	rmdir(rs->dir);
}

/* A blocking connection to it, with a 5 s timeout on every call. */
static inline redisContext *redis_server_connect(const struct redis_server *rs)
{
	struct timeval tv = { 5, 0 };
	redisContext *c = redisConnectUnixWithTimeout(rs->sock, tv);

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(!c->err, "connect: %s", c->errstr);
	redisSetTimeout(c, tv);
	return c;
}

#endif
