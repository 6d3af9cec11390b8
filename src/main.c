/* anypush: parse options, start the server, wait for SIGTERM or SIGINT,
 * stop in order. Signals are blocked in every thread and taken here with
 * sigwait, so no handler runs in the middle of library code. A part that
 * cannot go on raises SIGTERM too (server_fail): the same orderly stop,
 * then exit status 1. systemd hears READY=1 once every part is started
 * and STOPPING=1 as the stop begins (notify.c). */
#include "config.h"
#include "log.h"
#include "notify.h"
#include "server.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define LOG_PREFIX "main"

int main(int argc, char **argv)
{
	struct config cfg;
	struct server srv;
	sigset_t stop;
	int sig = 0;
	bool failed;

	config_defaults(&cfg);
	switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
	case CONFIG_EXIT_OK:
		return 0;
	case CONFIG_ERROR:
		return 2;
	case CONFIG_RUN:
		break;
	}
	log_set_level(log_level_parse(cfg.log_level));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (server_start(&srv, &cfg) < 0)
		return 1;
	notify_ready();
	sigwait(&stop, &sig);
	notify_stopping();
	failed = server_failed(&srv);
	if (failed)
		log_error("a part of the gateway failed: shutting down");
	else
		log_info("signal %d: shutting down", sig);
	server_stop(&srv);
	log_info("stopped");
	return failed ? 1 : 0;
}
