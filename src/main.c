/* anypush: parse options, start the server, wait for SIGTERM or SIGINT,
 * stop in order. Signals are blocked in every thread and taken here with
 * sigwait, so no handler runs in the middle of library code. A part that
 * cannot go on raises SIGTERM too (server_fail): the same orderly stop,
 * then exit status 1. SIGHUP reads the config file again: a file with an
 * error changes nothing; otherwise the live options change and the
 * others are reported as needing a restart. systemd hears READY=1 once
 * every part is started and STOPPING=1 as the stop begins (notify.c). */
#include "config.h"
#include "log.h"
#include "notify.h"
#include "server.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define LOG_PREFIX "main"

/* Main thread, between sigwaits: the only writer of cfg after start. */
static void reload(struct server *srv, struct config *cfg, int argc,
		   char **argv)
{
	struct config next;
	char *why = NULL;
	size_t len = 0;
	FILE *err = open_memstream(&why, &len);

	if (err == NULL) {
		log_error("reload: out of memory; keeping the old options");
		return;
	}
	if (config_reload(&next, argc, argv, err) < 0) {
		fclose(err);
		/* one line, "anypush: path:line: reason\n" */
		if (len > 0 && why[len - 1] == '\n')
			why[len - 1] = '\0';
		log_error("reload refused, keeping the old options: %s",
			  why ? why : "");
		goto out;
	}
	fclose(err);
	switch (config_update(cfg, &next)) {
	case -1:
		break; /* refused, and logged */
	case 0:
		log_info("reloaded: no live option changed");
		break;
	default:
		server_reconfigure(srv);
	}
out:
	free(why);
	config_free(&next);
}

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
	log_set_format(log_format_parse(cfg.log_format));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (server_start(&srv, &cfg) < 0)
		return 1;
	notify_ready();
	for (;;) {
		sigwait(&stop, &sig);
		if (sig != SIGHUP || server_failed(&srv))
			break;
		log_info("SIGHUP: reading %s again",
			 cfg.config[0] ? cfg.config : "the command line");
		reload(&srv, &cfg, argc, argv);
	}
	notify_stopping();
	failed = server_failed(&srv);
	if (failed)
		log_error("a part of the gateway failed: shutting down");
	else
		log_info("signal %d: shutting down", sig);
	server_stop(&srv);
	log_info("stopped");
	config_free(&cfg);
	return failed ? 1 : 0;
}
